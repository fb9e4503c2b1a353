"""What an API key may spend at the LLM gateway: routes, RPM/TPM caps, USD budgets; teams.

A key's limits and a team's limits are the same value (``Limits``); a key may belong
to one team, whose limits its requests must fit as well (the team's budget is shared
by all its keys). Limits live in the metadata database (table ``gateway_limits``,
migration ``gateway_0001``) and are read from a short in-memory cache like the keys
themselves, so a change takes effect within ``cache_ttl_s``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from mloop._clock import Clock, SystemClock
from mloop.errors import InvalidInput, NotFound
from mloop.store import MetadataStore, api_keys

__all__ = [
    "BUDGET_PERIODS",
    "KeyLimits",
    "LimitStore",
    "Limits",
    "gateway_limits",
    "parse_budgets",
]

BUDGET_PERIODS = ("day", "week", "month")
"""Calendar windows (UTC) a USD budget can cover; a week starts on Monday."""

gateway_limits = sa.Table(
    "gateway_limits",
    sa.MetaData(),
    sa.Column("kind", sa.String(8), primary_key=True),  # "key" or "team"
    sa.Column("name", sa.String(200), primary_key=True),  # key id or team name
    sa.Column("team", sa.String(200), nullable=True),  # a key's team
    sa.Column("routes", sa.JSON, nullable=False),
    sa.Column("rpm", sa.Integer, nullable=False),
    sa.Column("tpm", sa.Integer, nullable=False),
    sa.Column("budgets", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class Limits:
    """Caps for one key or team; 0 / empty means no cap of that kind."""

    routes: tuple[str, ...] = ()  # empty: every route
    rpm: int = 0
    tpm: int = 0
    budgets_usd: Mapping[str, float] = field(default_factory=dict)  # period -> USD

    def __post_init__(self) -> None:
        for period, usd in self.budgets_usd.items():
            if period not in BUDGET_PERIODS:
                raise InvalidInput(
                    f"Budget period {period!r} is not one of {list(BUDGET_PERIODS)}.",
                    param="budget",
                )
            if not (isinstance(usd, int | float) and math.isfinite(usd) and usd >= 0):
                raise InvalidInput(
                    f"Budget {period}={usd!r} must be a number of USD >= 0.", param="budget"
                )
        if self.rpm < 0 or self.tpm < 0:
            raise InvalidInput(f"rpm={self.rpm} and tpm={self.tpm} must be >= 0 (0: no cap).")

    def allows(self, route: str) -> bool:
        """True when this key or team may call ``route``."""
        return not self.routes or route in self.routes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "routes": list(self.routes),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "budgets_usd": dict(self.budgets_usd),
        }


@dataclass(frozen=True)
class KeyLimits:
    """A key's own limits and, when it belongs to a team, the team's."""

    key_id: str
    limits: Limits
    team: str | None = None
    team_limits: Limits | None = None


def _limits(row: Any) -> Limits:
    return Limits(
        routes=tuple(row.routes),
        rpm=int(row.rpm),
        tpm=int(row.tpm),
        budgets_usd={str(k): float(v) for k, v in dict(row.budgets).items()},
    )


class LimitStore:
    """Set, list and read (cached) the gateway limits of keys and teams."""

    def __init__(
        self, store: MetadataStore, *, clock: Clock | None = None, cache_ttl_s: float = 5.0
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, KeyLimits | None]] = {}
        self._lock = threading.Lock()

    def set_team(self, name: str, limits: Limits) -> None:
        """Create or replace a team and its limits."""
        if not name.strip():
            raise InvalidInput("A team needs a name, e.g. --team search.")
        self._put("team", name, None, limits)

    def set_key(self, key_id: str, limits: Limits, *, team: str | None = None) -> None:
        """Give key ``key_id`` its limits and team (replacing earlier ones)."""
        with self.store.read() as conn:
            known = conn.execute(sa.select(api_keys.c.key_id).where(api_keys.c.key_id == key_id))
            if known.first() is None:
                raise NotFound(
                    f"No API key with id {key_id!r}. List keys with: mloop keys list",
                    key_id=key_id,
                )
            if team is not None and self._row(conn, "team", team) is None:
                raise NotFound(
                    f"No team {team!r}. Create it first with: mloop gateway team {team}",
                    team=team,
                )
        self._put("key", key_id, team, limits)

    def _put(self, kind: str, name: str, team: str | None, limits: Limits) -> None:
        t = gateway_limits
        values = {
            "team": team,
            "routes": list(limits.routes),
            "rpm": limits.rpm,
            "tpm": limits.tpm,
            "budgets": dict(limits.budgets_usd),
            "updated_at": self.clock.now(),
        }
        with self.store.write() as conn:
            done = conn.execute(
                t.update().where(t.c.kind == kind, t.c.name == name).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(t.insert().values(kind=kind, name=name, **values))
        with self._lock:
            self._cache.clear()

    def team_limits(self) -> dict[str, Limits]:
        """Every team and its limits."""
        t = gateway_limits
        with self.store.read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.kind == "team").order_by(t.c.name)).all()
        return {row.name: _limits(row) for row in rows}

    def key_limits(self) -> list[KeyLimits]:
        """Every key that has limits, with its team's."""
        t = gateway_limits
        with self.store.read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.kind == "key").order_by(t.c.name)).all()
        teams = self.team_limits()
        return [
            KeyLimits(r.name, _limits(r), r.team, teams.get(r.team) if r.team else None)
            for r in rows
        ]

    def for_key(self, key_id: str) -> KeyLimits | None:
        """The limits of ``key_id`` (None: it has none), from a cache of ``cache_ttl_s``."""
        now = self.clock.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.store.read() as conn:
            row = self._row(conn, "key", key_id)
            team_row = self._row(conn, "team", row.team) if row is not None and row.team else None
        found = None
        if row is not None:
            team_limits = _limits(team_row) if team_row is not None else None
            found = KeyLimits(key_id, _limits(row), row.team, team_limits)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = (now + self.cache_ttl_s, found)
        return found

    @staticmethod
    def _row(conn: sa.Connection, kind: str, name: str) -> Any:
        t = gateway_limits
        return conn.execute(sa.select(t).where(t.c.kind == kind, t.c.name == name)).first()


def parse_budgets(values: Iterable[str]) -> dict[str, float]:
    """``["day=5", "month=100"]`` -> ``{"day": 5.0, "month": 100.0}`` (USD)."""
    out: dict[str, float] = {}
    for value in values:
        period, sep, amount = value.partition("=")
        try:
            usd = float(amount)
        except ValueError:
            usd = -1.0
        if not sep or period.strip() not in BUDGET_PERIODS or not usd >= 0:
            raise InvalidInput(
                f"Budget {value!r} must read PERIOD=USD with PERIOD one of "
                f"{list(BUDGET_PERIODS)}, e.g. --budget day=5 --budget month=100."
            )
        out[period.strip()] = usd
    return out
