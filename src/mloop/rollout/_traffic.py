"""Requests, errors and latency per version, summed over every worker and replica.

A rollout's guards must see what every user saw, not what the process holding the
controller lease served. Each serving process tallies its requests in memory
(``TrafficRecorder.record``: a dict update under a lock, nothing on the request
path touches the database) and writes the tallies of finished and current seconds
to the shared metadata store about once a second (``TrafficLedger.add``, one
upsert-and-add per model, version, writer and second). The controller reads the sums
since a step started (``TrafficLedger.observe``), on SQLite or PostgreSQL alike.

Latency is kept as counts in fixed log-spaced buckets (each 25% wider than the one
below, from 0.05 ms), so tallies of any processes add up and p50/p99 come out of the
sum within a bucket's width.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mloop._clock import Clock, SystemClock
from mloop.rollout._tables import rollout_traffic

__all__ = ["Tally", "Totals", "TrafficLedger", "TrafficRecorder", "percentile"]

_LOWEST_MS = 0.05
_GROWTH = 1.25
_BUCKETS = 96  # up to ~0.05 * 1.25**95 ms, about 80 minutes
_KEEP_S = 86400.0  # tallies older than a day are dropped (no rollout step lasts longer)


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket of one latency."""
    if not latency_ms > _LOWEST_MS:  # also NaN
        return 0
    return min(_BUCKETS - 1, 1 + int(math.log(latency_ms / _LOWEST_MS, _GROWTH)))


def _upper_ms(bucket: int) -> float:
    return _LOWEST_MS * _GROWTH**bucket


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram: its bucket's geometric middle."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            if i == 0:
                return _LOWEST_MS
            return math.sqrt(_upper_ms(i - 1) * _upper_ms(i))
    return _upper_ms(len(histogram) - 1)


@dataclass
class Tally:
    """Requests, errors and the latency histogram of one version in one second."""

    requests: int = 0
    errors: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * _BUCKETS)

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these."""
        self.requests += other.requests
        self.errors += other.errors
        for i, count in enumerate(other.histogram):
            self.histogram[i] += count


Key = tuple[str, int, int]  # (model, version, second)


class TrafficRecorder:
    """This process's tallies since the last drain; thread-safe and cheap to record into."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._tallies: dict[Key, Tally] = {}

    def record(self, model: str, version: int, latency_ms: float, ok: bool) -> None:
        """Count one answered request (``ok=False``: it failed)."""
        key = (model, version, int(self.clock.now()))
        bucket = bucket_of(latency_ms)
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = Tally()
            tally.requests += 1
            tally.errors += not ok
            tally.histogram[bucket] += 1

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


class _Store(Protocol):
    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...


@dataclass(frozen=True)
class Totals:
    """One version's sums over a span of seconds."""

    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None


class TrafficLedger:
    """The shared table of tallies: every process adds, the controller sums."""

    def __init__(self, store: _Store, *, writer: str | None = None) -> None:
        self.store = store
        self.writer = writer or f"{socket.gethostname()}:{os.getpid()}"

    def add(self, tallies: Mapping[Key, Tally], *, now: float | None = None) -> None:
        """Add ``tallies`` to the table (each writer owns its rows, so no two race on one)."""
        if not tallies:
            return
        t = rollout_traffic
        with self.store.write() as conn:
            for (model, version, second), tally in tallies.items():
                where = sa.and_(
                    t.c.model == model,
                    t.c.version == version,
                    t.c.second == second,
                    t.c.writer == self.writer,
                )
                row = conn.execute(sa.select(t.c.histogram, t.c.requests).where(where)).first()
                if row is None:
                    conn.execute(
                        t.insert().values(
                            model=model,
                            version=version,
                            second=second,
                            writer=self.writer,
                            requests=tally.requests,
                            errors=tally.errors,
                            histogram=json.dumps(tally.histogram),
                        )
                    )
                    continue
                merged = Tally(row.requests, 0, json.loads(row.histogram))
                merged.add(Tally(0, 0, tally.histogram))
                conn.execute(
                    t.update()
                    .where(where)
                    .values(
                        requests=t.c.requests + tally.requests,
                        errors=t.c.errors + tally.errors,
                        histogram=json.dumps(merged.histogram),
                    )
                )
            if now is not None:
                conn.execute(t.delete().where(t.c.second < int(now - _KEEP_S)))

    def observe(self, model: str, versions: Sequence[int], since: float) -> dict[int, Totals]:
        """Sums per version over the seconds from ``since`` on (every writer)."""
        t = rollout_traffic
        sums: dict[int, Tally] = {}
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(t.c.version, t.c.requests, t.c.errors, t.c.histogram).where(
                    t.c.model == model,
                    t.c.version.in_(list(versions)),
                    t.c.second >= int(since),
                )
            )
            for row in rows:
                sums.setdefault(row.version, Tally()).add(
                    Tally(row.requests, row.errors, json.loads(row.histogram))
                )
        return {
            v: Totals(
                s.requests, s.errors, percentile(s.histogram, 0.5), percentile(s.histogram, 0.99)
            )
            for v, s in sums.items()
        }

    def flush(self, recorder: TrafficRecorder, now: float | None = None) -> None:
        """Move ``recorder``'s tallies into the table; on failure they wait for the next flush."""
        tallies = recorder.drain()
        try:
            self.add(tallies, now=now)
        except Exception:
            recorder.put_back(tallies)
            raise
