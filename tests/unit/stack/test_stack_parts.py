"""The full server's parts without a server: rollout router, guard observations, leased loops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, cast

import pytest

from mloop._clock import ManualClock
from mloop.errors import NotFound
from mloop.rollout import MemoryTraffic, RolloutState, TrafficRecorder
from mloop.server._guards import GuardStats, LiveObservations
from mloop.server._loops import LoopRunner, alert_tick_s
from mloop.server._routing import RolloutRouter, rollout_refs
from mloop.store import MetadataStore


class FakeRollouts:
    """What the router reads: production aliases and active rollouts."""

    def __init__(self) -> None:
        self.production: dict[str, int] = {}
        self.states: list[RolloutState] = []

    def routing_snapshot(self) -> tuple[dict[str, int], list[RolloutState]]:
        return dict(self.production), list(self.states)


def _router(ready: set[tuple[str, int]] | None = None, models: Sequence[str] = ()) -> Any:
    router = RolloutRouter(cast(MetadataStore, None), models=models)
    fake = FakeRollouts()
    router._rollouts = fake  # type: ignore[assignment]
    if ready is not None:
        router.is_ready = lambda m, v: (m, v) in ready
    return router, fake


def _canary(weight: float) -> RolloutState:
    return RolloutState(
        id="r1",
        model="churn",
        stable=1,
        candidate=2,
        strategy="canary",
        started_at=0.0,
        step_started_at=0.0,
        updated_at=0.0,
        phase="running",
        step=0,
        weight=weight,
    )


def test_rollout_refs_apply_only_to_production_refs() -> None:
    assert rollout_refs([]) == ()
    assert rollout_refs(["churn", "fraud@production"]) == ("churn", "fraud")
    assert rollout_refs(["churn:3"]) is None
    assert rollout_refs(["churn@staging"]) is None


def test_a_new_version_is_warmed_before_any_request_reaches_it() -> None:
    router, fake = _router()
    fake.production = {"churn": 1}
    asyncio.run(router.refresh())
    assert router.route("churn", None).version == 1
    seen_while_warming: list[int] = []

    async def warm(model: str, version: int) -> None:
        seen_while_warming.append(router.route(model, None).version)

    fake.production = {"churn": 2}
    changed = asyncio.run(router.refresh(warm))
    assert seen_while_warming == [1]  # still the old version while 2 warms
    assert changed == {"churn": 2}
    assert router.route("churn", None).version == 2


def test_the_candidate_answers_only_once_it_is_ready() -> None:
    ready = {("churn", 1)}
    router, fake = _router(ready)
    fake.production = {"churn": 1}
    fake.states = [_canary(100.0)]
    asyncio.run(router.refresh())
    assert router.versions_in_use() == {"churn": {1, 2}}
    assert {router.route("churn", str(k)).version for k in range(50)} == {1}
    ready.add(("churn", 2))
    decision = router.route("churn", "k")
    assert (decision.version, decision.arm) == (2, "candidate")


def test_refs_limit_the_models_served() -> None:
    router, fake = _router(models=["churn"])
    fake.production = {"churn": 1, "fraud": 4}
    asyncio.run(router.refresh())
    assert router.versions_in_use() == {"churn": {1}}
    with pytest.raises(NotFound, match="Served models: churn"):
        router.route("fraud", None)


class FakeWindow:
    def __init__(self, metrics: dict[str, Any]) -> None:
        self.metrics = metrics

    def guard_metrics(self) -> dict[str, Any]:
        return self.metrics


class FakeMonitor:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...], float]] = []

    def observe_versions(self, model: str, versions: Sequence[int], *, since: float) -> Any:
        self.calls.append((model, tuple(versions), since))
        return {
            v: FakeWindow(
                {
                    "prediction_drift": 0.01 * v,
                    "labels": 60,
                    "accuracy": 0.9,
                    "estimated_accuracy": 0.8,
                }
            )
            for v in versions
        }


def test_guard_observations_combine_live_stats_readiness_and_monitoring() -> None:
    clock = ManualClock()
    counts = MemoryTraffic()
    recorder = TrafficRecorder(clock)
    stats = GuardStats(recorder, clock=clock)
    for i in range(10):
        stats.observe("churn", 2, latency_ms=float(i), ok=i != 0)
    stats.observe_shadow("churn", 3, agreed=3, compared=4)
    recorder.flush_to(counts, now=clock.now())
    monitor = FakeMonitor()
    source = LiveObservations(
        counts, is_ready=lambda _m, v: v == 2, monitor=cast(Any, monitor), clock=clock
    )
    since = clock.now() - 1
    first = source.observe("churn", [2, 3], since)
    assert first[2].requests == 10 and first[2].errors == 1 and first[2].ready
    assert first[3].agreement == 0.75 and not first[3].ready
    deadline = time.monotonic() + 5
    while not monitor.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    while time.monotonic() < deadline:
        later = source.observe("churn", [2, 3], since)
        if later[2].accuracy is not None:
            break
        time.sleep(0.01)
    assert later[2].accuracy == 0.9 and later[2].labels == 60
    assert later[3].prediction_drift == pytest.approx(0.03)
    assert later[2].requests == 10  # live numbers stay serving's
    assert len(monitor.calls) == 1  # cached: the log is not re-read every tick
    source.close()


class FakeLease:
    def __init__(self, held: bool) -> None:
        self._held = held
        self.released = False

    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        self.released = True


@pytest.mark.parametrize("held", [True, False])
def test_a_loop_acts_only_while_it_holds_its_lease(held: bool) -> None:
    steps: list[int] = []
    lease = FakeLease(held)

    async def main() -> LoopRunner:
        stop = asyncio.Event()
        runner = LoopRunner("t", lambda: steps.append(1), 0.01, cast(Any, lease), ManualClock())
        task = asyncio.create_task(runner.run(stop))
        for _ in range(20):
            await asyncio.sleep(0.005)
        stop.set()
        await task
        return runner

    runner = asyncio.run(main())
    assert (len(steps) > 0) is held and runner.runs == len(steps)
    assert lease.released


def test_alert_windows_are_checked_often_enough_but_not_busily() -> None:
    assert alert_tick_s([3600.0, 60.0]) == 6.0
    assert alert_tick_s([1.0]) == 0.5
    assert alert_tick_s([86400.0]) == 30.0
