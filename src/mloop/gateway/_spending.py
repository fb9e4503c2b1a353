"""Spending: a key's limits applied to one request, from reservation to settlement.

``admit`` checks the routes a key (and its team) may call and reserves the request's
most expensive outcome on the ledger; ``bill`` records each answer a provider
charged for; ``settle`` releases the hold and writes what was really spent, plus
per-day tallies for the key, its team, the route and each deployment used.
A ledger that cannot be reached refuses budgeted requests (503) unless the
operator chose ``[budgets] fail_open = true``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mloop._clock import Clock, SystemClock
from mloop.auth import KeyLimits
from mloop.errors import Forbidden, MloopError, Unavailable
from mloop.gateway._budget import BudgetExceeded, Charge, charges_for, micro_usd, tally_charges
from mloop.gateway._config import Deployment
from mloop.gateway._ledger import Exceeded, Ledger
from mloop.gateway._metrics import GatewayMetrics

__all__ = ["Hold", "LimitSource", "Spending"]

log = logging.getLogger(__name__)

_SWEEP_EVERY_S = 60.0


class LimitSource(Protocol):
    """Where a key's limits come from (``mloop.auth.LimitStore``)."""

    def for_key(self, key_id: str) -> KeyLimits | None:
        """The key's limits, or None when it has none."""
        ...


@dataclass
class Hold:
    """What one request holds on the ledger and what it has spent so far."""

    key_id: str
    team: str | None
    route: str
    at: float
    max_usd: int
    max_tokens: int
    limits: KeyLimits | None
    charges: list[Charge] = field(default_factory=list)
    held_usd: int = 0
    used_usd: int = 0
    used_tokens: int = 0
    by_deployment: dict[str, int] = field(default_factory=dict)
    hold_ids: list[str] = field(default_factory=list)
    settled: bool = False

    @property
    def needs_top_up(self) -> bool:
        """True when another full attempt would not fit in what is still held."""
        return (
            bool(self.charges)
            and self.used_usd > 0
            and self.held_usd - self.used_usd < (self.max_usd)
        )


def _check_route(limits: KeyLimits, route: str) -> None:
    for who, lim in (
        (f"key {limits.key_id!r}", limits.limits),
        (f"team {limits.team!r}", limits.team_limits),
    ):
        if lim is not None and not lim.allows(route):
            raise Forbidden(
                f"The {who} may call the routes {list(lim.routes)}, not {route!r}. Ask the "
                "operator to allow it (mloop gateway limit / mloop gateway team --route).",
                param="model",
            )


