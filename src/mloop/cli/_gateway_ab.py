"""``mloop gateway ab start|status|stop``: live A/B of two prompt versions on real traffic."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mloop.cli._gateway_options import JsonOption, fail
from mloop.config import load_settings
from mloop.errors import MloopError

__all__ = ["ab_app"]

ab_app = typer.Typer(
    name="ab",
    help="Live A/B of prompt versions: split an alias's traffic, decide by an always-valid test.",
    no_args_is_help=True,
)


def _live() -> Any:
    from mloop.gateway import LiveAB, PromptRegistry
    from mloop.store import MetadataStore

    return LiveAB(PromptRegistry(MetadataStore.from_settings(load_settings())))


def _describe(status: dict[str, Any]) -> str:
    lines = [
        f"{status['id']}  {status['ref']}: @{status['control']} (control) vs "
        f"@{status['candidate']} (candidate, {status['share']:.0%} of traffic)  "
        f"metric={status['metric']}  alpha={status['alpha']}  [{status['status']}]"
    ]
    for arm, a in status.get("arms", {}).items():
        mean = "-" if a["mean"] is None else f"{a['mean']:.3f}"
        lines.append(
            f"  {arm:9} @{a['version']}: {a['requests']} answers, {a['outcomes']} outcomes, "
            f"mean {mean}"
        )
    if status["status"] != "running":
        lines.append(f"  ended: {status['reason']}")
    elif "decision" in status:
        d = status["decision"]
        p = "" if d["p_value"] is None else f" (always-valid p = {d['p_value']:.4f})"
        pending = "" if d["action"] == "continue" else " (a gateway applies it at the next outcome)"
        lines.append(f"  now: {d['action']}{p}{pending}: {d['reason']}")
    return "\n".join(lines)


@ab_app.command("start")
def ab_start(
    ref: Annotated[
        str, typer.Argument(help="The alias under test, e.g. support-answer@production.")
    ],
    candidate: Annotated[int, typer.Option(help="The prompt version to test.")],
    control: Annotated[
        int | None, typer.Option(help="The version to beat (default: the alias's version now).")
    ] = None,
    share: Annotated[float, typer.Option(help="The candidate's share of traffic.")] = 0.5,
    metric: Annotated[
        str,
        typer.Option(
            help="feedback (POST /v1/feedback), or a scorer applied to each answer: exact, "
            "regex, json_schema, numeric[:TOL], judge:ROUTE or module:function."
        ),
    ] = "feedback",
    expected: Annotated[
        str | None, typer.Option(help="What exact/regex/numeric scorers compare with.")
    ] = None,
    rubric: Annotated[str | None, typer.Option(help="The rubric a judge scores by.")] = None,
    alpha: Annotated[float, typer.Option(help="False-positive rate of the decision.")] = 0.05,
    mde: Annotated[
        float, typer.Option(help="The smallest difference in mean worth finding.")
    ] = 0.1,
    min_samples: Annotated[int, typer.Option(help="Outcomes per arm before any decision.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Split an alias's traffic between its version and a candidate; the test moves the alias."""
    case = {k: v for k, v in (("expected", expected), ("rubric", rubric)) if v is not None}
    try:
        experiment = _live().start(
            ref,
            candidate,
            control=control,
            share=share,
            metric=metric,
            alpha=alpha,
            mde=mde,
            min_samples=min_samples,
            case=case,
        )
    except MloopError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(experiment.to_dict(), indent=2))
        return
    typer.echo(
        f"{experiment.id}: {experiment.ref} @{experiment.control} vs @{experiment.candidate} "
        f"({experiment.share:.0%} to the candidate); gateways pick it up within seconds."
    )


@ab_app.command("status")
def ab_status(
    experiment_id: Annotated[
        str | None, typer.Argument(help="The experiment (default: all of them).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Each arm's answers, outcomes and mean, and what the test says now."""
    live = _live()
    try:
        if experiment_id is not None:
            found = [live.status(experiment_id)]
        else:
            found = [live.status(e.id) for e in live.store.experiments()]
    except MloopError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(found if experiment_id is None else found[0], indent=2))
        return
    if not found:
        typer.echo("No A/B experiments. Start one with: mloop gateway ab start NAME@ALIAS ...")
    for status in found:
        typer.echo(_describe(status))


@ab_app.command("stop")
def ab_stop(
    experiment_id: Annotated[str, typer.Argument(help="The experiment to stop.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Stop an experiment by hand; the alias stays where it is."""
    try:
        experiment = _live().stop(experiment_id, reason=reason)
    except MloopError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(experiment.to_dict(), indent=2))
        return
    typer.echo(f"{experiment.id}: {experiment.status} ({experiment.reason})")
