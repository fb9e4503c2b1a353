"""Per-process tallies that add up: latency histograms, recorders, judging cadence."""

from __future__ import annotations

import json

import numpy as np

from mloop._clock import ManualClock
from mloop.rollout import CanaryPolicy, MemoryTraffic, ShadowPolicy, TrafficRecorder
from mloop.rollout._controller import judge_every
from mloop.rollout._histogram import BUCKETS, bucket_of, decode, encode, percentile
from mloop.rollout._traffic import Tally


def _histogram(latencies: np.ndarray) -> list[int]:
    h = [0] * BUCKETS
    for ms in latencies:
        h[bucket_of(float(ms))] += 1
    return h


def test_buckets_grow_with_latency_and_cover_everything() -> None:
    assert bucket_of(0.0) == bucket_of(-1.0) == bucket_of(float("nan")) == 0
    assert bucket_of(1e12) == BUCKETS - 1
    values = [0.06, 0.5, 1.0, 2.0, 10.0, 100.0, 1000.0, 60_000.0]
    buckets = [bucket_of(v) for v in values]
    assert buckets == sorted(buckets) and len(set(buckets)) == len(buckets)


def test_quantiles_of_merged_histograms_match_the_pooled_data() -> None:
    rng = np.random.default_rng(7)
    fast = rng.lognormal(mean=0.0, sigma=0.4, size=3000)  # one process: ~1 ms
    slow = rng.lognormal(mean=3.0, sigma=0.3, size=300)  # another: ~20 ms
    merged = Tally(histogram=_histogram(fast))
    merged.add(Tally(histogram=_histogram(slow)))
    pooled = np.concatenate([fast, slow])
    for q in (0.5, 0.9, 0.99):
        got = percentile(merged.histogram, q)
        exact = float(np.quantile(pooled, q))
        assert got is not None and abs(got / exact - 1) < 0.13, (q, got, exact)
    assert percentile([0] * BUCKETS, 0.5) is None


def test_histograms_are_stored_sparse_and_old_dense_rows_still_read() -> None:
    h = _histogram(np.array([1.0, 1.0, 30.0]))
    text = encode(h)
    assert len(json.loads(text)) == 2
    assert decode(text) == h
    assert decode(json.dumps(h)) == h


def test_a_recorder_keys_by_second_and_keeps_errors_out_of_latency() -> None:
    clock = ManualClock(100.2)
    recorder = TrafficRecorder(clock)
    recorder.record("churn", 2, 3.0, ok=True)
    recorder.record("churn", 2, 900.0, ok=False)
    clock.advance(1.0)
    recorder.record("churn", 2, 3.0, ok=True)
    recorder.record_shadow("churn", 3, agreed=4, compared=5)
    tallies = recorder.drain()
    assert set(tallies) == {("churn", 2, 100), ("churn", 2, 101), ("churn", 3, 101)}
    first = tallies["churn", 2, 100]
    assert (first.requests, first.errors, sum(first.histogram)) == (2, 1, 1)
    assert (tallies["churn", 3, 101].shadow_pairs, tallies["churn", 3, 101].shadow_agree) == (5, 4)
    assert recorder.drain() == {}


def test_put_back_merges_with_what_arrived_meanwhile() -> None:
    clock = ManualClock(50.0)
    recorder = TrafficRecorder(clock)
    recorder.record("churn", 1, 1.0, ok=False)
    taken = recorder.drain()
    recorder.record("churn", 1, 1.0, ok=True)
    recorder.put_back(taken)
    counts = MemoryTraffic()
    recorder.flush_to(counts, now=clock.now())
    totals = counts.observe("churn", [1], since=50.0)[1]
    assert (totals.requests, totals.errors) == (2, 1)


def test_a_step_is_judged_at_least_four_times() -> None:
    assert judge_every(CanaryPolicy(steps=(50, 100), step_duration_s=20, interval_s=30)) == 5
    assert judge_every(CanaryPolicy(steps=(50, 100), step_duration_s=3, interval_s=30)) == 1
    assert judge_every(CanaryPolicy(steps=(50, 100), step_duration_s=3600, interval_s=30)) == 30
    assert judge_every(ShadowPolicy(duration_s=8, interval_s=30)) == 2