class Spending:
    """Applies keys' routes, RPM/TPM caps and USD budgets through a shared ledger."""

    def __init__(
        self,
        limits: LimitSource,
        ledger: Ledger,
        metrics: GatewayMetrics,
        *,
        clock: Clock | None = None,
        fail_open: bool = False,
        flush_every_s: float = 1.0,
        hold_ttl_s: float = 3600.0,
    ) -> None:
        self.limits = limits
        self.ledger = ledger
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.fail_open = fail_open
        self.flush_every_s = flush_every_s
        # Longer than any request may run (deadlines stop at one hour): a hold older than
        # this belongs to a replica that died, and the sweep gives it back.
        self.hold_ttl_s = hold_ttl_s
        self._swept_at = float("-inf")
        # Uncapped per-day tallies (reports only), summed here between flushes.
        self._tallies: dict[tuple[str, str, str, int], list[Any]] = {}
        self._flushed_at = self.clock.monotonic()

    async def admit(self, key_id: str, route: str, max_usd: float, max_tokens: int) -> Hold:
        """Check the route and hold the request's maximum cost; raises 403, 429 or 503."""
        now = self.clock.now()
        try:
            limits = await asyncio.to_thread(self.limits.for_key, key_id)
        except Exception as exc:  # the limits live in the same database as the ledger
            return self._unreachable("read limits", exc, key_id, route, now, max_usd, max_tokens)
        team = limits.team if limits is not None else None
        hold = Hold(key_id, team, route, now, micro_usd(max_usd), max_tokens, limits)
        if limits is None:
            return hold
        _check_route(limits, route)
        await self._reserve(hold, now)
        return hold

    async def check_route(self, key_id: str, route: str) -> None:
        """Raise ``Forbidden`` unless the key (and its team) may call ``route``."""
        try:
            limits = await asyncio.to_thread(self.limits.for_key, key_id)
        except Exception as exc:
            self._unreachable("read limits", exc, key_id, route, 0.0, 0, 0)
            return
        if limits is not None:
            _check_route(limits, route)

    async def top_up(self, hold: Hold) -> None:
        """Hold one more full attempt (a charged answer failed the route's schema)."""
        await self._reserve(hold, hold.at)

    async def _reserve(self, hold: Hold, now: float) -> None:
        assert hold.limits is not None
        charges = charges_for(hold.limits, hold.max_usd, hold.max_tokens, now)
        if not charges:
            return
        hold_id = secrets.token_hex(12)
        try:
            await self.ledger.reserve(charges, hold_id, self.clock.now() + self.hold_ttl_s)
        except Exceeded as exc:
            self.metrics.budget_refusals.labels(
                exc.charge.subject, f"{exc.charge.metric}/{exc.charge.period}"
            ).inc()
            raise BudgetExceeded(exc.charge, exc.used, self.clock.now()) from None
        except MloopError:
            raise
        except Exception as exc:
            self._unreachable("reserve", exc, hold.key_id, hold.route, now, 0, 0)
            return
        hold.charges.extend(charges)
        hold.hold_ids.append(hold_id)
        hold.held_usd += hold.max_usd

    def _unreachable(
        self, op: str, exc: Exception, key_id: str, route: str, now: float, usd: float, tokens: int
    ) -> Hold:
        self.metrics.ledger_errors.labels(op).inc()
        log.warning("spend ledger: %s failed: %r", op, exc)
        if not self.fail_open:
            raise Unavailable(
                f"The gateway's spend ledger is unreachable ({type(exc).__name__}), so it "
                "cannot check this key's budget and refuses the request. Retry shortly; the "
                "operator can check the database/Redis, or set [budgets] fail_open = true "
                "to serve without budgets while it is down.",
                retry_after=5.0,
            ) from exc
        return Hold(key_id, None, route, now, micro_usd(usd), tokens, None)

    def bill(self, hold: Hold, dep: Deployment, usage: Mapping[str, Any]) -> None:
        """Record one answer the provider charges for."""
        prompt = int(usage.get("prompt_tokens", 0) or 0)
        completion = int(usage.get("completion_tokens", 0) or 0)
        usd = micro_usd(dep.cost(prompt, completion))
        hold.used_usd += usd
        hold.used_tokens += int(usage.get("total_tokens", 0) or prompt + completion)
        hold.by_deployment[dep.name] = hold.by_deployment.get(dep.name, 0) + usd
        self.metrics.spend.labels(hold.key_id, hold.team or "", hold.route, dep.name).inc(
            usd / 1_000_000
        )

    async def settle(self, hold: Hold) -> None:
        """Release the hold and write the real spend (once; later calls do nothing).

        Capped rows are settled now (their holds must come back); the per-day tallies
        for reports are summed in memory and written about once every ``flush_every_s``.
        """
        if hold.settled:
            return
        hold.settled = True
        actual = {"usd": hold.used_usd, "tokens": hold.used_tokens, "requests": 1}
        capped: dict[tuple[str, str, str, int], tuple[Charge, int]] = {}
        for c in hold.charges:
            capped.setdefault(c.row, (c, actual[c.metric]))
        tallies = [
            (c, hold.used_usd)
            for c in tally_charges(hold.key_id, hold.team, hold.route, None, hold.at)
        ]
        for name, usd in hold.by_deployment.items():
            tallies += [
                (c, usd) for c in tally_charges(hold.key_id, None, hold.route, name, hold.at)[-1:]
            ]
        for c, used in tallies:
            if c.row in capped:
                continue  # a capped row of the same window: settled with it
            entry = self._tallies.setdefault(c.row, [c, 0])
            entry[1] += used
        if capped:
            await self._settle(
                hold.hold_ids, [c for c, _ in capped.values()], [u for _, u in capped.values()]
            )
        now = self.clock.monotonic()
        if now - self._flushed_at >= self.flush_every_s:
            await self.flush()
        if now - self._swept_at >= _SWEEP_EVERY_S:
            self._swept_at = now
            await self._sweep()

    async def flush(self) -> None:
        """Write the tallies summed since the last flush."""
        self._flushed_at = self.clock.monotonic()
        pending, self._tallies = self._tallies, {}
        if pending:
            await self._settle(
                [], [c for c, _ in pending.values()], [u for _, u in pending.values()]
            )

    async def aclose(self) -> None:
        """Flush the tallies and close the ledger."""
        await self.flush()
        await self.ledger.aclose()

    async def _sweep(self) -> None:
        try:
            released = await self.ledger.sweep(self.clock.now())
        except Exception as exc:
            self.metrics.ledger_errors.labels("sweep").inc()
            log.warning("spend ledger: sweep failed: %r", exc)
            return
        if released:
            log.warning("spend ledger: released %d holds left by replicas that stopped", released)

    async def _settle(self, hold_ids: list[str], charges: list[Charge], used: list[int]) -> None:
        try:
            await self.ledger.settle(hold_ids, charges, used)
        except Exception as exc:
            # The answer is already served; a hold stays until its window ends (safe side).
            self.metrics.ledger_errors.labels("settle").inc()
            log.warning("spend ledger: settle failed, holds kept until their window ends: %r", exc)
