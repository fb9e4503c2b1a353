"""``mloop deploy`` and ``mloop rollout status|promote|rollback|pause|resume|history``."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer

from mloop.cli._context import state, when
from mloop.cli._table import Table, make_console
from mloop.errors import InvalidInput

__all__ = ["deploy", "rollout_app"]

console = make_console()
rollout_app = typer.Typer(
    help="Watch and steer rollouts: status, promote, rollback, pause, resume, history.",
    no_args_is_help=True,
)


class StrategyName(StrEnum):
    """Rollout strategies the CLI accepts."""

    shadow = "shadow"
    canary = "canary"
    ab = "ab"
    blue_green = "blue-green"


def _steps(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InvalidInput(
            f"--steps {text!r} is not a list of percentages; write e.g. --steps 5,25,50,100."
        ) from None


def deploy(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The candidate, as name:version (e.g. churn:4).")],
    strategy: Annotated[
        StrategyName, typer.Option(help="How to roll it out.")
    ] = StrategyName.canary,
    steps: Annotated[str, typer.Option(help="Canary: traffic percentages.")] = "5,25,50,100",
    step_duration: Annotated[
        str, typer.Option(help="Canary: time per step (30s, 10m, 2h).")
    ] = "10m",
    guard: Annotated[
        list[str] | None,
        typer.Option(help="Condition that must hold, e.g. 'error_rate<0.01' (repeatable)."),
    ] = None,
    min_requests: Annotated[int, typer.Option(help="Requests per step before guards count.")] = 100,
    min_labels: Annotated[
        int, typer.Option(help="Feedback labels before accuracy guards count.")
    ] = 50,
    interval: Annotated[str, typer.Option(help="How often the controller evaluates.")] = "30s",
    duration: Annotated[str, typer.Option(help="Shadow: how long to mirror traffic.")] = "1h",
    split: Annotated[
        float, typer.Option(help="A/B: percent of keys sent to the candidate.")
    ] = 50.0,
    key: Annotated[str, typer.Option(help="A/B: request field for sticky assignment.")] = "user_id",
    metric: Annotated[str, typer.Option(help="A/B: outcome metric from feedback.")] = "conversion",
    alpha: Annotated[
        float, typer.Option(help="A/B: false-positive rate, valid at every look.")
    ] = 0.05,
    mde: Annotated[float, typer.Option(help="A/B: effect size to tune the test for.")] = 0.02,
    min_samples: Annotated[int, typer.Option(help="A/B: samples per arm before a verdict.")] = 200,
    max_duration: Annotated[str, typer.Option(help="A/B: stop without a winner after.")] = "14d",
    hold: Annotated[str, typer.Option(help="Blue-green: keep the old version warm for.")] = "10m",
    promote: Annotated[
        bool | None,
        typer.Option(
            "--promote/--no-promote", help="Shadow/A-B: promote automatically on success."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Roll a new version out safely: shadow, canary, A/B test or blue-green."""
    from mloop.rollout import (
        ABPolicy,
        BlueGreenPolicy,
        CanaryPolicy,
        Guard,
        Policy,
        Rollouts,
        ShadowPolicy,
        parse_duration,
    )

    common: dict[str, Any] = {
        "guards": tuple(Guard.parse(g) for g in guard or ()),
        "min_requests": min_requests,
        "min_labels": min_labels,
        "interval_s": parse_duration(interval),
    }
    policy: Policy
    if strategy is StrategyName.shadow:
        policy = ShadowPolicy(duration_s=parse_duration(duration), promote=bool(promote), **common)
    elif strategy is StrategyName.canary:
        policy = CanaryPolicy(
            steps=_steps(steps), step_duration_s=parse_duration(step_duration), **common
        )
    elif strategy is StrategyName.ab:
        policy = ABPolicy(
            split=split,
            key=key,
            metric=metric,
            alpha=alpha,
            mde=mde,
            min_samples=min_samples,
            max_duration_s=parse_duration(max_duration),
            promote=True if promote is None else promote,
            **common,
        )
    else:
        policy = BlueGreenPolicy(hold_s=parse_duration(hold), **common)
    started = Rollouts(state(ctx).registry).deploy(ref, policy)
    if as_json:
        typer.echo(json.dumps(started.to_dict(), indent=2))
        return
    console.print(
        f"Started {policy.strategy} of {started.model}:{started.candidate} "
        f"against {started.model}:{started.stable} (rollout {started.id}). "
        f"It waits until serving has warmed version {started.candidate}. "
        f"Watch it: mloop rollout status {started.model}"
    )


