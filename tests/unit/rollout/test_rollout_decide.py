"""``next_step`` and ``apply_command``: every strategy x state x guard outcome, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.errors import Conflict
from mloop.rollout import (
    TERMINAL_PHASES,
    ABPolicy,
    BlueGreenPolicy,
    CanaryPolicy,
    Guard,
    MetricSummary,
    Observations,
    Policy,
    RolloutState,
    ShadowPolicy,
    VersionStats,
    apply_command,
    guard_metrics,
    next_step,
)

T0 = 1_000_000.0
GUARDS = (Guard.parse("error_rate<0.01"), Guard.parse("p99_ms<50"))


def policies() -> dict[str, Policy]:
    common = {"guards": GUARDS, "min_requests": 100}
    return {
        "shadow": ShadowPolicy(duration_s=600, **common),  # type: ignore[arg-type]
        "canary": CanaryPolicy(steps=(5, 50, 100), step_duration_s=600, **common),  # type: ignore[arg-type]
        "ab": ABPolicy(split=50, min_samples=100, max_duration_s=10_000, **common),  # type: ignore[arg-type]
        "blue-green": BlueGreenPolicy(hold_s=600, **common),  # type: ignore[arg-type]
    }


def state(strategy: str, phase: str = "running", **changes: object) -> RolloutState:
    base = RolloutState(
        id="r1",
        model="churn",
        stable=3,
        candidate=4,
        strategy=strategy,  # type: ignore[arg-type]
        started_at=T0,
        step_started_at=T0,
        updated_at=T0,
        phase=phase,  # type: ignore[arg-type]
        step=0 if phase == "running" else -1,
        weight={"canary": 5.0, "ab": 50.0, "blue-green": 100.0}.get(strategy, 0.0)
        if phase == "running"
        else 0.0,
    )
    return base.replace(**changes)


def healthy(n: int = 500, **extra: object) -> VersionStats:
    return VersionStats(requests=n, errors=0, p50_ms=5.0, p99_ms=10.0, shadow_pairs=n, **extra)  # type: ignore[arg-type]


BREACH = VersionStats(requests=500, errors=100, p50_ms=5.0, p99_ms=10.0, shadow_pairs=500)
THIN = VersionStats(requests=10, errors=0, p50_ms=5.0, p99_ms=10.0, shadow_pairs=10)


def obs(
    candidate: VersionStats, elapsed: float = 601.0, stable: VersionStats | None = None
) -> Observations:
    return Observations(at=T0 + elapsed, stable=stable or healthy(), candidate=candidate)


STRATEGIES = ["shadow", "canary", "ab", "blue-green"]
GUARD_CASES = {"pass": healthy(), "breach": BREACH, "insufficient": THIN}

# (strategy, guard case) -> expected action in "running" after the step/hold duration
RUNNING_EXPECTED = {
    ("shadow", "pass"): "complete",
    ("shadow", "breach"): "rollback",
    ("shadow", "insufficient"): "hold",
    ("canary", "pass"): "advance",
    ("canary", "breach"): "rollback",
    ("canary", "insufficient"): "hold",
    ("ab", "pass"): "hold",  # guards fine, but no outcome samples yet
    ("ab", "breach"): "rollback",
    ("ab", "insufficient"): "hold",
    ("blue-green", "pass"): "promote",
    ("blue-green", "breach"): "rollback",
    ("blue-green", "insufficient"): "hold",
}


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", list(GUARD_CASES))
def test_running_after_the_step(strategy: str, case: str) -> None:
    decision = next_step(policies()[strategy], state(strategy), obs(GUARD_CASES[case]))
    assert decision.action == RUNNING_EXPECTED[strategy, case], decision.reason
    if decision.action == "rollback":
        assert decision.state.phase == "rolled_back" and decision.state.weight == 0
        assert "error_rate<0.01 breached" in decision.reason
    if decision.action == "hold" and case == "insufficient":
        assert "insufficient" in decision.reason or "collecting" in decision.reason


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", list(GUARD_CASES))
def test_running_before_the_step_ends_only_a_breach_acts(strategy: str, case: str) -> None:
    decision = next_step(policies()[strategy], state(strategy), obs(GUARD_CASES[case], elapsed=60))
    assert decision.action == ("rollback" if case == "breach" else "hold")


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", list(GUARD_CASES))
@pytest.mark.parametrize("ready", [True, False])
def test_warming_starts_only_once_the_candidate_is_ready(
    strategy: str, case: str, ready: bool
) -> None:
    candidate = VersionStats(**{**GUARD_CASES[case].__dict__, "ready": ready})
    decision = next_step(policies()[strategy], state(strategy, "warming"), obs(candidate))
    if not ready:
        assert decision.action == "hold" and "warm" in decision.reason
        assert decision.state.weight == 0
        return
    assert decision.action == "start"
    assert decision.state.phase == "running" and decision.state.step == 0
    assert decision.state.step_started_at == T0 + 601
    expected = {"shadow": 0.0, "canary": 5.0, "ab": 50.0, "blue-green": 100.0}[strategy]
    assert decision.state.weight == expected


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", list(GUARD_CASES))
@pytest.mark.parametrize("phase", sorted(TERMINAL_PHASES))
def test_finished_rollouts_never_move(strategy: str, case: str, phase: str) -> None:
    before = state(strategy, phase)
    decision = next_step(policies()[strategy], before, obs(GUARD_CASES[case]))
    assert decision.action == "hold" and decision.state.phase == phase


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", list(GUARD_CASES))
@pytest.mark.parametrize("phase", ["warming", "running"])
def test_paused_rollouts_hold_even_on_breach(strategy: str, case: str, phase: str) -> None:
    decision = next_step(
        policies()[strategy], state(strategy, phase, paused=True), obs(GUARD_CASES[case])
    )
    assert decision.action == "hold" and "paused" in decision.reason


def test_canary_walks_every_step_then_promotes() -> None:
    policy = policies()["canary"]
    current = state("canary")
    seen = [current.weight]
    for i in range(1, 10):
        decision = next_step(policy, current, obs(healthy(), elapsed=601.0 * i))
        current = decision.state
        seen.append(current.weight)
        if decision.action == "promote":
            break
    assert seen == [5.0, 50.0, 100.0, 100.0]
    assert current.phase == "promoted"


def test_canary_step_timer_restarts_on_advance() -> None:
    decision = next_step(policies()["canary"], state("canary"), obs(healthy(), elapsed=700))
    assert decision.state.step_started_at == T0 + 700
    again = next_step(policies()["canary"], decision.state, obs(healthy(), elapsed=800))
    assert again.action == "hold"


def test_unready_candidate_holds_a_running_rollout() -> None:
    candidate = VersionStats(**{**healthy().__dict__, "ready": False})
    decision = next_step(policies()["canary"], state("canary"), obs(candidate))
    assert decision.action == "hold" and "not ready" in decision.reason


def test_shadow_can_promote_when_asked() -> None:
    policy = ShadowPolicy(
        duration_s=600, guards=(Guard.parse("agreement>0.9"),), promote=True, min_requests=100
    )
    good = next_step(policy, state("shadow"), obs(healthy(agreement=0.97)))
    assert good.action == "promote" and good.state.weight == 100
    bad = next_step(policy, state("shadow"), obs(healthy(agreement=0.5)))
    assert bad.action == "rollback" and "agreement" in bad.reason


def test_accuracy_guards_need_labels_on_both_arms() -> None:
    policy = CanaryPolicy(
        steps=(50, 100),
        guards=(Guard.parse("accuracy_drop<0.05"),),
        min_labels=50,
        step_duration_s=60,
    )
    few = obs(healthy(labels=10, accuracy=0.5), stable=healthy(labels=200, accuracy=0.9))
    assert next_step(policy, state("canary"), few).action == "hold"
    many = obs(healthy(labels=200, accuracy=0.75), stable=healthy(labels=200, accuracy=0.9))
    decision = next_step(policy, state("canary"), many)
    assert decision.action == "rollback"
    assert decision.metrics["accuracy_drop"] == pytest.approx(0.15)


def test_guard_metrics_are_none_without_enough_requests() -> None:
    values = guard_metrics(policies()["canary"], obs(THIN))
    assert values["error_rate"] is None and values["p99_ms"] is None
    values = guard_metrics(policies()["canary"], obs(healthy(), stable=healthy()))
    assert values["p99_delta_ms"] == 0.0 and values["error_rate"] == 0.0


def _ab_obs(a: tuple[int, float], b: tuple[int, float], elapsed: float = 100.0) -> Observations:
    def stats(n: int, p: float) -> VersionStats:
        return healthy(outcomes={"conversion": MetricSummary(n, p, p * (1 - p))})

    return obs(stats(*b), elapsed=elapsed, stable=stats(*a))


def test_ab_promotes_a_clear_winner_with_effect_and_interval() -> None:
    decision = next_step(policies()["ab"], state("ab"), _ab_obs((5000, 0.10), (5000, 0.14)))
    assert decision.action == "promote"
    verdict = decision.state.verdict
    assert verdict is not None and verdict["outcome"] == "b_better"
    assert verdict["low"] > 0 and verdict["low"] < 0.04 < verdict["high"]


def test_ab_rolls_back_a_clear_loser() -> None:
    decision = next_step(policies()["ab"], state("ab"), _ab_obs((5000, 0.14), (5000, 0.10)))
    assert decision.action == "rollback" and "worse" in decision.reason


def test_ab_refuses_to_conclude_below_min_samples() -> None:
    decision = next_step(policies()["ab"], state("ab"), _ab_obs((50, 0.0), (50, 1.0)))
    assert decision.action == "hold" and "collecting" in decision.reason


def test_ab_completes_without_winner_at_deadline() -> None:
    decision = next_step(
        policies()["ab"], state("ab"), _ab_obs((5000, 0.10), (5000, 0.1005), elapsed=20_000)
    )
    assert decision.action == "complete" and decision.state.phase == "completed"
    assert decision.state.weight == 0


@pytest.mark.parametrize("command", ["promote", "rollback", "pause"])
def test_commands_on_a_running_rollout(command: str) -> None:
    decision = apply_command(state("canary"), command, T0 + 5)
    assert decision.action == command
    expected = {
        "promote": ("promoted", 100.0),
        "rollback": ("rolled_back", 0.0),
        "pause": ("running", 5.0),
    }
    assert (decision.state.phase, decision.state.weight) == expected[command]


def test_resume_restarts_the_step() -> None:
    paused = apply_command(state("canary"), "pause", T0 + 5).state
    with pytest.raises(Conflict):
        apply_command(paused, "pause", T0 + 6)
    resumed = apply_command(paused, "resume", T0 + 50).state
    assert not resumed.paused and resumed.step_started_at == T0 + 50
    with pytest.raises(Conflict):
        apply_command(resumed, "resume", T0 + 60)


@pytest.mark.parametrize("phase", sorted(TERMINAL_PHASES))
@pytest.mark.parametrize("command", ["promote", "rollback", "pause", "resume"])
def test_commands_on_finished_rollouts_conflict(phase: str, command: str) -> None:
    with pytest.raises(Conflict, match="already"):
        apply_command(state("canary", phase), command, T0)


# --- properties ------------------------------------------------------------------------

_stats = st.builds(
    VersionStats,
    requests=st.integers(0, 2000),
    errors=st.integers(0, 50),
    p50_ms=st.one_of(st.none(), st.floats(0, 200)),
    p99_ms=st.one_of(st.none(), st.floats(0, 500)),
    labels=st.integers(0, 500),
    accuracy=st.one_of(st.none(), st.floats(0, 1)),
    shadow_pairs=st.integers(0, 2000),
    agreement=st.one_of(st.none(), st.floats(0, 1)),
    ready=st.booleans(),
)
_states = st.builds(
    lambda strategy, phase, step, paused, offset: state(strategy, phase, paused=paused).replace(
        step=min(step, 2) if phase == "running" else -1, step_started_at=T0 - offset
    ),
    st.sampled_from(STRATEGIES),
    st.sampled_from(["warming", "running", "promoted", "rolled_back", "completed"]),
    st.integers(0, 2),
    st.booleans(),
    st.floats(0, 5000),
)


@settings(max_examples=300, deadline=None)
@given(_states, _stats, _stats)
def test_properties_of_every_decision(
    before: RolloutState, stable: VersionStats, candidate: VersionStats
) -> None:
    policy = policies()[before.strategy]
    o = Observations(at=T0, stable=stable, candidate=candidate)
    decision = next_step(policy, before, o)
    after = decision.state
    # pure: the same question gives the same answer
    assert next_step(policy, before, o) == decision
    # identity never changes
    assert (after.id, after.model, after.stable, after.candidate, after.strategy) == (
        before.id,
        before.model,
        before.stable,
        before.candidate,
        before.strategy,
    )
    assert 0.0 <= after.weight <= 100.0
    if not before.active or before.paused:
        assert decision.action == "hold"
    breached = [
        g
        for g in policy.guards
        if (v := decision.metrics.get(g.metric)) is not None and not g.holds(v)
    ]
    if before.active and not before.paused and before.phase == "running" and breached:
        assert decision.action == "rollback"
    if decision.action == "promote":
        assert not breached and candidate.ready and after.phase == "promoted"
    if decision.action in ("advance", "start", "promote"):
        assert after.weight >= before.weight
    if decision.action == "hold":
        assert (after.phase, after.weight, after.step) == (before.phase, before.weight, before.step)
