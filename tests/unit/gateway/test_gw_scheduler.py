"""The scheduler with an injected clock: priority, aging, fallback at admission, deadlines.

No test sleeps: ``ManualClock.sleep`` moves time forward at once, so the
dispatcher jumps from one quota refill to the next.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gw_helpers import make_config

from mloop._clock import ManualClock
from mloop.errors import Overloaded
from mloop.gateway._breaker import CircuitBreaker
from mloop.gateway._limiter import LocalLimiter
from mloop.gateway._scheduler import Candidate, Grant, Scheduler


def scheduler(
    clock: ManualClock, deployments: list[dict[str, Any]], aging: float = 30.0
) -> Scheduler:
    config = make_config(deployments)
    limiter = LocalLimiter(config.deployments, clock.monotonic())
    breakers = {n: CircuitBreaker() for n in config.deployments}
    return Scheduler(config.deployments, limiter, breakers, clock, batch_aging_s=aging)


async def run_order(s: Scheduler, jobs: list[tuple[str, str]], hold: bool = False) -> list[str]:
    """Submit (label, priority) jobs at once; return labels in admission order."""
    order: list[str] = []
    chain = [Candidate(n, 10) for n in s.deployments]

    async def one(label: str, priority: str) -> Grant:
        ticket = s.ticket(chain, priority)  # type: ignore[arg-type]
        grant = await s.acquire(ticket)
        order.append(label)
        if not hold:
            await s.release(grant.lease, 0.1)
        return grant

    await asyncio.gather(*(one(label, prio) for label, prio in jobs))
    await s.aclose()
    return order


def test_interactive_goes_before_batch_when_quota_is_short() -> None:
    clock = ManualClock()
    # One request per second, burst of one: everything queues behind the quota.
    s = scheduler(clock, [{"name": "a", "rpm": 60, "burst_s": 1}])
    jobs = [("b1", "batch"), ("b2", "batch"), ("i1", "interactive"), ("i2", "interactive")]
    order = asyncio.run(run_order(s, jobs))
    # Submitted together: interactive first even though batch arrived earlier.
    assert order == ["i1", "i2", "b1", "b2"]


def test_batch_work_ages_past_fresh_interactive_work() -> None:
    clock = ManualClock()
    s = scheduler(clock, [{"name": "a", "rpm": 60, "burst_s": 1}], aging=2.0)

    async def scenario() -> list[str]:
        order: list[str] = []
        chain = [Candidate("a", 1)]

        async def one(ticket: Any, label: str) -> None:
            grant = await s.acquire(ticket)
            order.append(label)
            await s.release(grant.lease)

        await one(s.ticket(chain, "interactive"), "i0")  # empties the one-request burst
        batch = asyncio.ensure_future(one(s.ticket(chain, "batch"), "old-batch"))
        clock.advance(2.5)  # the batch request has now waited longer than the aging time
        fresh = asyncio.ensure_future(one(s.ticket(chain, "interactive"), "fresh-interactive"))
        await asyncio.gather(batch, fresh)
        await s.aclose()
        return order

    order = asyncio.run(scenario())
    assert order.index("old-batch") < order.index("fresh-interactive")


def test_fallback_is_chosen_at_admission_when_primary_is_full() -> None:
    clock = ManualClock()
    s = scheduler(
        clock,
        [{"name": "big", "rpm": 60, "burst_s": 2}, {"name": "small", "rpm": 6000}],
    )

    async def scenario() -> list[str]:
        chain = [Candidate("big", 10), Candidate("small", 10)]
        grants = [await s.acquire(s.ticket(chain)) for _ in range(5)]
        await s.aclose()
        return [g.deployment for g in grants]

    # big's burst is 2 requests; the other three go to small at once, nobody waits.
    assert asyncio.run(scenario()) == ["big", "big", "small", "small", "small"]
    assert clock.monotonic() == 0.0


def test_strict_order_per_deployment_no_overtaking_a_blocked_head() -> None:
    clock = ManualClock()
    s = scheduler(clock, [{"name": "a", "tpm": 600, "burst_s": 60}])

    async def scenario() -> list[str]:
        order: list[str] = []
        chain_big = [Candidate("a", 600)]
        chain_small = [Candidate("a", 10)]
        g = await s.acquire(s.ticket([Candidate("a", 300)]))
        await s.release(g.lease)

        async def one(label: str, chain: list[Candidate]) -> None:
            grant = await s.acquire(s.ticket(chain))
            order.append(label)
            await s.release(grant.lease)

        await asyncio.gather(one("big", chain_big), one("small", chain_small))
        await s.aclose()
        return order

    assert asyncio.run(scenario()) == ["big", "small"]


def test_concurrency_slots_are_freed_on_release() -> None:
    clock = ManualClock()
    s = scheduler(clock, [{"name": "a", "max_concurrency": 1}])
    order = asyncio.run(run_order(s, [("x", "interactive"), ("y", "interactive")]))
    assert order == ["x", "y"]


def test_unmeetable_deadline_is_refused_at_once_with_retry_after() -> None:
    clock = ManualClock()
    s = scheduler(clock, [{"name": "a", "rpm": 60, "burst_s": 1}])

    async def scenario() -> Overloaded:
        chain = [Candidate("a", 1)]
        waiting = [asyncio.ensure_future(s.acquire(s.ticket(chain))) for _ in range(20)]
        await asyncio.sleep(0)
        ticket = s.ticket(chain, "interactive", deadline_s=2.0)
        with pytest.raises(Overloaded) as info:
            s.check_deadline(ticket)
        for w in waiting:
            w.cancel()
        await s.aclose()
        return info.value

    err = asyncio.run(scenario())
    assert err.status_code == 429
    assert int(err.headers()["Retry-After"]) >= 10


def test_open_breaker_sends_work_to_the_next_deployment() -> None:
    clock = ManualClock()
    s = scheduler(clock, [{"name": "big"}, {"name": "small"}])
    for _ in range(3):
        s.breakers["big"].on_failure(clock.monotonic())

    async def scenario() -> str:
        grant = await s.acquire(s.ticket([Candidate("big", 1), Candidate("small", 1)]))
        await s.aclose()
        return grant.deployment

    assert asyncio.run(scenario()) == "small"


def test_breaker_half_opens_after_cooldown_with_a_single_probe() -> None:
    b = CircuitBreaker(failure_threshold=2, cooldown_s=5)
    b.on_failure(0)
    assert b.state(0) == "closed"
    b.on_failure(0)
    assert b.state(1) == "open" and not b.can_try(1)
    assert b.can_try(5)
    b.on_dispatch(5)
    assert not b.can_try(5)  # one probe at a time
    b.on_failure(6)
    assert b.state(6) == "open" and b.cooldown_s == 10
    assert b.can_try(16)
    b.on_dispatch(16)
    b.on_success()
    assert b.state(16) == "closed"


def test_backoff_is_full_jitter_with_retry_after_floor() -> None:
    import random

    from mloop.gateway._backoff import backoff_delay

    rng = random.Random(1)
    delays = [backoff_delay(4, base_s=1, cap_s=100, rng=rng) for _ in range(200)]
    assert 0 <= min(delays) < 1 and 7 < max(delays) <= 8
    assert backoff_delay(1, base_s=1, retry_after_s=5, rng=rng) >= 5
