"""``mloop gateway ...``: serve the LLM gateway, check its configuration, set keys' limits
and teams, report spend."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mloop.config import load_settings
from mloop.errors import MloopError

__all__ = ["gateway_app"]

gateway_app = typer.Typer(
    name="gateway",
    help="The LLM gateway: OpenAI-compatible proxy with rate-limit scheduling and fallbacks.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="gateway.toml with \\[\\[deployments]] and \\[routes.*]."),
]


@gateway_app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve /v1/chat/completions, /v1/models, /v1/jobs and /metrics."""
    import uvicorn

    from mloop.gateway import create_app, load_config

    try:
        settings = load_settings()
        gateway_config = load_config(config, settings)
    except MloopError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    from mloop._connections import GRACEFUL_SHUTDOWN_S, ConnectionLimits, guarded_protocol
    from mloop.auth import auth_required

    bind = host or settings.gateway.host
    required = auth_required(settings.gateway.auth, bind)
    app = create_app(gateway_config, settings, auth=required)
    cfg = settings.serving
    limits = ConnectionLimits(
        cfg.header_timeout_s, cfg.body_timeout_s, cfg.max_connections_per_client
    )
    keys = "API keys with scope gateway required" if required else "OPEN (loopback only)"
    typer.echo(f"mloop gateway on http://{bind}:{port or settings.gateway.port}; {keys}", err=True)
    uvicorn.run(
        app,
        host=bind,
        port=port or settings.gateway.port,
        log_level="warning",
        access_log=False,
        http=guarded_protocol(limits),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


@gateway_app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the configuration and print each route's fallback chain."""
    from mloop.gateway import load_config

    try:
        gateway_config = load_config(config, load_settings())
    except MloopError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    for name, route in sorted(gateway_config.routes.items()):
        steps = []
        for dep in route.chain:
            d = gateway_config.deployments[dep]
            version = route.prompts.get(dep) or route.template_for(dep).version
            steps.append(
                f"{dep} ({d.provider}:{d.model}, rpm={d.rpm}, tpm={d.tpm}, template={version})"
            )
        typer.echo(f"{name}: " + " -> ".join(steps))


def _fail(exc: MloopError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(2)


RouteOption = Annotated[
    list[str] | None, typer.Option("--route", help="A route it may call (repeatable; none: all).")
]
RpmOption = Annotated[int, typer.Option(help="Requests per minute (0: no cap).")]
TpmOption = Annotated[int, typer.Option(help="Tokens per minute (0: no cap).")]
BudgetOption = Annotated[
    list[str] | None,
    typer.Option("--budget", help="USD per UTC day/week/month, e.g. --budget day=5 (repeatable)."),
]


def _limits(route: list[str] | None, rpm: int, tpm: int, budget: list[str] | None) -> Any:
    from mloop.auth import Limits, parse_budgets

    return Limits(tuple(route or ()), rpm, tpm, parse_budgets(budget or []))


@gateway_app.command()
def limit(
    key_id: Annotated[str, typer.Argument(help="The key id (mloop keys list).")],
    team: Annotated[str | None, typer.Option(help="The team the key belongs to.")] = None,
    route: RouteOption = None,
    rpm: RpmOption = 0,
    tpm: TpmOption = 0,
    budget: BudgetOption = None,
) -> None:
    """Set what an API key may do at the gateway: routes, RPM/TPM caps, USD budgets, team."""
    from mloop.auth import LimitStore
    from mloop.store import MetadataStore

    try:
        limits = _limits(route, rpm, tpm, budget)
        LimitStore(MetadataStore.from_settings(load_settings())).set_key(key_id, limits, team=team)
    except MloopError as exc:
        raise _fail(exc) from exc
    typer.echo(f"key {key_id}: {json.dumps({'team': team, **limits.to_dict()})}")


@gateway_app.command()
def team(
    name: Annotated[str, typer.Argument(help="The team's name.")],
    route: RouteOption = None,
    rpm: RpmOption = 0,
    tpm: TpmOption = 0,
    budget: BudgetOption = None,
) -> None:
    """Create or change a team: limits shared by all of its keys."""
    from mloop.auth import LimitStore
    from mloop.store import MetadataStore

    try:
        limits = _limits(route, rpm, tpm, budget)
        LimitStore(MetadataStore.from_settings(load_settings())).set_team(name, limits)
    except MloopError as exc:
        raise _fail(exc) from exc
    typer.echo(f"team {name}: {json.dumps(limits.to_dict())}")


@gateway_app.command()
def spend(
    config: ConfigOption = None,
    period: Annotated[str, typer.Option(help="minute, day, week or month.")] = "day",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Spend in the current window per key, team, route and deployment (with caps)."""
    import time

    from mloop.auth import LimitStore
    from mloop.gateway import budget_caps, ledger_for, load_config, spend_report
    from mloop.store import MetadataStore

    if period not in ("minute", "day", "week", "month"):
        raise _fail(MloopError(f"--period {period!r} must be minute, day, week or month."))
    try:
        settings = load_settings()
        store = MetadataStore.from_settings(settings)
        try:
            gateway_config = load_config(config, settings)
        except MloopError:
            gateway_config = None  # no gateway config: the SQL ledger
        ledger = ledger_for(gateway_config, store)
        rows = asyncio.run(ledger.rows(period=period, at=time.time()))
        limits = LimitStore(store)
        caps = budget_caps(limits.key_limits(), limits.team_limits(), period)
    except MloopError as exc:
        raise _fail(exc) from exc
    out = spend_report(rows, caps)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    if not out:
        typer.echo(f"No spend recorded this {period}.")
        return
    from mloop.cli._table import Table, make_console

    table = Table("subject", "metric", "spent", "held", "cap")
    for o in out:
        cap = "" if o["cap"] is None else f"{o['cap']:g}"
        table.add_row(o["subject"], o["metric"], f"{o['spent']:g}", f"{o['held']:g}", cap)
    make_console().print(table)


prompt_app = typer.Typer(
    name="prompt",
    help="The prompt registry: immutable versions, aliases (name@production), diffs.",
    no_args_is_help=True,
)
gateway_app.add_typer(prompt_app, name="prompt")


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
        raise _fail(exc) from exc
    typer.echo(version.ref)


@prompt_app.command("list")
def prompt_list(
    name: Annotated[str, typer.Argument(help="The prompt's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
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
        raise _fail(exc) from exc
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
        raise _fail(exc) from exc


@gateway_app.command("eval")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
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
        raise _fail(exc if isinstance(exc, MloopError) else MloopError(str(exc))) from exc
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.explain())
    if not report.verdict.passed:
        raise typer.Exit(1)


def main() -> None:
    """Run the gateway CLI on its own (``python -m mloop.cli._gateway``)."""
    gateway_app()


if __name__ == "__main__":
    main()
