"""Rollout state in the metadata store, on SQLite and real PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from mloop._clock import ManualClock
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.registry import Registry
from mloop.rollout import (
    CanaryPolicy,
    Controller,
    DbRouter,
    Guard,
    InMemoryObservations,
    Rollouts,
    RouteDecision,
)


def policy() -> CanaryPolicy:
    return CanaryPolicy(
        steps=(10, 100), step_duration_s=60, guards=(Guard.parse("error_rate<0.1"),)
    )


def test_deploy_status_commands_and_history(any_registry: Registry, clock: ManualClock) -> None:
    rollouts = Rollouts(any_registry, clock=clock)
    state = rollouts.deploy("churn:4", policy(), actor="alice")
    assert (state.stable, state.candidate, state.phase) == (3, 4, "warming")
    found, stored_policy = rollouts.status("churn")
    assert found == state and stored_policy == policy()

    clock.advance(5)
    paused = rollouts.command("churn", "pause", actor="bob")
    assert paused.paused and paused.revision == state.revision + 1
    resumed = rollouts.command("churn", "resume", actor="bob")
    assert not resumed.paused
    promoted = rollouts.command("churn", "promote", actor="bob", reason="looks good")
    assert promoted.phase == "promoted"
    assert any_registry.aliases("churn")["production"] == 4

    history = rollouts.history("churn")
    assert [e["action"] for e in history] == ["create", "pause", "resume", "promote"]
    assert history[-1]["reason"] == "looks good" and history[-1]["actor"] == "bob"
    audit = [e["action"] for e in any_registry.history("churn")]
    assert "rollout.promote" in audit and "rollout.create" in audit

    with pytest.raises(NotFound, match="no active rollout"):
        rollouts.command("churn", "rollback")
    # the finished rollout is still what status shows
    assert rollouts.status("churn")[0].phase == "promoted"


def test_one_active_rollout_per_model(any_registry: Registry, clock: ManualClock) -> None:
    rollouts = Rollouts(any_registry, clock=clock)
    rollouts.deploy("churn:4", policy())
    with pytest.raises(Conflict, match="already has an active rollout"):
        rollouts.deploy("churn:2", policy())
    rollouts.command("churn", "rollback")
    assert any_registry.aliases("churn")["production"] == 3
    rollouts.deploy("churn:2", policy())  # allowed once the first one ended


def test_deploy_explains_bad_references(registry: Registry, clock: ManualClock) -> None:
    rollouts = Rollouts(registry, clock=clock)
    with pytest.raises(InvalidInput, match="exact version"):
        rollouts.deploy("churn", policy())
    with pytest.raises(NotFound, match="versions: 1, 2, 3, 4"):
        rollouts.deploy("churn:9", policy())
    with pytest.raises(Conflict, match="already the production"):
        rollouts.deploy("churn:3", policy())
    with pytest.raises(NotFound, match="no rollouts"):
        rollouts.status("other")


def test_stale_writer_cannot_overwrite_newer_state(
    any_registry: Registry, clock: ManualClock
) -> None:
    rollouts = Rollouts(any_registry, clock=clock)
    state = rollouts.deploy("churn:4", policy())
    rollouts.command("churn", "pause")
    stale = state.replace(phase="rolled_back", weight=0.0)
    with pytest.raises(Conflict, match="changed"):
        rollouts.store.save(state, stale, "rollback", actor="old-controller")
    assert rollouts.status("churn")[0].paused


def test_every_replica_routes_by_the_same_state(any_registry: Registry, clock: ManualClock) -> None:
    source = InMemoryObservations(clock, assume_ready=True)
    replicas = [DbRouter(any_registry.store, clock=clock, auto_refresh=False) for _ in range(3)]
    assert {r.route("churn", "u1") for r in replicas} == {RouteDecision(3)}
    Rollouts(any_registry, clock=clock).deploy("churn:4", policy())
    Controller(any_registry, source, clock=clock).tick()  # warming -> 10 %
    for r in replicas:
        r.refresh()
    for i in range(300):
        answers = {r.route("churn", f"user-{i}") for r in replicas}
        assert len(answers) == 1
    assert all(r.versions_in_use() == {"churn": {3, 4}} for r in replicas)


def test_router_refreshes_in_the_background_without_blocking(registry: Registry) -> None:
    clock = ManualClock()
    router = DbRouter(registry.store, clock=clock, ttl_s=1.0)
    assert router.route("churn", None).version == 3
    registry.set_alias("churn", "production", 2)
    assert router.route("churn", None).version == 3  # cached
    clock.advance(1.5)
    router.route("churn", None)  # triggers a refresh thread, answers from the old table
    for _ in range(200):
        if router.route("churn", None).version == 2:
            break
        threading.Event().wait(0.01)
    assert router.route("churn", None).version == 2


def test_a_stale_promotion_moves_no_alias(any_registry: Registry, clock: ManualClock) -> None:
    from mloop.rollout import apply_command

    rollouts = Rollouts(any_registry, clock=clock)
    state = rollouts.deploy("churn:4", policy())
    rollouts.command("churn", "rollback", actor="operator")
    late = apply_command(state, "promote", clock.now())  # decided on the old state
    with pytest.raises(Conflict):
        rollouts.apply(state, late, actor="old-controller")
    assert any_registry.aliases("churn")["production"] == 3
    assert rollouts.status("churn")[0].phase == "rolled_back"
