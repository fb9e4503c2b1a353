"""Requests, errors, latency and shadow agreement per version, from every process.

A rollout's guards must see what every user saw, not what the process holding the
controller lease served. Each serving process tallies its requests in memory
(``TrafficRecorder.record``: a dict update under a lock; nothing on the request path
touches the database) and about once a second moves its tallies into shared
``TrafficCounts`` (``TrafficRecorder.flush_to``). The controller reads the sums since
a step started (``TrafficCounts.observe``). ``TrafficLedger`` (``_ledger.py``) keeps
them in the metadata store (SQLite or PostgreSQL); ``MemoryTraffic`` in this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mloop._clock import Clock, SystemClock
from mloop.rollout._histogram import BUCKETS, bucket_of, percentile

__all__ = [
    "KEEP_S",
    "Key",
    "MemoryTraffic",
    "Tally",
    "Totals",
    "TrafficCounts",
    "TrafficRecorder",
    "totals_per_interval",
]

Key = tuple[str, int, int]  # (model, version, second)

# An A/B test runs at most 14 days by default and its stable baseline starts an hour
# before it; no guard reads anything older.
KEEP_S = 15 * 86400.0


@dataclass
class Tally:
    """One version's counts over a span of time (one second, as recorded)."""

    requests: int = 0
    errors: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)  # answered requests
    shadow_pairs: int = 0
    shadow_agree: int = 0

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these."""
        self.requests += other.requests
        self.errors += other.errors
        for i, count in enumerate(other.histogram):
            self.histogram[i] += count
        self.shadow_pairs += other.shadow_pairs
        self.shadow_agree += other.shadow_agree


@dataclass(frozen=True)
class Totals:
    """One version's sums since a point in time, as the guards read them."""

    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None  # of answered requests, as the in-process events count it
    p99_ms: float | None = None
    shadow_pairs: int = 0
    agreement: float | None = None

    @classmethod
    def of(cls, tally: Tally) -> Totals:
        """The guard numbers of a summed tally."""
        return cls(
            requests=tally.requests,
            errors=tally.errors,
            p50_ms=percentile(tally.histogram, 0.5),
            p99_ms=percentile(tally.histogram, 0.99),
            shadow_pairs=tally.shadow_pairs,
            agreement=tally.shadow_agree / tally.shadow_pairs if tally.shadow_pairs else None,
        )


def totals_per_interval(
    rows: Iterable[tuple[int, int, Tally]], since: float, step_s: int
) -> dict[int, dict[int, Totals]]:
    """``version -> {interval start: Totals}`` of ``(version, second, tally)`` rows.

    Intervals lie on a grid of ``step_s`` seconds (so the ledger's minute and hour rows
    each fall in one); rows before ``since``'s second are left out, empty intervals absent.
    """
    first = int(since)
    sums: dict[int, dict[int, Tally]] = {}
    for version, second, tally in rows:
        if second < first:
            continue
        start = second - second % step_s
        sums.setdefault(version, {}).setdefault(start, Tally()).add(tally)
    return {v: {start: Totals.of(t) for start, t in sorted(per.items())} for v, per in sums.items()}


class TrafficCounts(Protocol):
    """Where every process adds its tallies and the controller reads their sums."""

    def add(self, tallies: Mapping[Key, Tally], *, now: float) -> None:
        """Add ``tallies`` (``now`` lets the store drop or coarsen what is old)."""
        ...

    def observe(self, model: str, versions: Sequence[int], since: float) -> dict[int, Totals]:
        """Sums per version over the seconds from ``since``'s on, of every writer."""
        ...

    def per_interval(
        self, model: str, versions: Sequence[int], since: float, step_s: int
    ) -> dict[int, dict[int, Totals]]:
        """Sums per version and ``step_s`` interval from ``since`` on (``totals_per_interval``)."""
        ...


class TrafficRecorder:
    """This process's tallies since the last flush; thread-safe and cheap to record into."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._tallies: dict[Key, Tally] = {}

    def _tally(self, model: str, version: int) -> Tally:
        key = (model, version, int(self.clock.now()))
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = Tally()
        return tally

    def record(self, model: str, version: int, latency_ms: float, ok: bool) -> None:
        """Count one request that reached ``version`` (``ok=False``: it failed)."""
        bucket = bucket_of(latency_ms)
        with self._lock:
            tally = self._tally(model, version)
            tally.requests += 1
            if ok:
                tally.histogram[bucket] += 1
            else:
                tally.errors += 1

    def record_shadow(self, model: str, version: int, agreed: int, compared: int) -> None:
        """Count ``compared`` shadow rows of ``version``, ``agreed`` of them matching."""
        with self._lock:
            tally = self._tally(model, version)
            tally.shadow_pairs += compared
            tally.shadow_agree += agreed

    def drain(self) -> dict[Key, Tally]:
        """Everything recorded since the last drain (the recorder starts empty again)."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        return tallies

    def put_back(self, tallies: Mapping[Key, Tally]) -> None:
        """Return tallies a failed write could not store, so the next write carries them."""
        with self._lock:
            for key, tally in tallies.items():
                mine = self._tallies.get(key)
                if mine is None:
                    self._tallies[key] = tally
                else:
                    mine.add(tally)

    def flush_to(self, counts: TrafficCounts, *, now: float) -> None:
        """Move the tallies into ``counts``; on failure they wait for the next flush."""
        tallies = self.drain()
        try:
            counts.add(tallies, now=now)
        except Exception:
            self.put_back(tallies)
            raise


class MemoryTraffic:
    """``TrafficCounts`` within one process (tests, and servers without a shared store)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[Key, Tally] = {}

    def add(self, tallies: Mapping[Key, Tally], *, now: float) -> None:
        """Add ``tallies``; drop what no guard reads any more."""
        with self._lock:
            for key, tally in tallies.items():
                self._tallies.setdefault(key, Tally()).add(tally)
            old = [k for k in self._tallies if k[2] < now - KEEP_S]
            for key in old:
                del self._tallies[key]

    def observe(self, model: str, versions: Sequence[int], since: float) -> dict[int, Totals]:
        """Sums per version over the seconds from ``since`` on."""
        sums: dict[int, Tally] = {}
        first = int(since)
        with self._lock:
            for (m, v, second), tally in self._tallies.items():
                if m == model and v in versions and second >= first:
                    sums.setdefault(v, Tally()).add(tally)
        return {v: Totals.of(s) for v, s in sums.items()}

    def per_interval(
        self, model: str, versions: Sequence[int], since: float, step_s: int
    ) -> dict[int, dict[int, Totals]]:
        """Sums per version and ``step_s`` interval from ``since`` on."""
        with self._lock:
            rows = [
                (v, second, tally)
                for (m, v, second), tally in self._tallies.items()
                if m == model and v in versions
            ]
        return totals_per_interval(rows, since, step_s)
