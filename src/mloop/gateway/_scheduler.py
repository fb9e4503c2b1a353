"""The gateway's scheduler: one priority queue in front of every deployment's quota.

This is mloop's own scheduling algorithm (the product, not a wrapper):

* One queue ordered by rank. Interactive work ranks by arrival time; batch work
  by arrival time plus ``batch_aging_s``, so interactive goes first, yet a batch
  request that has waited ``batch_aging_s`` outranks fresh interactive work and
  is never starved.
* Dispatch happens only when a quota can take the call *now* (see ``_quota``):
  the gateway sends what the provider will admit instead of collecting 429s.
* The deployment is chosen at admission time, walking the request's fallback
  chain: the primary if it can take the call now, else the next one, else wait.
  Strict order per deployment: once a deployment turns a request away in a
  pass, requests ranked below it do not jump ahead on that deployment.
* Deadlines are checked on arrival (a request that cannot be served in time is
  refused at once with 429 and Retry-After) and while queued.

Time comes from an injected clock, so tests drive it without sleeping.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop._clock import Clock
from mloop.errors import MloopError, Overloaded
from mloop.gateway._breaker import CircuitBreaker
from mloop.gateway._config import Deployment
from mloop.gateway._limiter import Lease, Limiter

__all__ = ["Candidate", "Grant", "Priority", "Scheduler", "Ticket"]

Priority = Literal["interactive", "batch"]
PRIORITIES: tuple[Priority, ...] = ("interactive", "batch")

# How often to re-ask a limiter whose wait is unknown (a concurrency slot held elsewhere).
_RECHECK_S = 0.02


@dataclass(frozen=True)
class Candidate:
    """One deployment a request may go to, with the tokens it would charge there."""

    deployment: str
    tokens: int


@dataclass(frozen=True)
class Grant:
    """A request's admission: where it goes, its lease, and how long it queued."""

    deployment: str
    lease: Lease
    waited_s: float


_seq = itertools.count()


@dataclass(eq=False)
class Ticket:
    """A request waiting for admission (kept across retries so its rank is kept)."""

    candidates: Sequence[Candidate]
    priority: Priority
    arrival: float
    deadline: float | None = None
    rank: float = 0.0
    seq: int = field(default_factory=lambda: next(_seq))
    avoid_until: dict[str, float] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    last_error: MloopError | None = None
    attempts: int = 0
    completion_tokens: int = 0
    hold: Any = None  # the request's spend hold (``_spending.Hold``) when its key is budgeted
    future: asyncio.Future[Grant] | None = None

    def key(self) -> tuple[float, int]:
        """Sort key in the queue."""
        return (self.rank, self.seq)


