"""The shared traffic ledger: every process adds its tallies, the controller reads the sums.

The same behaviour is required of the embedded store (SQLite) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop._clock import ManualClock
from mloop.rollout import TrafficLedger, TrafficRecorder
from mloop.store import MetadataStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'mloop.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = MetadataStore(url)
    try:
        yield s
    finally:
        s.dispose()


def _traffic(
    clock: ManualClock, recorder: TrafficRecorder, version: int, ok: int, bad: int
) -> None:
    for _ in range(ok):
        recorder.record("churn", version, 2.0, ok=True)
    for _ in range(bad):
        recorder.record("churn", version, 40.0, ok=False)


def test_two_writers_add_up_and_the_reader_sees_both(store: MetadataStore) -> None:
    clock = ManualClock(1_000_000.0)
    one, two = TrafficRecorder(clock), TrafficRecorder(clock)
    _traffic(clock, one, 2, ok=60, bad=0)
    _traffic(clock, two, 2, ok=20, bad=20)  # the other worker saw every failure
    _traffic(clock, two, 1, ok=10, bad=0)
    TrafficLedger(store, writer="host:1").flush(one, now=clock.now())
    TrafficLedger(store, writer="host:2").flush(two, now=clock.now())
    totals = TrafficLedger(store, writer="controller").observe("churn", [1, 2], clock.now() - 5)
    assert (totals[2].requests, totals[2].errors) == (100, 20)
    assert (totals[1].requests, totals[1].errors) == (10, 0)
    assert totals[2].p50_ms is not None and 1.6 <= totals[2].p50_ms <= 2.5
    assert totals[2].p99_ms is not None and 32 <= totals[2].p99_ms <= 50


def test_flushes_of_one_writer_in_the_same_second_accumulate(store: MetadataStore) -> None:
    clock = ManualClock(2_000_000.0)
    recorder = TrafficRecorder(clock)
    ledger = TrafficLedger(store, writer="w")
    for _ in range(3):
        _traffic(clock, recorder, 3, ok=5, bad=1)
        ledger.flush(recorder, now=clock.now())
    totals = ledger.observe("churn", [3], clock.now())
    assert (totals[3].requests, totals[3].errors) == (18, 3)


def test_only_seconds_since_the_step_started_count(store: MetadataStore) -> None:
    clock = ManualClock(3_000_000.0)
    recorder = TrafficRecorder(clock)
    ledger = TrafficLedger(store, writer="w")
    _traffic(clock, recorder, 2, ok=0, bad=50)  # before the step
    clock.advance(10)
    _traffic(clock, recorder, 2, ok=30, bad=0)
    ledger.flush(recorder, now=clock.now())
    totals = ledger.observe("churn", [2], since=clock.now())
    assert (totals[2].requests, totals[2].errors) == (30, 0)
    assert ledger.observe("churn", [7], since=0) == {}


def test_a_failed_write_keeps_the_tallies_for_the_next(store: MetadataStore) -> None:
    clock = ManualClock(4_000_000.0)
    recorder = TrafficRecorder(clock)
    _traffic(clock, recorder, 2, ok=4, bad=1)

    class Broken:
        def write(self) -> None:
            raise OSError("database unreachable")

    with pytest.raises(OSError):
        TrafficLedger(Broken(), writer="w").flush(recorder)  # type: ignore[arg-type]
    ledger = TrafficLedger(store, writer="w")
    ledger.flush(recorder, now=clock.now())
    assert ledger.observe("churn", [2], 0)[2].requests == 5


def test_tallies_older_than_a_day_are_dropped(store: MetadataStore) -> None:
    clock = ManualClock(5_000_000.0)
    recorder = TrafficRecorder(clock)
    ledger = TrafficLedger(store, writer="w")
    _traffic(clock, recorder, 2, ok=3, bad=0)
    ledger.flush(recorder, now=clock.now())
    clock.advance(2 * 86400)
    _traffic(clock, recorder, 2, ok=1, bad=0)
    ledger.flush(recorder, now=clock.now())
    assert ledger.observe("churn", [2], since=0)[2].requests == 1
