"""Fault injection: bad candidates roll back by themselves within two intervals; good ones promote."""

from __future__ import annotations

import pytest
from rollout_harness import FakeModel, Harness

from mloop._clock import ManualClock
from mloop.registry import Registry
from mloop.rollout import ABPolicy, BlueGreenPolicy, CanaryPolicy, Guard, ShadowPolicy

INTERVAL = 30.0
GUARDS = tuple(Guard.parse(g) for g in ("error_rate<0.01", "p99_ms<50", "accuracy_drop<0.05"))


def canary() -> CanaryPolicy:
    return CanaryPolicy(
        steps=(5, 25, 50, 100),
        step_duration_s=60,
        guards=GUARDS,
        min_requests=50,
        min_labels=50,
        interval_s=INTERVAL,
    )


def harness(registry: Registry, clock: ManualClock, **candidate: float) -> Harness:
    models = {3: FakeModel(3, clock), 4: FakeModel(4, clock, **candidate)}
    return Harness(registry, clock, models)


@pytest.mark.parametrize(
    ("fault", "breached"),
    [
        ({"error_share": 0.2}, "error_rate<0.01"),
        ({"latency_ms": 105.0}, "p99_ms<50"),
        ({"accuracy": 0.75}, "accuracy_drop<0.05"),
    ],
    ids=["errors-20pct", "100ms-slower", "accuracy-minus-15pt"],
)
def test_bad_canary_rolls_back_within_two_intervals(
    registry: Registry, clock: ManualClock, fault: dict[str, float], breached: str
) -> None:
    h = harness(registry, clock, **fault)
    h.deploy(4, canary())
    assert h.phase() == "running"
    actions: list[str] = []
    for _ in range(2):
        actions += h.interval(2000, INTERVAL)
        if "rollback" in actions:
            break
    assert actions[-1:] == ["rollback"], h.rollouts.status("churn")[0].reason
    state, _ = h.rollouts.status("churn")
    assert state.phase == "rolled_back" and breached in state.reason
    assert registry.aliases("churn")["production"] == 3
    # from now on only stable answers
    before = len(h.responses)
    h.serve(300)
    assert {v for v, _ in h.responses[before:]} == {3}
    # the audit trail has the reason and the metrics at that moment
    last = h.rollouts.history("churn")[-1]
    assert last["action"] == "rollback" and breached in last["reason"]
    assert last["observations"]["candidate"]["requests"] >= 50
    assert last["observations"]["metrics"][breached.split("<")[0]] is not None
    assert any(e["action"] == "rollout.rollback" for e in registry.history("churn"))


def test_healthy_canary_walks_to_100_and_promotes(registry: Registry, clock: ManualClock) -> None:
    h = harness(registry, clock)
    h.deploy(4, canary())
    weights = []
    for _ in range(12):
        h.interval(2000, INTERVAL)
        state, _ = h.rollouts.status("churn")
        weights.append(state.weight)
        if not state.active:
            break
    assert state.phase == "promoted", state.reason
    assert weights[-1] == 100 and sorted(set(weights)) == [5.0, 25.0, 50.0, 100.0]
    assert registry.aliases("churn")["production"] == 4
    assert h.failures == 0
    actions = [e["action"] for e in h.rollouts.history("churn")]
    assert actions == ["create", "start", "advance", "advance", "advance", "promote"]
    h.serve(100)
    assert {v for v, _ in h.responses[-100:]} == {4}
    assert h.router.versions_in_use() == {"churn": {4}}


def test_canary_holds_while_data_is_insufficient(registry: Registry, clock: ManualClock) -> None:
    h = harness(registry, clock)
    h.deploy(4, canary())
    for _ in range(4):
        h.interval(100, INTERVAL)  # ~5 candidate requests per interval: never enough
    state, _ = h.rollouts.status("churn")
    assert state.phase == "running" and state.weight == 5
    assert "insufficient data" in state.reason


def test_candidate_waits_for_warm_up(registry: Registry, clock: ManualClock) -> None:
    h = harness(registry, clock)
    h.rollouts.deploy("churn:4", canary(), actor="test")
    h.router.refresh()
    assert h.router.versions_in_use() == {"churn": {3, 4}}  # serving warms the candidate
    h.controller.tick()
    assert h.phase() == "warming"
    h.serve(200)
    assert {v for v, _ in h.responses} == {3}
    h.warm()
    assert [d.action for d in h.controller.tick()] == ["start"]


