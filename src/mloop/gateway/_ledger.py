"""The spend ledger: reserve all of a request's charges or none, atomically; settle later.

Three backends pass one conformance suite: ``MemoryLedger`` (one process),
``SqlLedger`` (SQLite or PostgreSQL, shared by replicas) and ``RedisLedger``
(``_redis_ledger``). In SQL a reservation is one transaction that locks each row
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers with ``BEGIN
IMMEDIATE``), checks ``spent + reserved + amount <= cap`` and adds the amount, so
concurrent requests on any number of replicas cannot together pass a cap, and a
refusal reports the figures it was decided on. Rows are touched in one sorted order, so
two transactions never wait on each other in a cycle.

Each reservation is recorded as a hold with an expiry; settling deletes the hold and
releases it, and ``sweep`` releases holds whose replica died before settling (a hold
is released exactly once: whoever deletes its record releases it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mloop.gateway._budget import Charge
from mloop.store import MetadataStore

__all__ = [
    "Exceeded",
    "Ledger",
    "LedgerRow",
    "MemoryLedger",
    "SqlLedger",
    "gateway_holds",
    "gateway_spend",
]

gateway_spend = sa.Table(
    "gateway_spend",
    sa.MetaData(),
    sa.Column("subject", sa.String(250), primary_key=True),
    sa.Column("metric", sa.String(16), primary_key=True),
    sa.Column("period", sa.String(8), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("window_end", sa.BigInteger, nullable=False),
    sa.Column("spent", sa.BigInteger, nullable=False),
    sa.Column("reserved", sa.BigInteger, nullable=False),
)

gateway_holds = sa.Table(
    "gateway_holds",
    sa.MetaData(),
    sa.Column("hold_id", sa.String(40), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("charges", sa.JSON, nullable=False),  # [[subject, metric, period, start, amount]]
)

_PRUNE_MINUTE_ROWS_AFTER_S = 3600


@dataclass(frozen=True)
class LedgerRow:
    """One ledger row: what a subject spent (and holds) in one window."""

    subject: str
    metric: str
    period: str
    start: int
    end: int
    spent: int
    reserved: int


class Exceeded(Exception):
    """A reservation failed: ``charge`` does not fit; ``used`` is spent + held on its row."""

    def __init__(self, charge: Charge, used: int) -> None:
        super().__init__(charge.subject)
        self.charge = charge
        self.used = used


class Ledger(Protocol):
    """Where reservations and spend live."""

    async def reserve(self, charges: Sequence[Charge], hold_id: str, expires_at: float) -> None:
        """Hold every charge as hold ``hold_id``, or none and raise ``Exceeded`` for the first
        that does not fit; a hold not settled by ``expires_at`` is released by ``sweep``."""
        ...

    async def settle(
        self, hold_ids: Sequence[str], charges: Sequence[Charge], used: Sequence[int]
    ) -> None:
        """Release the holds still open (each once) and add ``used`` to each charge's row."""
        ...

    async def sweep(self, now: float) -> int:
        """Release holds that expired (their replica died); returns how many."""
        ...

    async def rows(self, period: str | None = None, at: float | None = None) -> list[LedgerRow]:
        """The ledger's rows (of one period, of windows containing ``at``)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def _ordered(charges: Sequence[Charge]) -> list[Charge]:
    return sorted(charges, key=lambda c: c.row)


class MemoryLedger:
    """A ledger in this process only (one replica, tests)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str, int], list[int]] = {}  # [end, spent, reserved]
        self._holds: dict[str, tuple[float, list[Charge]]] = {}
        self._lock = threading.Lock()

    async def reserve(self, charges: Sequence[Charge], hold_id: str, expires_at: float) -> None:
        with self._lock:
            for c in _ordered(charges):
                row = self._rows.get(c.row, [c.end, 0, 0])
                if c.cap is not None and row[1] + row[2] + c.amount > c.cap:
                    raise Exceeded(c, row[1] + row[2])
            for c in charges:
                self._rows.setdefault(c.row, [c.end, 0, 0])[2] += c.amount
            self._holds[hold_id] = (expires_at, list(charges))

    async def settle(
        self, hold_ids: Sequence[str], charges: Sequence[Charge], used: Sequence[int]
    ) -> None:
        with self._lock:
            for hold_id in hold_ids:
                self._release(hold_id)
            for c, amount in zip(charges, used, strict=True):
                self._rows.setdefault(c.row, [c.end, 0, 0])[1] += amount

    async def sweep(self, now: float) -> int:
        with self._lock:
            expired = [h for h, (expires, _) in self._holds.items() if expires < now]
            for hold_id in expired:
                self._release(hold_id)
        return len(expired)

    def _release(self, hold_id: str) -> None:
        _, charges = self._holds.pop(hold_id, (0.0, []))
        for c in charges:
            self._rows[c.row][2] -= c.amount

    async def rows(self, period: str | None = None, at: float | None = None) -> list[LedgerRow]:
        with self._lock:
            items = [LedgerRow(*key, *values) for key, values in self._rows.items()]
        return _filtered(items, period, at)

    async def aclose(self) -> None:
        return None


def _filtered(rows: list[LedgerRow], period: str | None, at: float | None) -> list[LedgerRow]:
    out = [
        r
        for r in rows
        if (period is None or r.period == period) and (at is None or r.start <= at < r.end)
    ]
    return sorted(out, key=lambda r: (r.period, r.start, r.subject, r.metric))


