"""Load during canary steps and a blue-green switch: no failed request, only allowed versions.

Worker threads play serving: route each request, answer from a warm pool that
holds only the versions the router lists in ``versions_in_use`` (warmed before
they may answer), and tag the response with its version. The main thread plays
the controller replica, moving time and refreshing the router.
"""

from __future__ import annotations

import threading
from collections import Counter

from mloop._clock import ManualClock
from mloop.registry import Registry
from mloop.rollout import (
    BlueGreenPolicy,
    CanaryPolicy,
    Controller,
    DbRouter,
    InMemoryObservations,
    Rollouts,
)


class Pool:
    """Warm models by version; evicts a version only after two refreshes without it."""

    def __init__(self, source: InMemoryObservations) -> None:
        self.loaded: set[int] = set()
        self._previous: set[int] = set()
        self._source = source

    def sync(self, in_use: set[int]) -> None:
        for v in in_use - self.loaded:
            self.loaded.add(v)
            self._source.mark_ready("churn", v)
        for v in self.loaded - in_use - self._previous:
            self.loaded.discard(v)
            self._source.mark_ready("churn", v, ready=False)
        self._previous = set(in_use)

    def predict(self, version: int) -> int:
        if version not in self.loaded:
            raise RuntimeError(f"version {version} is not loaded")
        return version


class Load:
    """Worker threads sending requests until stopped."""

    def __init__(self, router: DbRouter, pool: Pool, workers: int = 4) -> None:
        self.router, self.pool = router, pool
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.versions: Counter[int] = Counter()
        # bumped after each router refresh; a response tagged with the current epoch
        # was routed by the current table (the epoch is read before routing)
        self.epoch = 0
        self.by_epoch: Counter[tuple[int, int]] = Counter()
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(w,)) for w in range(workers)]

    def _run(self, worker: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            epoch = self.epoch
            try:
                decision = self.router.route("churn", f"w{worker}-u{i}")
                answered = self.pool.predict(decision.version)
                assert answered == decision.version
            except Exception as exc:  # counted, not raised: the test asserts zero
                with self.lock:
                    self.failures.append(repr(exc))
                continue
            with self.lock:
                self.versions[answered] += 1
                self.by_epoch[epoch, answered] += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def burst(self) -> Counter[int]:
        """Versions answered by requests routed since the last refresh."""
        threading.Event().wait(0.05)
        with self.lock:
            return Counter({v: n for (e, v), n in self.by_epoch.items() if e == self.epoch})


def _setup(registry: Registry, clock: ManualClock) -> tuple[DbRouter, Pool, Controller]:
    source = InMemoryObservations(clock)
    pool = Pool(source)
    router = DbRouter(registry.store, clock=clock, auto_refresh=False, is_ready=source.is_ready)
    pool.sync(router.refresh().versions_in_use()["churn"])
    return router, pool, Controller(registry, source, clock=clock)


def _step(
    load: Load, router: DbRouter, pool: Pool, controller: Controller, clock: ManualClock, s: float
) -> None:
    clock.advance(s)
    controller.tick()
    pool.sync(router.refresh().versions_in_use().get("churn", set()))
    load.epoch += 1


def test_canary_under_load(registry: Registry, clock: ManualClock) -> None:
    router, pool, controller = _setup(registry, clock)
    policy = CanaryPolicy(steps=(5, 25, 50, 100), step_duration_s=60, min_requests=0, interval_s=1)
    with Load(router, pool) as load:
        assert set(load.burst()) == {3}
        Rollouts(registry, clock=clock).deploy("churn:4", policy)
        _step(load, router, pool, controller, clock, 0)  # router lists v4: the pool warms it
        _step(load, router, pool, controller, clock, 1)  # warm: the canary starts at 5 %
        shares = []
        for _ in range(4):
            counts = load.burst()
            shares.append(counts[4] / max(1, sum(counts.values())))
            _step(load, router, pool, controller, clock, 61)
        _step(load, router, pool, controller, clock, 1)
        assert set(load.burst()) == {4}
    assert load.failures == []
    assert set(load.versions) == {3, 4}
    assert shares[0] < 0.15 and 0.15 < shares[1] < 0.4 and 0.35 < shares[2] < 0.65
    assert shares[3] == 1.0
    assert registry.aliases("churn")["production"] == 4


def test_blue_green_switch_under_load(registry: Registry, clock: ManualClock) -> None:
    router, pool, controller = _setup(registry, clock)
    policy = BlueGreenPolicy(hold_s=60, min_requests=0, interval_s=1)
    with Load(router, pool) as load:
        Rollouts(registry, clock=clock).deploy("churn:4", policy)
        _step(load, router, pool, controller, clock, 0)  # warming: v4 loads, v3 still answers
        assert set(load.burst()) == {3}
        _step(load, router, pool, controller, clock, 1)  # switch: all at once
        assert set(load.burst()) == {4}
        assert pool.loaded == {3, 4}  # the old version stays warm for instant rollback
        Rollouts(registry, clock=clock).command("churn", "rollback")
        _step(load, router, pool, controller, clock, 1)
        assert set(load.burst()) == {3}
    assert load.failures == []
    assert set(load.versions) == {3, 4}