@rollout_app.command("status")
def status(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The model's active (else latest) rollout: phase, traffic, reason, verdict."""
    from mloop.rollout import Rollouts, policy_to_dict

    current, policy = Rollouts(state(ctx).registry).status(model)
    if as_json:
        typer.echo(json.dumps({**current.to_dict(), "policy": policy_to_dict(policy)}, indent=2))
        return
    table = Table(show_header=False, title=f"{model}: {current.strategy} rollout {current.id}")
    table.add_row("phase", current.phase + (" (paused)" if current.paused else ""))
    table.add_row("stable → candidate", f"{current.stable} → {current.candidate}")
    table.add_row("candidate traffic", f"{current.weight:g}%")
    table.add_row("guards", ", ".join(str(g) for g in policy.guards) or "-")
    table.add_row("started", when(current.started_at))
    table.add_row("updated", when(current.updated_at))
    table.add_row("reason", current.reason)
    if current.verdict:
        v = current.verdict
        table.add_row(
            "verdict",
            f"{v.get('outcome')}: effect {v.get('effect')} [{v.get('low')}, {v.get('high')}], "
            f"n={v.get('n_a')}/{v.get('n_b')}",
        )
    console.print(table)


def _command(ctx: typer.Context, model: str, command: str, reason: str) -> None:
    from mloop.rollout import Rollouts

    after = Rollouts(state(ctx).registry).command(model, command, reason=reason)
    console.print(f"{model}: {command} done; phase {after.phase}, candidate at {after.weight:g}%.")


_Model = Annotated[str, typer.Argument(help="Model name.")]
_Reason = Annotated[str, typer.Option(help="Why (kept in the audit trail).")]


@rollout_app.command("promote")
def promote_cmd(ctx: typer.Context, model: _Model, reason: _Reason = "") -> None:
    """Promote the candidate now: it becomes the production version."""
    _command(ctx, model, "promote", reason)


@rollout_app.command("rollback")
def rollback_cmd(ctx: typer.Context, model: _Model, reason: _Reason = "") -> None:
    """Send all traffic back to the stable version and end the rollout."""
    _command(ctx, model, "rollback", reason)


@rollout_app.command("pause")
def pause_cmd(ctx: typer.Context, model: _Model, reason: _Reason = "") -> None:
    """Freeze the rollout at its current traffic split."""
    _command(ctx, model, "pause", reason)


@rollout_app.command("resume")
def resume_cmd(ctx: typer.Context, model: _Model, reason: _Reason = "") -> None:
    """Continue a paused rollout (the current step restarts)."""
    _command(ctx, model, "resume", reason)


@rollout_app.command("history")
def history(
    ctx: typer.Context,
    model: _Model,
    limit: Annotated[int, typer.Option(help="Most recent transitions to show.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every transition of the model's rollouts with its reason and the metrics at that moment."""
    from mloop.rollout import Rollouts

    events = Rollouts(state(ctx).registry).history(model, limit)
    if as_json:
        typer.echo(json.dumps(events, indent=2))
        return
    if not events:
        console.print(f"{model} has no rollouts yet.")
        return
    table = Table("when", "version", "action", "phase", "traffic", "reason", "metrics", "by")
    for e in events:
        metrics = (e["observations"] or {}).get("metrics", {})
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if v is not None)
        table.add_row(
            when(e["at"]),
            str(e["candidate"]),
            e["action"],
            f"{e['from']}→{e['to']}",
            f"{e['weight']:g}%",
            e["reason"],
            shown or "-",
            e["actor"],
        )
    console.print(table)
