"""The rollout decision: a pure function of (policy, state, observations).

``next_step`` is the only place that decides when a rollout starts, advances,
promotes, rolls back or waits; ``apply_command`` does the same for operator
commands. Neither reads a clock or a database, so every case is unit-tested.
"""

from __future__ import annotations

from mloop._sequential import MetricSummary, msprt
from mloop.errors import Conflict
from mloop.rollout._observations import Observations, VersionStats
from mloop.rollout._policy import (
    GUARD_METRICS,
    ABPolicy,
    BlueGreenPolicy,
    CanaryPolicy,
    Policy,
    ShadowPolicy,
)
from mloop.rollout._state import Action, Decision, RolloutState

__all__ = ["apply_command", "guard_metrics", "initial_weight", "next_step"]

_REQUEST_METRICS = {"error_rate", "p50_ms", "p99_ms", "p99_delta_ms", "prediction_drift"}


def guard_metrics(policy: Policy, obs: Observations) -> dict[str, float | None]:
    """Value of every guard metric, or None where data is insufficient to judge it."""
    c, s = obs.candidate, obs.stable
    enough_c = c.requests >= max(1, policy.min_requests)
    enough_s = s.requests >= max(1, policy.min_requests)
    labels_c = c.labels >= max(1, policy.min_labels) and c.accuracy is not None
    labels_s = s.labels >= max(1, policy.min_labels) and s.accuracy is not None
    values: dict[str, float | None] = dict.fromkeys(GUARD_METRICS)
    if enough_c:
        values["error_rate"] = c.error_rate
        values["p50_ms"] = c.p50_ms
        values["p99_ms"] = c.p99_ms
        values["prediction_drift"] = c.prediction_drift
        values["estimated_accuracy"] = c.estimated_accuracy
        if enough_s and c.p99_ms is not None and s.p99_ms is not None:
            values["p99_delta_ms"] = c.p99_ms - s.p99_ms
        if enough_s and c.estimated_accuracy is not None and s.estimated_accuracy is not None:
            values["estimated_accuracy_drop"] = s.estimated_accuracy - c.estimated_accuracy
    if labels_c:
        values["accuracy"] = c.accuracy
        if labels_s and s.accuracy is not None and c.accuracy is not None:
            values["accuracy_drop"] = s.accuracy - c.accuracy
    if c.shadow_pairs >= max(1, policy.min_requests):
        values["agreement"] = c.agreement
    return values


def _judge(policy: Policy, metrics: dict[str, float | None]) -> tuple[list[str], list[str]]:
    """(breaches, guards without enough data), each as readable strings."""
    breaches: list[str] = []
    unknown: list[str] = []
    for guard in policy.guards:
        value = metrics.get(guard.metric)
        if value is None:
            unknown.append(str(guard))
        elif not guard.holds(value):
            breaches.append(f"{guard} breached ({guard.metric}={value:.4g})")
    return breaches, unknown


def initial_weight(policy: Policy) -> float:
    """Percent of live traffic the candidate answers once the rollout starts."""
    if isinstance(policy, CanaryPolicy):
        return policy.steps[0]
    if isinstance(policy, ABPolicy):
        return policy.split
    if isinstance(policy, BlueGreenPolicy):
        return 100.0
    return 0.0


def _decide(
    action: Action,
    reason: str,
    state: RolloutState,
    at: float,
    metrics: dict[str, float | None],
    **changes: object,
) -> Decision:
    new = (
        state.replace(reason=reason, updated_at=at, **changes)
        if action != "hold"
        else state.replace(reason=reason)
    )
    return Decision(action, reason, new, metrics)


def _insufficient(policy: Policy, obs: Observations, unknown: list[str]) -> str | None:
    c = obs.candidate
    counted = c.shadow_pairs if isinstance(policy, ShadowPolicy) else c.requests
    if counted < policy.min_requests:
        what = "shadow pairs" if isinstance(policy, ShadowPolicy) else "requests"
        return f"insufficient data: {counted} of {policy.min_requests} {what} this step"
    if unknown:
        return f"insufficient data for guard(s) {', '.join(unknown)}"
    return None


def _ab_metric(stats: VersionStats, metric: str) -> MetricSummary:
    found = stats.outcomes.get(metric)
    if found is not None:
        return found
    if metric == "accuracy" and stats.accuracy is not None:
        p = stats.accuracy
        return MetricSummary(stats.labels, p, p * (1 - p))
    return MetricSummary()


def next_step(policy: Policy, state: RolloutState, obs: Observations) -> Decision:
    """Decide what the rollout does now; pure (time comes from ``obs.at``)."""
    at = obs.at
    metrics = guard_metrics(policy, obs)
    if not state.active:
        return _decide("hold", state.reason or f"rollout {state.phase}", state, at, metrics)
    if state.paused:
        return _decide("hold", "paused by operator; resume to continue", state, at, metrics)
    if state.phase == "warming":
        if not obs.candidate.ready:
            return _decide(
                "hold", f"waiting for version {state.candidate} to be warm", state, at, metrics
            )
        weight = initial_weight(policy)
        return _decide(
            "start",
            f"version {state.candidate} is warm; {policy.strategy} started at {weight:g}%",
            state,
            at,
            metrics,
            phase="running",
            step=0,
            weight=weight,
            step_started_at=at,
        )
    breaches, unknown = _judge(policy, metrics)
    if breaches:
        return _decide(
            "rollback", "; ".join(breaches), state, at, metrics, phase="rolled_back", weight=0.0
        )
    if not obs.candidate.ready:
        return _decide("hold", f"version {state.candidate} is not ready", state, at, metrics)
    elapsed = at - state.step_started_at
    if isinstance(policy, CanaryPolicy):
        return _canary(policy, state, obs, metrics, unknown, elapsed)
    if isinstance(policy, ABPolicy):
        return _ab(policy, state, obs, metrics)
    lacking = _insufficient(policy, obs, unknown)
    if isinstance(policy, ShadowPolicy):
        if elapsed < policy.duration_s:
            return _decide(
                "hold",
                f"shadowing for {elapsed:.0f}s of {policy.duration_s:.0f}s",
                state,
                at,
                metrics,
            )
        if lacking:
            return _decide("hold", lacking, state, at, metrics)
        if policy.promote:
            return _decide(
                "promote",
                "shadow period passed with guards holding",
                state,
                at,
                metrics,
                phase="promoted",
                weight=100.0,
            )
        return _decide(
            "complete",
            "shadow period passed with guards holding",
            state,
            at,
            metrics,
            phase="completed",
        )
    assert isinstance(policy, BlueGreenPolicy)
    if elapsed < policy.hold_s:
        return _decide(
            "hold",
            f"switched; holding stable warm for {elapsed:.0f}s of {policy.hold_s:.0f}s",
            state,
            at,
            metrics,
        )
    if lacking:
        return _decide("hold", lacking, state, at, metrics)
    return _decide(
        "promote",
        "hold period passed with guards holding",
        state,
        at,
        metrics,
        phase="promoted",
        weight=100.0,
    )


