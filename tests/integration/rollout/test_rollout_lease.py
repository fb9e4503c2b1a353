"""Several replicas, one controller: a lease row decides who acts (real PostgreSQL and SQLite)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from rollout_seed import open_registry, seed

from mloop._clock import ManualClock
from mloop.registry import Registry
from mloop.rollout import CanaryPolicy, Controller, InMemoryObservations, Rollouts


def _policy() -> CanaryPolicy:
    return CanaryPolicy(steps=(10, 100), step_duration_s=60, min_requests=0, interval_s=1)


@pytest.mark.postgres
def test_two_controllers_on_postgres_only_one_acts(
    postgres_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    any_registry = open_registry(tmp_path / "replica-a", postgres_url, clock)
    seed(any_registry)
    other = open_registry(tmp_path / "replica-b", postgres_url, clock)  # own engine and pool
    source = InMemoryObservations(clock, assume_ready=True)
    a = Controller(any_registry, source, clock=clock, holder="replica-a", lease_ttl_s=10)
    b = Controller(other, source, clock=clock, holder="replica-b", lease_ttl_s=10)
    Rollouts(any_registry, clock=clock).deploy("churn:4", _policy())

    results: dict[str, list[str]] = {}
    barrier = threading.Barrier(2)

    def run(name: str, controller: Controller) -> None:
        barrier.wait()
        results[name] = [d.action for d in controller.tick()]

    threads = [threading.Thread(target=run, args=p) for p in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {"a", "b"}, results
    acted = [name for name, actions in results.items() if actions]
    assert len(acted) == 1 and results[acted[0]] == ["start"]
    leader, follower = (a, b) if acted == ["a"] else (b, a)

    # the follower keeps standing by while the leader renews
    for _ in range(5):
        clock.advance(2)
        assert follower.tick() == []
        leader.tick()
    # the leader dies: after the lease expires the follower takes over and acts
    clock.advance(61)
    assert [d.action for d in follower.tick()] == ["advance"]
    assert leader.tick() == []  # the old leader comes back: it no longer acts
    clock.advance(61)
    assert [d.action for d in follower.tick()] == ["promote"]
    assert any_registry.aliases("churn")["production"] == 4
    actions = [e["action"] for e in Rollouts(any_registry).history("churn")]
    assert actions == ["create", "start", "advance", "promote"]  # nothing applied twice
    other.store.dispose()
    any_registry.store.dispose()


def test_lease_renewal_and_release(registry: Registry, clock: ManualClock) -> None:
    store = Rollouts(registry, clock=clock).store
    assert store.acquire_lease("x", "a", clock.now(), 10)
    assert not store.acquire_lease("x", "b", clock.now(), 10)
    assert store.acquire_lease("x", "a", clock.now() + 5, 10)  # renewal
    assert not store.acquire_lease("x", "b", clock.now() + 12, 10)  # renewed until +15
    assert store.acquire_lease("x", "b", clock.now() + 16, 10)  # expired: takeover
    store.release_lease("x", "b")
    assert store.acquire_lease("x", "a", clock.now() + 16, 10)