class Scheduler:
    """Admits queued requests onto deployments as their quotas allow, by priority."""

    def __init__(
        self,
        deployments: Mapping[str, Deployment],
        limiter: Limiter,
        breakers: Mapping[str, CircuitBreaker],
        clock: Clock,
        *,
        batch_aging_s: float = 30.0,
    ) -> None:
        self.deployments = deployments
        self.limiter = limiter
        self.breakers = breakers
        self.clock = clock
        self.batch_aging_s = batch_aging_s
        self._queue: list[tuple[tuple[float, int], Ticket]] = []
        self._all = frozenset(deployments)
        self._retry_at: dict[str, float] = {}
        self._latency: dict[str, float] = {name: 1.0 for name in deployments}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # --- public ---------------------------------------------------------------------

    def ticket(
        self,
        candidates: Sequence[Candidate],
        priority: Priority = "interactive",
        deadline_s: float | None = None,
    ) -> Ticket:
        """A new ticket, ranked by arrival now (batch work is offset by the aging time)."""
        now = self.clock.monotonic()
        offset = self.batch_aging_s if priority == "batch" else 0.0
        deadline = None if deadline_s is None else now + deadline_s
        return Ticket(candidates, priority, now, deadline, rank=now + offset)

    def check_deadline(self, ticket: Ticket) -> None:
        """Refuse at once (429 + Retry-After) a ticket whose deadline cannot be met."""
        if ticket.deadline is None:
            return
        now = self.clock.monotonic()
        wait = self.estimate_wait(ticket, now)
        latency = min(self._latency[c.deployment] for c in ticket.candidates)
        if now + wait + latency > ticket.deadline:
            raise Overloaded(
                f"The gateway cannot answer within the requested deadline "
                f"({(ticket.deadline - now) * 1000:.0f} ms): about {wait:.1f} s of queued work "
                f"and {latency:.1f} s of model latency are ahead. Retry later or raise "
                "X-Mloop-Deadline-Ms.",
                retry_after=max(wait, 1.0),
            )

    async def acquire(self, ticket: Ticket) -> Grant:
        """Queue ``ticket`` and wait until a deployment admits it."""
        if self._closed:
            raise Overloaded("The gateway is shutting down; retry on another replica.", 1.0)
        self._ensure_running()
        loop = asyncio.get_running_loop()
        ticket.future = loop.create_future()
        bisect.insort(self._queue, (ticket.key(), ticket), key=lambda item: item[0])
        self.wake()
        fut = ticket.future
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                # Granted just as the caller went away: hand the quota back.
                lease = fut.result().lease
                asyncio.get_running_loop().create_task(self.release(lease))
            else:
                self._remove(ticket)
            raise

    async def release(self, lease: Lease, latency_s: float | None = None) -> None:
        """Give a lease back and let the dispatcher look again."""
        if latency_s is not None:
            old = self._latency[lease.deployment]
            self._latency[lease.deployment] = 0.8 * old + 0.2 * latency_s
        await self.limiter.release(lease, self.clock.monotonic())
        self._retry_at.pop(lease.deployment, None)
        self.wake()

    def wake(self) -> None:
        """Ask the dispatcher to run a pass (quota or breaker state changed)."""
        self._wake.set()

    def forget_wait(self, deployment: str) -> None:
        """Drop the cached wait for ``deployment`` (its quota was re-anchored)."""
        self._retry_at.pop(deployment, None)

    def queue_depth(self, priority: Priority) -> int:
        """Requests of ``priority`` waiting right now."""
        return sum(1 for _, t in self._queue if t.priority == priority)

    def latency(self, deployment: str) -> float:
        """Smoothed call latency of ``deployment`` in seconds."""
        return self._latency[deployment]

    def estimate_wait(self, ticket: Ticket, now: float) -> float:
        """Seconds ``ticket`` would queue: work ranked ahead over the chain's throughput."""
        ahead = sum(1 for key, _ in self._queue if key < ticket.key())
        rate = 0.0
        for cand in ticket.candidates:
            if cand.deployment in ticket.excluded:
                continue
            if self.breakers[cand.deployment].state(now) == "open":
                continue
            rate += self._throughput(cand)
        if rate <= 0:
            return math.inf
        soonest = min(
            (max(0.0, self._retry_at.get(c.deployment, now) - now) for c in ticket.candidates),
            default=0.0,
        )
        return soonest + ahead / rate

    async def aclose(self) -> None:
        """Stop dispatching; waiting requests get 429 with Retry-After."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, ticket in self._queue:
            if ticket.future is not None and not ticket.future.done():
                ticket.future.set_exception(
                    Overloaded("The gateway is shutting down; retry on another replica.", 1.0)
                )
        self._queue.clear()

    # --- dispatcher -----------------------------------------------------------------

    def _throughput(self, cand: Candidate) -> float:
        dep = self.deployments[cand.deployment]
        rates = []
        if dep.rpm:
            rates.append(dep.rpm / dep.window_s)
        if dep.tpm:
            rates.append(dep.tpm / dep.window_s / max(1, cand.tokens))
        if dep.max_concurrency:
            rates.append(dep.max_concurrency / max(0.05, self._latency[cand.deployment]))
        return min(rates) if rates else 1000.0

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _remove(self, ticket: Ticket) -> None:
        for i, (_, t) in enumerate(self._queue):
            if t is ticket:
                del self._queue[i]
                return

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            next_at = await self.dispatch_pass()
            await self._idle(next_at - self.clock.monotonic())

    async def _idle(self, timeout: float) -> None:
        if self._wake.is_set() or timeout <= 0:
            await asyncio.sleep(0)
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        tasks: set[asyncio.Future[object]] = {waiter}  # type: ignore[arg-type]
        if math.isfinite(timeout):
            tasks.add(asyncio.ensure_future(self.clock.sleep(timeout)))  # type: ignore[arg-type]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    async def dispatch_pass(self) -> float:
        """Admit every queued request that can go now; returns when to look again."""
        now = self.clock.monotonic()
        next_at = math.inf
        blocked: set[str] = set()
        for _, ticket in list(self._queue):
            fut = ticket.future
            if fut is None or fut.done():
                self._remove(ticket)
                continue
            if ticket.deadline is not None:
                if now >= ticket.deadline:
                    self._fail(ticket, now)
                    continue
                next_at = min(next_at, ticket.deadline)
            grant, wake_at, usable = await self._try_ticket(ticket, now, blocked)
            if grant is not None:
                self._remove(ticket)
                fut.set_result(grant)
            elif not usable:
                self._fail(ticket, now)
            else:
                next_at = min(next_at, wake_at)
            if blocked >= self._all:
                # Nothing else can be admitted; still honour the deadlines of the rest.
                deadlines = [t.deadline for _, t in self._queue if t.deadline is not None]
                return min([next_at, *deadlines])
        return next_at

    async def _try_ticket(
        self, ticket: Ticket, now: float, blocked: set[str]
    ) -> tuple[Grant | None, float, bool]:
        next_at = math.inf
        usable = False
        for cand in ticket.candidates:
            name = cand.deployment
            if name in ticket.excluded:
                continue
            usable = True
            avoid = ticket.avoid_until.get(name, 0.0)
            if avoid > now:
                next_at = min(next_at, avoid)
                continue
            breaker = self.breakers[name]
            if not breaker.can_try(now):
                # Open (or probing): nobody may use it this pass.
                blocked.add(name)
                next_at = min(next_at, max(breaker.retry_at(now), now + _RECHECK_S))
                continue
            if name in blocked:
                continue
            cached = self._retry_at.get(name)
            if cached is not None and cached > now:
                blocked.add(name)
                next_at = min(next_at, cached)
                continue
            admission = await self.limiter.try_acquire(name, cand.tokens, now)
            if admission.lease is not None:
                breaker.on_dispatch(now)
                return Grant(name, admission.lease, now - ticket.arrival), next_at, True
            blocked.add(name)
            wait = admission.wait_s if math.isfinite(admission.wait_s) else _RECHECK_S
            retry = now + max(wait, 0.001)
            if math.isfinite(admission.wait_s):
                self._retry_at[name] = retry
            next_at = min(next_at, retry)
        return None, next_at, usable

    def _fail(self, ticket: Ticket, now: float) -> None:
        self._remove(ticket)
        assert ticket.future is not None
        if ticket.last_error is not None and (ticket.deadline is None or now < ticket.deadline):
            ticket.future.set_exception(ticket.last_error)
            return
        ticket.future.set_exception(
            Overloaded(
                "The request's deadline passed while it waited for provider quota; "
                "no deployment in its chain could take it in time. Retry later or "
                "raise X-Mloop-Deadline-Ms.",
                retry_after=max(1.0, self.estimate_wait(ticket, now)) if self._queue else 1.0,
            )
        )
