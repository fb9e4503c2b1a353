"""The spend ledger: reserve all of a request's charges or none, atomically; settle later.

Three backends pass one conformance suite: ``MemoryLedger`` (one process),
``SqlLedger`` (SQLite or PostgreSQL, shared by replicas) and ``RedisLedger``
(``_redis_ledger``). In SQL a reservation is one transaction that locks each row
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers with ``BEGIN
IMMEDIATE``), checks ``spent + reserved + amount <= cap`` and adds the amount, so
concurrent requests on any number of replicas cannot together pass a cap, and a
refusal reports the figures it was decided on. Rows are touched in one sorted order, so two
transactions never wait on each other in a cycle.
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

__all__ = ["Exceeded", "Ledger", "LedgerRow", "MemoryLedger", "SqlLedger", "gateway_spend"]

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

    async def reserve(self, charges: Sequence[Charge]) -> None:
        """Hold every charge, or none and raise ``Exceeded`` for the first that does not fit."""
        ...

    async def settle(self, charges: Sequence[Charge], actual: Sequence[int]) -> None:
        """Release each charge's held amount and add what was really used."""
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
        self._lock = threading.Lock()

    async def reserve(self, charges: Sequence[Charge]) -> None:
        with self._lock:
            for c in _ordered(charges):
                row = self._rows.get(c.row, [c.end, 0, 0])
                if c.cap is not None and row[1] + row[2] + c.amount > c.cap:
                    raise Exceeded(c, row[1] + row[2])
            for c in charges:
                self._rows.setdefault(c.row, [c.end, 0, 0])[2] += c.amount

    async def settle(self, charges: Sequence[Charge], actual: Sequence[int]) -> None:
        with self._lock:
            for c, used in zip(charges, actual, strict=True):
                row = self._rows.setdefault(c.row, [c.end, 0, 0])
                row[1] += used
                row[2] -= c.amount

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

    async def reserve(self, charges: Sequence[Charge]) -> None:
        if charges:
            await asyncio.to_thread(self._reserve, _ordered(charges))

    async def settle(self, charges: Sequence[Charge], actual: Sequence[int]) -> None:
        pairs = sorted(zip(charges, actual, strict=True), key=lambda p: p[0].row)
        if pairs:
            await asyncio.to_thread(self._settle, pairs)

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

    def _reserve(self, charges: list[Charge]) -> None:
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

    def _settle(self, pairs: list[tuple[Charge, int]]) -> None:
        t = gateway_spend
        with self.store.write() as conn:
            self._insert_missing(conn, [c for c, _ in pairs])
            for c, used in pairs:
                conn.execute(
                    t.update()
                    .where(self._where(c))
                    .values(spent=t.c.spent + used, reserved=t.c.reserved - c.amount)
                )
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