def test_shadow_reports_agreement_and_users_see_only_stable(
    registry: Registry, clock: ManualClock
) -> None:
    h = harness(registry, clock, accuracy=0.85, latency_ms=8.0)
    policy = ShadowPolicy(
        duration_s=90, guards=(Guard.parse("agreement>0.5"),), min_requests=100, interval_s=30
    )
    h.deploy(4, policy)
    for _ in range(4):
        h.interval(500, 30)
    assert {v for v, _ in h.responses} == {3}
    state, _ = h.rollouts.status("churn")
    assert state.phase == "completed", state.reason
    assert registry.aliases("churn")["production"] == 3
    seen = h.rollouts.history("churn")[-1]["observations"]["candidate"]
    assert seen["shadow_pairs"] >= 100
    assert 0.5 < seen["agreement"] < 1.0
    assert seen["latency_diff_ms"] == pytest.approx(3.0)
    assert seen["mean_score_diff"] == pytest.approx(1 - seen["agreement"])


def test_ab_test_promotes_the_better_arm_with_a_verdict(
    registry: Registry, clock: ManualClock
) -> None:
    h = harness(registry, clock, conversion=0.16)
    h.models[3].conversion = 0.10
    policy = ABPolicy(split=50, key="user_id", metric="conversion", min_samples=500, interval_s=30)
    h.deploy(4, policy)
    for _ in range(10):
        h.interval(2000, 30, conversion_metric="conversion")
        if not h.rollouts.status("churn")[0].active:
            break
    state, _ = h.rollouts.status("churn")
    assert state.phase == "promoted", state.reason
    assert state.verdict is not None and state.verdict["outcome"] == "b_better"
    assert state.verdict["low"] > 0
    assert {arm for _, arm in h.responses} == {"a", "b"}


def test_blue_green_switches_at_once_and_rolls_back_instantly(
    registry: Registry, clock: ManualClock
) -> None:
    h = harness(registry, clock, error_share=0.2)
    policy = BlueGreenPolicy(
        hold_s=300, guards=(Guard.parse("error_rate<0.01"),), min_requests=50, interval_s=30
    )
    h.deploy(4, policy)
    assert h.router.versions_in_use() == {"churn": {3, 4}}  # old stays warm
    h.serve(100)
    assert {v for v, _ in h.responses} == {4}
    assert h.interval(500, 30) == ["rollback"]
    h.serve(100)
    assert {v for v, _ in h.responses[-100:]} == {3}


def test_healthy_blue_green_promotes_after_the_hold(registry: Registry, clock: ManualClock) -> None:
    h = harness(registry, clock)
    policy = BlueGreenPolicy(hold_s=60, guards=GUARDS, min_requests=50, interval_s=30)
    h.serve(500)  # production traffic before the switch is the baseline for accuracy_drop
    h.deploy(4, policy)
    for _ in range(4):
        h.interval(500, 30)
    assert h.phase() == "promoted"
    assert registry.aliases("churn")["production"] == 4


def test_a_shadow_with_then_hands_over_to_a_canary_that_promotes(
    registry: Registry, clock: ManualClock
) -> None:
    from mloop.rollout import policy_to_dict

    h = harness(registry, clock)
    follow = policy_to_dict(CanaryPolicy(steps=(50, 100), step_duration_s=60, interval_s=INTERVAL))
    h.deploy(4, ShadowPolicy(duration_s=60, min_requests=50, interval_s=INTERVAL, then=follow))
    for _ in range(12):
        h.interval(200, INTERVAL)
    assert registry.aliases("churn")["production"] == 4
    actions = [e["action"] for e in h.rollouts.history("churn")]
    assert actions.index("complete") < actions.index("promote")
    strategies = {e["strategy"] for e in h.rollouts.history("churn")}
    assert strategies == {"shadow", "canary"}


def test_a_shadow_that_hands_over_must_not_promote_itself() -> None:
    from mloop.errors import InvalidInput

    with pytest.raises(InvalidInput, match="then"):
        ShadowPolicy(promote=True, then={"strategy": "canary"})
    with pytest.raises(InvalidInput, match="canary, A/B or blue-green"):
        ShadowPolicy(then={"strategy": "shadow"})
