"""``mloop gateway prompt ...`` and ``mloop gateway eval``: the prompt registry and its gate."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mloop.cli._gateway_options import ConfigOption, JsonOption, fail
from mloop.config import load_settings
from mloop.errors import MloopError

__all__ = ["eval_gate", "prompt_app"]

prompt_app = typer.Typer(
    name="prompt",
    help="The prompt registry: immutable versions, aliases (name@production), diffs.",
    no_args_is_help=True,
)


def _registry() -> Any:
    from mloop.gateway import PromptRegistry
    from mloop.store import MetadataStore

    return PromptRegistry(MetadataStore.from_settings(load_settings()))


@prompt_app.command("create")
def prompt_create(
    name: Annotated[str, typer.Argument(help="The prompt's name, e.g. support-answer.")],
    file: Annotated[
        Path, typer.Option("--file", "-f", help="JSON or TOML with system, few_shot, user.")
    ],
    deployment: Annotated[
        str | None, typer.Option(help="The deployment this version is written for.")
    ] = None,
    parent: Annotated[int | None, typer.Option(help="The version it derives from.")] = None,
    description: Annotated[str, typer.Option(help="What changed and why.")] = "",
) -> None:
    """Store a new immutable version of a prompt and print its reference."""
    import tomllib

    try:
        text = file.read_text()
        data = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        version = _registry().create(
            name, data, deployment=deployment, parent=parent, description=description
        )
    except MloopError as exc:
        raise fail(exc) from exc
    typer.echo(version.ref)


@prompt_app.command("list")
def prompt_list(
    name: Annotated[str, typer.Argument(help="The prompt's name.")],
    as_json: JsonOption = False,
) -> None:
    """Versions of a prompt with their aliases, deployment and lineage."""
    registry = _registry()
    versions = registry.versions(name)
    aliases = registry.aliases(name)
    if as_json:
        typer.echo(
            json.dumps({"versions": [v.to_dict() for v in versions], "aliases": aliases}, indent=2)
        )
        return
    if not versions:
        typer.echo(
            f"No prompt {name!r}. Create one with: mloop gateway prompt create {name} -f ..."
        )
        return
    by_version: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(number, []).append(alias)
    for v in versions:
        tags = ",".join(by_version.get(v.version, []))
        parent = f" <- {v.parent}" if v.parent else ""
        typer.echo(f"{v.ref}{parent}  deployment={v.deployment or '-'}  [{tags}]  {v.description}")


@prompt_app.command("alias")
def prompt_alias(
    name: Annotated[str, typer.Argument(help="The prompt's name.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. production.")],
    version: Annotated[int, typer.Argument(help="The version it should name.")],
) -> None:
    """Point an alias at a version (gateways pick it up within seconds, no restart)."""
    try:
        before = _registry().set_alias(name, alias, version, why="set by hand")
    except MloopError as exc:
        raise fail(exc) from exc
    typer.echo(f"{name}@{alias}: {before if before is not None else '-'} -> {version}")


@prompt_app.command("diff")
def prompt_diff(
    name: Annotated[str, typer.Argument(help="The prompt's name.")],
    a: Annotated[int, typer.Argument(help="The old version.")],
    b: Annotated[int, typer.Argument(help="The new version.")],
) -> None:
    """A unified diff of two versions."""
    try:
        typer.echo(_registry().diff(name, a, b) or "(no difference)")
    except MloopError as exc:
        raise fail(exc) from exc


def eval_gate(
    route: Annotated[str, typer.Option(help="The route the prompt serves.")],
    candidate: Annotated[str, typer.Option(help="The prompt version to judge, e.g. qa@4.")],
    cases: Annotated[Path, typer.Option(help="JSONL: input, expected and/or rubric per line.")],
    scorer: Annotated[
        str,
        typer.Option(
            help="exact, json_schema, regex, numeric[:TOL], judge:ROUTE or module:function."
        ),
    ] = "exact",
    config: ConfigOption = None,
    champion: Annotated[
        str | None, typer.Option(help="Alias or version to compare with (default: --promote).")
    ] = None,
    promote: Annotated[
        str | None, typer.Option(help="Alias to move to the candidate if the gate passes.")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option(help="Run the candidate on this deployment.")
    ] = None,
    min_mean: Annotated[float | None, typer.Option(help="Minimum mean score.")] = None,
    min_pass_rate: Annotated[float | None, typer.Option(help="Minimum share passing.")] = None,
    pass_at: Annotated[float, typer.Option(help="Score a case must reach to pass.")] = 1.0,
    min_win_rate: Annotated[
        float | None, typer.Option(help="Minimum share of cases beating the champion.")
    ] = None,
    max_regression: Annotated[
        float,
        typer.Option(help="How far below the champion the CI's lower end may go (mean score)."),
    ] = 0.0,
    confidence: Annotated[float, typer.Option(help="Confidence of the interval.")] = 0.95,
    as_json: JsonOption = False,
) -> None:
    """Judge a prompt version against the champion; move the alias only if the gate passes.

    Exits 0 when the gate passes, 1 when it fails (the reasons are printed), 2 on misuse.
    """
    from mloop.gateway import GatePolicy, PromptRegistry, evaluate, load_cases, load_config
    from mloop.store import MetadataStore

    policy = GatePolicy(
        min_mean=min_mean,
        min_pass_rate=min_pass_rate,
        pass_at=pass_at,
        min_win_rate=min_win_rate,
        max_regression=max_regression,
        confidence=confidence,
    )
    try:
        settings = load_settings()
        gateway_config = load_config(config, settings)
        registry = PromptRegistry(MetadataStore.from_settings(settings))
        report = asyncio.run(
            evaluate(
                gateway_config,
                registry,
                route=route,
                candidate=candidate,
                cases=load_cases(cases),
                scorer=scorer,
                policy=policy,
                champion=champion,
                promote=promote,
                deployment=deployment,
            )
        )
    except (MloopError, OSError) as exc:
        raise fail(exc if isinstance(exc, MloopError) else MloopError(str(exc))) from exc
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.explain())
    if not report.verdict.passed:
        raise typer.Exit(1)