class SqlLedger:
    """The ledger in the metadata database (table ``gateway_spend``)."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self._pruned_at = float("-inf")

    async def reserve(self, charges: Sequence[Charge], hold_id: str, expires_at: float) -> None:
        if charges:
            await asyncio.to_thread(self._reserve, _ordered(charges), hold_id, expires_at)

    async def settle(
        self, hold_ids: Sequence[str], charges: Sequence[Charge], used: Sequence[int]
    ) -> None:
        pairs = sorted(zip(charges, used, strict=True), key=lambda p: p[0].row)
        if pairs or hold_ids:
            await asyncio.to_thread(self._settle, list(hold_ids), pairs)

    async def sweep(self, now: float) -> int:
        return await asyncio.to_thread(self._sweep, now)

    async def rows(self, period: str | None = None, at: float | None = None) -> list[LedgerRow]:
        return await asyncio.to_thread(self._rows, period, at)

    async def aclose(self) -> None:
        return None

    def _insert_missing(self, conn: Connection, charges: Sequence[Charge]) -> None:
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert
        seen = set()
        for c in charges:
            if c.row in seen:
                continue
            seen.add(c.row)
            conn.execute(
                insert(gateway_spend)
                .values(
                    subject=c.subject,
                    metric=c.metric,
                    period=c.period,
                    window_start=c.start,
                    window_end=c.end,
                    spent=0,
                    reserved=0,
                )
                .on_conflict_do_nothing()
            )

    @staticmethod
    def _where(c: Charge) -> Any:
        t = gateway_spend
        return sa.and_(
            t.c.subject == c.subject,
            t.c.metric == c.metric,
            t.c.period == c.period,
            t.c.window_start == c.start,
        )

    def _reserve(self, charges: list[Charge], hold_id: str, expires_at: float) -> None:
        t = gateway_spend
        with self.store.write() as conn:
            self._insert_missing(conn, charges)
            for c in charges:
                # The row lock makes the figure in a refusal the one the decision saw.
                locked = sa.select(t.c.spent, t.c.reserved).where(self._where(c)).with_for_update()
                spent, reserved = conn.execute(locked).one()
                used = int(spent) + int(reserved)
                if c.cap is not None and used + c.amount > c.cap:
                    raise Exceeded(c, used)  # rolls the whole hold back
                conn.execute(
                    t.update().where(self._where(c)).values(reserved=t.c.reserved + c.amount)
                )
            record = [[c.subject, c.metric, c.period, c.start, c.amount] for c in charges]
            conn.execute(
                gateway_holds.insert().values(
                    hold_id=hold_id, expires_at=expires_at, charges=record
                )
            )

    def _release(self, conn: Connection, hold_ids: Sequence[str]) -> None:
        """Release the holds that are still open; a hold deleted here is released once."""
        h, t = gateway_holds, gateway_spend
        releases: dict[tuple[str, str, str, int], int] = {}
        for hold_id in sorted(hold_ids):
            row = conn.execute(
                sa.select(h.c.charges).where(h.c.hold_id == hold_id).with_for_update()
            ).first()
            if row is None:
                continue  # settled already, or released by a sweep
            conn.execute(h.delete().where(h.c.hold_id == hold_id))
            for subject, metric, period, start, amount in row.charges:
                key = (subject, metric, period, int(start))
                releases[key] = releases.get(key, 0) + int(amount)
        for (subject, metric, period, start), amount in sorted(releases.items()):
            conn.execute(
                t.update()
                .where(
                    t.c.subject == subject,
                    t.c.metric == metric,
                    t.c.period == period,
                    t.c.window_start == start,
                )
                .values(reserved=t.c.reserved - amount)
            )

    def _settle(self, hold_ids: list[str], pairs: list[tuple[Charge, int]]) -> None:
        t = gateway_spend
        with self.store.write() as conn:
            self._release(conn, hold_ids)
            self._insert_missing(conn, [c for c, _ in pairs])
            for c, used in pairs:
                conn.execute(t.update().where(self._where(c)).values(spent=t.c.spent + used))
            if not pairs:
                return
            now = max(c.start for c, _ in pairs)  # the newest window began about now
            if now - self._pruned_at > _PRUNE_MINUTE_ROWS_AFTER_S:
                # RPM/TPM rows matter for one minute; keep an hour of them for inspection.
                self._pruned_at = now
                conn.execute(
                    t.delete().where(
                        t.c.period == "minute",
                        t.c.window_end < now - _PRUNE_MINUTE_ROWS_AFTER_S,
                    )
                )

    def _sweep(self, now: float) -> int:
        h = gateway_holds
        with self.store.write() as conn:
            expired = conn.execute(
                sa.select(h.c.hold_id).where(h.c.expires_at < now).limit(500)
            ).scalars()
            ids = list(expired)
            self._release(conn, ids)
        return len(ids)

    def _rows(self, period: str | None, at: float | None) -> list[LedgerRow]:
        t = gateway_spend
        query = sa.select(t)
        if period is not None:
            query = query.where(t.c.period == period)
        if at is not None:
            query = query.where(t.c.window_start <= at, t.c.window_end > at)
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return _filtered(
            [
                LedgerRow(
                    r.subject,
                    r.metric,
                    r.period,
                    int(r.window_start),
                    int(r.window_end),
                    int(r.spent),
                    int(r.reserved),
                )
                for r in rows
            ],
            None,
            None,
        )
