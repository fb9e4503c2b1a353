"""The precomputed routing table: weights, stickiness, A/B arms, shadow copies, readiness."""

from __future__ import annotations

from collections import Counter

import pytest

from mloop.errors import NotFound
from mloop.rollout import RolloutState, RouteDecision, RoutingTable, bucket

T0 = 1_000_000.0


def rollout(
    strategy: str, phase: str = "running", weight: float = 25.0, **extra: object
) -> RolloutState:
    return RolloutState(
        id="rid-1",
        model="churn",
        stable=3,
        candidate=4,
        strategy=strategy,  # type: ignore[arg-type]
        started_at=T0,
        step_started_at=T0,
        updated_at=T0,
        phase=phase,  # type: ignore[arg-type]
        step=0,
        weight=weight,
        **extra,  # type: ignore[arg-type]
    )


def test_without_rollout_the_production_version_answers() -> None:
    table = RoutingTable({"churn": 3})
    assert table.route("churn", None) == RouteDecision(3)
    assert table.versions_in_use() == {"churn": {3}}


def test_unknown_model_says_how_to_fix() -> None:
    with pytest.raises(NotFound, match="mloop alias set"):
        RoutingTable({}).route("churn", None)


def test_canary_weight_is_respected_and_keys_are_sticky() -> None:
    table = RoutingTable({"churn": 3}, [rollout("canary", weight=25.0)])
    counts = Counter(table.route("churn", f"user-{i}").version for i in range(20_000))
    assert abs(counts[4] / 20_000 - 0.25) < 0.02
    for i in range(200):
        assert table.route("churn", f"user-{i}") == table.route("churn", f"user-{i}")
    assert table.versions_in_use() == {"churn": {3, 4}}
    arms = {table.route("churn", f"u{i}").arm for i in range(200)}
    assert arms == {"stable", "candidate"}


def test_keyless_canary_requests_split_randomly() -> None:
    table = RoutingTable({"churn": 3}, [rollout("canary", weight=50.0)])
    counts = Counter(table.route("churn", None).version for _ in range(4000))
    assert 1700 < counts[4] < 2300


def test_ab_assignment_is_stable_hash_of_key_and_rollout() -> None:
    table = RoutingTable({"churn": 3}, [rollout("ab", weight=50.0)])
    for i in range(500):
        d = table.route("churn", f"user-{i}")
        assert d.arm == ("b" if d.version == 4 else "a")
        assert (bucket("rid-1", f"user-{i}") < 5000) == (d.version == 4)
    # requests without a key join no arm
    assert table.route("churn", None) == RouteDecision(3, (), "stable")
    # another rollout id reshuffles users
    other = RoutingTable({"churn": 3}, [rollout("ab", weight=50.0).replace(id="rid-2")])
    same = sum(table.route("churn", f"u{i}") == other.route("churn", f"u{i}") for i in range(2000))
    assert 800 < same < 1200


def test_shadow_mirrors_and_users_only_see_stable() -> None:
    table = RoutingTable({"churn": 3}, [rollout("shadow", weight=0.0)])
    assert {table.route("churn", f"k{i}") for i in range(100)} == {RouteDecision(3, (4,), "stable")}


def test_versions_that_are_not_ready_never_answer_or_shadow() -> None:
    ready: set[int] = {3}

    def is_ready(model: str, version: int) -> bool:
        return version in ready

    canary = RoutingTable({"churn": 3}, [rollout("blue-green", weight=100.0)], is_ready=is_ready)
    assert canary.route("churn", "k") == RouteDecision(3)
    shadow = RoutingTable({"churn": 3}, [rollout("shadow", weight=0.0)], is_ready=is_ready)
    assert shadow.route("churn", "k") == RouteDecision(3)
    ready.add(4)
    assert canary.route("churn", "k") == RouteDecision(4, (), "candidate")
    assert shadow.route("churn", "k") == RouteDecision(3, (4,), "stable")


@pytest.mark.parametrize("phase", ["warming", "promoted", "rolled_back", "completed"])
def test_only_running_rollouts_send_traffic_to_the_candidate(phase: str) -> None:
    table = RoutingTable({"churn": 3}, [rollout("canary", phase=phase, weight=50.0)])
    assert {table.route("churn", f"k{i}").version for i in range(200)} == {3}
    in_use = table.versions_in_use()["churn"]
    assert in_use == ({3, 4} if phase == "warming" else {3})


def test_paused_rollout_keeps_its_split() -> None:
    table = RoutingTable({"churn": 3}, [rollout("canary", weight=50.0, paused=True)])
    assert {table.route("churn", f"k{i}").version for i in range(200)} == {3, 4}


def test_an_unknown_model_is_404_naming_the_served_models() -> None:
    with pytest.raises(NotFound, match="Served models: churn, fraud") as info:
        RoutingTable({"churn": 3, "fraud": 1}).route("chrun", None)
    assert info.value.details["known_models"] == ["churn", "fraud"]