def _canary(
    policy: CanaryPolicy,
    state: RolloutState,
    obs: Observations,
    metrics: dict[str, float | None],
    unknown: list[str],
    elapsed: float,
) -> Decision:
    at = obs.at
    if elapsed < policy.step_duration_s:
        return _decide(
            "hold",
            f"step {state.step + 1}/{len(policy.steps)} at {state.weight:g}% for {elapsed:.0f}s of {policy.step_duration_s:.0f}s",
            state,
            at,
            metrics,
        )
    lacking = _insufficient(policy, obs, unknown)
    if lacking:
        return _decide("hold", lacking, state, at, metrics)
    if state.step + 1 >= len(policy.steps):
        return _decide(
            "promote",
            f"all {len(policy.steps)} steps passed with guards holding",
            state,
            at,
            metrics,
            phase="promoted",
            weight=100.0,
        )
    step = state.step + 1
    weight = policy.steps[step]
    return _decide(
        "advance",
        f"step {state.step + 1} passed with guards holding; now {weight:g}%",
        state,
        at,
        metrics,
        step=step,
        weight=weight,
        step_started_at=at,
    )


def _ab(
    policy: ABPolicy, state: RolloutState, obs: Observations, metrics: dict[str, float | None]
) -> Decision:
    at = obs.at
    a = _ab_metric(obs.stable, policy.metric)
    b = _ab_metric(obs.candidate, policy.metric)
    verdict = msprt(a, b, alpha=policy.alpha, tau=policy.mde, min_samples=policy.min_samples)
    data = verdict.to_dict()
    summary = (
        f"{policy.metric}: a={verdict.mean_a} (n={verdict.n_a}), b={verdict.mean_b} (n={verdict.n_b})"
        if verdict.effect is None
        else f"{policy.metric}: effect b-a={verdict.effect:+.4g} [{verdict.low:+.4g}, {verdict.high:+.4g}], n={verdict.n_a}/{verdict.n_b}"
    )
    if verdict.outcome == "b_better":
        if policy.promote:
            return _decide(
                "promote",
                f"b is better; {summary}",
                state,
                at,
                metrics,
                phase="promoted",
                weight=100.0,
                verdict=data,
            )
        return _decide(
            "complete",
            f"b is better; {summary}",
            state,
            at,
            metrics,
            phase="completed",
            weight=0.0,
            verdict=data,
        )
    if verdict.outcome == "a_better":
        return _decide(
            "rollback",
            f"b is worse; {summary}",
            state,
            at,
            metrics,
            phase="rolled_back",
            weight=0.0,
            verdict=data,
        )
    if at - state.started_at >= policy.max_duration_s:
        return _decide(
            "complete",
            f"no significant difference by the deadline; {summary}",
            state,
            at,
            metrics,
            phase="completed",
            weight=0.0,
            verdict=data,
        )
    prefix = (
        "collecting samples"
        if verdict.outcome == "insufficient_data"
        else "no significant difference yet"
    )
    return _decide("hold", f"{prefix}; {summary}", state.replace(verdict=data), at, metrics)


def apply_command(state: RolloutState, command: str, at: float, reason: str = "") -> Decision:
    """Apply an operator command (promote, rollback, pause, resume); pure."""
    if not state.active:
        raise Conflict(
            f"The rollout of {state.model}:{state.candidate} is already {state.phase}; "
            f"start a new one with: mloop deploy {state.model}:<version> --strategy <strategy>"
        )
    why = reason or f"operator {command}"
    if command == "promote":
        return Decision(
            "promote", why, state.replace(phase="promoted", weight=100.0, reason=why, updated_at=at)
        )
    if command == "rollback":
        return Decision(
            "rollback",
            why,
            state.replace(phase="rolled_back", weight=0.0, reason=why, updated_at=at),
        )
    if command == "pause":
        if state.paused:
            raise Conflict(
                f"The rollout of {state.model} is already paused; resume it with: mloop rollout resume {state.model}"
            )
        return Decision("pause", why, state.replace(paused=True, reason=why, updated_at=at))
    if command == "resume":
        if not state.paused:
            raise Conflict(f"The rollout of {state.model} is not paused.")
        # The step restarts: guards judge fresh data, not the traffic seen before the pause.
        return Decision(
            "resume",
            why,
            state.replace(paused=False, reason=why, updated_at=at, step_started_at=at),
        )
    raise Conflict(f"Unknown rollout command {command!r}; use promote, rollback, pause or resume.")
