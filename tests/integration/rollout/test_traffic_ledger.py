"""Shared traffic counts: every process adds its tallies, the controller reads the sums.

The same behaviour is required of every ``TrafficCounts``: the metadata store's
ledger on SQLite and on PostgreSQL, and the in-process ``MemoryTraffic``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mloop._clock import ManualClock
from mloop.rollout import MemoryTraffic, TrafficCounts, TrafficLedger, TrafficRecorder
from mloop.rollout._tables import rollout_traffic
from mloop.store import MetadataStore

Writer = Callable[[str], TrafficCounts]  # the counts as one writer (process) sees them


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Writer]:
    if request.param == "memory":
        shared = MemoryTraffic()
        yield lambda _name: shared
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'mloop.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = MetadataStore(url)
    try:
        yield lambda name: TrafficLedger(store, writer=name)
    finally:
        store.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    s = MetadataStore(f"sqlite:///{tmp_path / 'mloop.db'}")
    try:
        yield s
    finally:
        s.dispose()


def _traffic(recorder: TrafficRecorder, version: int, ok: int, bad: int) -> None:
    for _ in range(ok):
        recorder.record("churn", version, 2.0, ok=True)
    for _ in range(bad):
        recorder.record("churn", version, 40.0, ok=False)


def test_two_writers_add_up_and_the_reader_sees_both(writer: Writer) -> None:
    clock = ManualClock(1_000_000.0)
    one, two = TrafficRecorder(clock), TrafficRecorder(clock)
    _traffic(one, 2, ok=60, bad=0)
    _traffic(two, 2, ok=20, bad=20)  # the other worker saw every failure
    _traffic(two, 1, ok=10, bad=0)
    for _ in range(10):
        two.record("churn", 2, 30.0, ok=True)
    one.flush_to(writer("host:1"), now=clock.now())
    two.flush_to(writer("host:2"), now=clock.now())
    totals = writer("controller").observe("churn", [1, 2], clock.now() - 5)
    assert (totals[2].requests, totals[2].errors) == (110, 20)
    assert (totals[1].requests, totals[1].errors) == (10, 0)
    # Latency is of answered requests (as the in-process events count it): 80 at 2 ms,
    # 10 at 30 ms; the failures' 40 ms do not count.
    assert totals[2].p50_ms is not None and 1.6 <= totals[2].p50_ms <= 2.5
    assert totals[2].p99_ms is not None and 24 <= totals[2].p99_ms <= 37


def test_shadow_pairs_of_every_writer_add_up(writer: Writer) -> None:
    clock = ManualClock(1_500_000.0)
    one, two = TrafficRecorder(clock), TrafficRecorder(clock)
    one.record_shadow("churn", 3, agreed=9, compared=10)
    two.record_shadow("churn", 3, agreed=1, compared=10)
    one.flush_to(writer("a"), now=clock.now())
    two.flush_to(writer("b"), now=clock.now())
    totals = writer("controller").observe("churn", [3], clock.now())[3]
    assert (totals.shadow_pairs, totals.agreement) == (20, 0.5)


def test_flushes_of_one_writer_in_the_same_second_accumulate(writer: Writer) -> None:
    clock = ManualClock(2_000_000.0)
    recorder = TrafficRecorder(clock)
    counts = writer("w")
    for _ in range(3):
        _traffic(recorder, 3, ok=5, bad=1)
        recorder.flush_to(counts, now=clock.now())
    totals = counts.observe("churn", [3], clock.now())
    assert (totals[3].requests, totals[3].errors) == (18, 3)


def test_only_seconds_since_the_step_started_count(writer: Writer) -> None:
    clock = ManualClock(3_000_000.0)
    recorder = TrafficRecorder(clock)
    counts = writer("w")
    _traffic(recorder, 2, ok=0, bad=50)  # before the step
    clock.advance(10)
    _traffic(recorder, 2, ok=30, bad=0)
    recorder.flush_to(counts, now=clock.now())
    totals = counts.observe("churn", [2], since=clock.now())
    assert (totals[2].requests, totals[2].errors) == (30, 0)
    assert counts.observe("churn", [7], since=0) == {}
    assert counts.observe("other", [2], since=0) == {}


def test_intervals_split_the_sums_and_read_the_same_percentiles(writer: Writer) -> None:
    clock = ManualClock(3_600_000.0)  # on the minute grid
    one, two = TrafficRecorder(clock), TrafficRecorder(clock)
    _traffic(one, 1, ok=10, bad=0)  # 2 ms, in the first minute
    _traffic(two, 2, ok=5, bad=5)
    clock.advance(30)
    for _ in range(10):
        two.record("churn", 2, 30.0, ok=True)  # same minute, other writer
    clock.advance(45)  # the next minute
    for _ in range(4):
        one.record("churn", 1, 100.0, ok=True)
    one.flush_to(writer("a"), now=clock.now())
    two.flush_to(writer("b"), now=clock.now())
    start = 3_600_000
    series = writer("dashboard").per_interval("churn", [1, 2], since=start, step_s=60)
    assert list(series[1]) == [start, start + 60] and list(series[2]) == [start]
    first = series[2][start]
    assert (first.requests, first.errors) == (20, 5)
    # The same numbers the guards read for that span, computed by the same Totals.
    assert first == writer("dashboard").observe("churn", [2], since=start)[2]
    late = series[1][start + 60]
    assert late.requests == 4 and late.p50_ms is not None and 85 <= late.p50_ms <= 120
    assert writer("dashboard").per_interval("churn", [1], since=start + 60, step_s=60) == {
        1: {start + 60: late}
    }


def test_a_failed_write_keeps_the_tallies_for_the_next(writer: Writer) -> None:
    clock = ManualClock(4_000_000.0)
    recorder = TrafficRecorder(clock)
    _traffic(recorder, 2, ok=4, bad=1)

    class Unreachable:
        def add(self, *_args: object, **_kw: object) -> None:
            raise OSError("database unreachable")

    with pytest.raises(OSError):
        recorder.flush_to(Unreachable(), now=clock.now())  # type: ignore[arg-type]
    _traffic(recorder, 2, ok=1, bad=0)  # recorded while the store was away
    counts = writer("w")
    recorder.flush_to(counts, now=clock.now())
    assert counts.observe("churn", [2], 0)[2].requests == 6


def test_sums_survive_coarsening(writer: Writer) -> None:
    """Two days of traffic, one request every 97 s: 1 s rows, then minutes, then hours."""
    clock = ManualClock(6_000_000.0)
    start = clock.now()
    recorder = TrafficRecorder(clock)
    counts = writer("w")
    sent: list[float] = []
    while clock.now() - start < 2 * 86400:
        recorder.record("churn", 2, 2.0, ok=len(sent) % 10 != 0)
        sent.append(clock.now())
        clock.advance(97)
        if len(sent) % 100 == 0:
            recorder.flush_to(counts, now=clock.now())
    recorder.flush_to(counts, now=clock.now())
    totals = counts.observe("churn", [2], since=0)[2]
    assert (totals.requests, totals.errors) == (len(sent), (len(sent) + 9) // 10)
    # Within five minutes seconds are exact.
    since = clock.now() - 290
    recent = counts.observe("churn", [2], since=since)[2]
    assert recent.requests == sum(t >= since for t in sent)


def test_old_rows_of_a_writer_are_one_per_minute_then_one_per_hour(
    store: MetadataStore,
) -> None:
    clock = ManualClock(7_000_000.0 - 7_000_000.0 % 3600)
    recorder = TrafficRecorder(clock)
    ledger = TrafficLedger(store, writer="w")
    for i in range(2 * 86400 // 97):
        recorder.record("churn", 2, 2.0, ok=True)
        clock.advance(97)
        if i % 100 == 0:
            recorder.flush_to(ledger, now=clock.now())
    recorder.flush_to(ledger, now=clock.now())
    with store.read() as conn:
        seconds = conn.execute(sa.select(rollout_traffic.c.second)).scalars().all()
    now = int(clock.now())
    older = [s for s in seconds if s < now - 86400]
    middle = [s for s in seconds if now - 86400 <= s < now - 300]
    assert older and all(s % 3600 == 0 for s in older)
    assert middle and all(s % 60 == 0 for s in middle)
    assert len(older) <= 25


def test_rows_older_than_any_rollout_needs_are_dropped(writer: Writer) -> None:
    clock = ManualClock(5_000_000.0)
    recorder = TrafficRecorder(clock)
    counts = writer("w")
    _traffic(recorder, 2, ok=3, bad=0)
    recorder.flush_to(counts, now=clock.now())
    clock.advance(16 * 86400)
    _traffic(recorder, 2, ok=1, bad=0)
    recorder.flush_to(counts, now=clock.now())
    assert counts.observe("churn", [2], since=0)[2].requests == 1
