"""The controller sees every worker's requests and shadow pairs, not only its own."""

from __future__ import annotations

from mloop._clock import ManualClock
from mloop.rollout import InMemoryObservations, MemoryTraffic, TrafficRecorder
from mloop.serving._guards import GuardStats, LiveObservations


def test_the_lease_holder_sees_failures_another_worker_served() -> None:
    clock = ManualClock(10_000.0)
    shared = MemoryTraffic()
    # This worker holds the controller lease and served only successes.
    events = InMemoryObservations(clock)
    mine = TrafficRecorder(clock)
    stats = GuardStats(events, clock=clock, recorder=mine)
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

    source = LiveObservations(events, is_ready=lambda _m, _v: True, clock=clock, traffic=shared)
    seen = source.observe("churn", [2, 3, 4], since=clock.now())
    assert (seen[2].requests, seen[2].errors, seen[2].error_rate) == (40, 10, 0.25)
    assert seen[2].p50_ms is not None
    assert (seen[3].shadow_pairs, seen[3].agreement) == (20, 0.5)
    assert (seen[4].requests, seen[4].error_rate) == (0, None)  # nothing served anywhere
    source.close()


def test_without_shared_counts_this_process_events_are_used() -> None:
    clock = ManualClock(10_000.0)
    events = InMemoryObservations(clock)
    stats = GuardStats(events, clock=clock)
    stats.observe("churn", 2, 1.0, ok=False)
    source = LiveObservations(events, is_ready=lambda _m, _v: True, clock=clock)
    seen = source.observe("churn", [2], since=clock.now())
    assert (seen[2].requests, seen[2].errors) == (1, 1)
    source.close()
