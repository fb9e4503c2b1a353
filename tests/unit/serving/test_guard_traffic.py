"""The controller sees every worker's requests and shadow pairs, not only its own."""

from __future__ import annotations

from mloop._clock import ManualClock
from mloop.rollout import MemoryTraffic, TrafficRecorder
from mloop.server._guards import GuardStats, LiveObservations


def test_the_lease_holder_sees_failures_another_worker_served() -> None:
    clock = ManualClock(10_000.0)
    shared = MemoryTraffic()
    # This worker holds the controller lease and served only successes.
    mine = TrafficRecorder(clock)
    stats = GuardStats(mine, clock=clock)
    for _ in range(20):
        stats.observe("churn", 2, 1.0)
    stats.observe_shadow("churn", 3, agreed=10, compared=10)
    # The other worker saw the candidate fail and its shadow disagree.
    other = TrafficRecorder(clock)
    for i in range(20):
        other.record("churn", 2, 1.0, ok=i % 2 == 0)
    other.record_shadow("churn", 3, agreed=0, compared=10)
    mine.flush_to(shared, now=clock.now())
    other.flush_to(shared, now=clock.now())

    source = LiveObservations(shared, is_ready=lambda _m, _v: True, clock=clock)
    seen = source.observe("churn", [2, 3, 4], since=clock.now())
    assert (seen[2].requests, seen[2].errors, seen[2].error_rate) == (40, 10, 0.25)
    assert seen[2].p50_ms is not None
    assert (seen[3].shadow_pairs, seen[3].agreement) == (20, 0.5)
    assert (seen[4].requests, seen[4].error_rate) == (0, None)  # nothing served anywhere
    source.close()


def test_one_process_counts_its_own_traffic_once_flushed() -> None:
    clock = ManualClock(10_000.0)
    counts = MemoryTraffic()
    recorder = TrafficRecorder(clock)
    stats = GuardStats(recorder, clock=clock)
    stats.observe("churn", 2, 1.0, ok=False)
    source = LiveObservations(counts, is_ready=lambda _m, _v: True, clock=clock)
    assert source.observe("churn", [2], since=clock.now())[2].requests == 0
    recorder.flush_to(counts, now=clock.now())
    seen = source.observe("churn", [2], since=clock.now())
    assert (seen[2].requests, seen[2].errors) == (1, 1)
    assert stats.snapshot("churn")[2]["requests"] == 1  # and serving's own window too
    source.close()
