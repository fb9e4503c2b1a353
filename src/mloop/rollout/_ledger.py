"""The traffic tallies of every serving process, in the metadata store (SQLite or PostgreSQL).

One row per (model, version, second, writer): a writer is one process and owns its
rows, so writers never contend for a row, and an add reads and adds to the writer's
own rows in one transaction. The controller sums the rows of every writer since a step began.

Rows are coarsened as they age so a rollout of days reads thousands of rows, not
millions: each writer folds its own rows older than five minutes into one per
minute, and older than a day into one per hour. A sum "since" a time counts only
rows that start at or after it, so a step that began long ago misses at most its
first minute (or hour). Rows older than any rollout needs are dropped.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mloop.rollout._histogram import decode, encode
from mloop.rollout._tables import rollout_traffic
from mloop.rollout._traffic import KEEP_S, Key, Tally, Totals, totals_per_interval

__all__ = ["TrafficLedger"]

# (age in seconds, width in seconds): rows older than the age become one per width.
_TIERS = ((300, 60), (86400, 3600))
_ROLL_UP_EVERY_S = 60.0


class _Store(Protocol):
    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...


def _tally(row: Any) -> Tally:
    return Tally(
        row.requests, row.errors, decode(row.histogram), row.shadow_pairs, row.shadow_agree
    )


def _columns(tally: Tally) -> dict[str, Any]:
    return {
        "requests": tally.requests,
        "errors": tally.errors,
        "histogram": encode(tally.histogram),
        "shadow_pairs": tally.shadow_pairs,
        "shadow_agree": tally.shadow_agree,
    }


class TrafficLedger:
    """``TrafficCounts`` in the ``rollout_traffic`` table: every process adds, the controller sums."""

    def __init__(self, store: _Store, *, writer: str | None = None) -> None:
        self.store = store
        # The random part: containers sharing a host name may all be pid 1.
        self.writer = writer or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lock = threading.Lock()  # a closing flush may overlap the loop's last one
        self._rolled_up_at = float("-inf")

    def add(self, tallies: Mapping[Key, Tally], *, now: float) -> None:
        """Add ``tallies`` to this writer's rows; about once a minute coarsen and drop old rows."""
        roll_up = now - self._rolled_up_at >= _ROLL_UP_EVERY_S
        if not tallies and not roll_up:
            return
        with self._lock, self.store.write() as conn:
            if tallies:
                self._add_all(conn, tallies)
            if roll_up:
                self._roll_up(conn, now)
        if roll_up:
            self._rolled_up_at = now

    def _add_all(self, conn: Connection, tallies: Mapping[Key, Tally]) -> None:
        """Add to this writer's rows: one read, one insert of the new, an update per old."""
        t = rollout_traffic
        mine = t.c.writer == self.writer
        seconds = sorted({second for _, _, second in tallies})
        existing = {
            (row.model, row.version, row.second): row
            for row in conn.execute(sa.select(t).where(mine, t.c.second.in_(seconds)))
        }
        new = []
        for key, tally in tallies.items():
            model, version, second = key
            row = existing.get(key)
            if row is None:
                new.append(
                    {
                        "model": model,
                        "version": version,
                        "second": second,
                        "writer": self.writer,
                        **_columns(tally),
                    }
                )
                continue
            merged = _tally(row)
            merged.add(tally)
            conn.execute(
                t.update()
                .where(mine, t.c.model == model, t.c.version == version, t.c.second == second)
                .values(**_columns(merged))
            )
        if new:
            conn.execute(t.insert(), new)

    def _roll_up(self, conn: Connection, now: float) -> None:
        t = rollout_traffic
        for age, width in _TIERS:
            old = sa.and_(
                t.c.writer == self.writer,
                t.c.second < int(now - age),
                t.c.second % width != 0,
            )
            folded: dict[Key, Tally] = {}
            for row in conn.execute(sa.select(t).where(old)):
                key = (row.model, row.version, row.second - row.second % width)
                folded.setdefault(key, Tally()).add(_tally(row))
            if not folded:
                continue
            conn.execute(t.delete().where(old))
            self._add_all(conn, folded)
        conn.execute(t.delete().where(t.c.second < int(now - KEEP_S)))

    def observe(self, model: str, versions: Sequence[int], since: float) -> dict[int, Totals]:
        """Sums per version over the rows from ``since``'s second on, of every writer."""
        t = rollout_traffic
        sums: dict[int, Tally] = {}
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(t).where(
                    t.c.model == model,
                    t.c.version.in_(list(versions)),
                    t.c.second >= int(since),
                )
            )
            for row in rows:
                sums.setdefault(row.version, Tally()).add(_tally(row))
        return {v: Totals.of(s) for v, s in sums.items()}

    def per_interval(
        self, model: str, versions: Sequence[int], since: float, step_s: int
    ) -> dict[int, dict[int, Totals]]:
        """Sums per version and ``step_s`` interval from ``since`` on, of every writer."""
        t = rollout_traffic
        with self.store.read() as conn:
            rows = [
                (row.version, row.second, _tally(row))
                for row in conn.execute(
                    sa.select(t).where(
                        t.c.model == model,
                        t.c.version.in_(list(versions)),
                        t.c.second >= int(since),
                    )
                )
            ]
        return totals_per_interval(rows, since, step_s)
