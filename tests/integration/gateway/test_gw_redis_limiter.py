"""Global quotas in the real Redis: two limiters (as two replicas would) share one bucket."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from mloop.gateway import parse_config
from mloop.gateway._quota import Observation
from mloop.gateway._redis_limiter import RedisLimiter

pytestmark = pytest.mark.redis


def deployments(**limits: Any) -> Any:
    return parse_config(
        {
            "deployments": [{"name": "big", "base_url": "u", "model": "m", **limits}],
            "routes": {"r": {"chain": ["big"]}},
        }
    ).deployments


def pair(redis_url: str, **limits: Any) -> tuple[RedisLimiter, RedisLimiter]:
    prefix = f"mloop:test:{uuid.uuid4().hex}:"
    deps = deployments(**limits)
    return RedisLimiter(deps, redis_url, prefix=prefix), RedisLimiter(
        deps, redis_url, prefix=prefix
    )


async def close(*limiters: RedisLimiter) -> None:
    for lim in limiters:
        await lim._redis.delete(*lim._keys("big"))
        await lim.aclose()


def test_two_replicas_share_the_request_bucket(redis_url: str) -> None:
    async def scenario() -> tuple[int, Any]:
        a, b = pair(redis_url, rpm=60, burst_s=5)  # burst of 5 requests, 1 per second
        granted = 0
        for lim in (a, b, a, b, a, b, a):
            if (await lim.try_acquire("big", 1, 0.0)).ok:
                granted += 1
        denied = await b.try_acquire("big", 1, 0.0)
        await close(a, b)
        return granted, denied

    granted, denied = asyncio.run(scenario())
    assert granted == 5
    assert not denied.ok and denied.reason == "requests" and 0 < denied.wait_s <= 1.0


def test_concurrency_slots_are_global_and_released(redis_url: str) -> None:
    async def scenario() -> list[bool]:
        a, b = pair(redis_url, max_concurrency=2)
        first = await a.try_acquire("big", 1, 0.0)
        second = await b.try_acquire("big", 1, 0.0)
        third = await a.try_acquire("big", 1, 0.0)
        assert first.lease is not None
        await a.release(first.lease, 0.0)
        fourth = await b.try_acquire("big", 1, 0.0)
        await close(a, b)
        return [first.ok, second.ok, third.ok, fourth.ok]

    assert asyncio.run(scenario()) == [True, True, False, True]


def test_a_429_seen_by_one_replica_blocks_both(redis_url: str) -> None:
    async def scenario() -> Any:
        a, b = pair(redis_url, rpm=6000)
        lease = (await a.try_acquire("big", 10, 0.0)).lease
        assert lease is not None
        await a.observe(lease, Observation(rate_limited=True, retry_after_s=30.0), 0.0)
        denied = await b.try_acquire("big", 10, 0.0)
        await close(a, b)
        return denied

    denied = asyncio.run(scenario())
    assert denied.reason == "retry_after" and 29 < denied.wait_s <= 30


def test_headers_reanchor_the_shared_copy(redis_url: str) -> None:
    async def scenario() -> list[bool]:
        a, b = pair(redis_url, tpm=100_000)
        lease = (await a.try_acquire("big", 100, 0.0)).lease
        assert lease is not None
        # The provider says: 1,000 tokens a minute, 150 left, full in 51 s (capacity ~1,000).
        obs = Observation(limit_tokens=1000, remaining_tokens=150, reset_tokens_s=51.0)
        await a.observe(lease, obs, 0.0)
        small = await b.try_acquire("big", 100, 0.0)
        big = await b.try_acquire("big", 100, 0.0)
        await close(a, b)
        return [small.ok, big.ok]

    assert asyncio.run(scenario()) == [True, False]


def test_usage_reads_the_shared_buckets_like_the_local_limiter(redis_url: str) -> None:
    from mloop.gateway import LocalLimiter

    async def scenario() -> tuple[Any, Any, Any]:
        a, b = pair(redis_url, rpm=60, tpm=6000, max_concurrency=3)
        local = LocalLimiter(deployments(rpm=60, tpm=6000, max_concurrency=3), 0.0)
        for lim in (a, local):
            assert (await lim.try_acquire("big", 100, 0.0)).ok
            assert (await lim.try_acquire("big", 50, 0.0)).ok
        seen_by_b = await b.usage("big", 0.0)
        seen_locally = await local.usage("big", 0.0)
        lease = (await a.try_acquire("big", 10, 0.0)).lease
        assert lease is not None
        await a.observe(lease, Observation(rate_limited=True, retry_after_s=30.0), 0.0)
        blocked = await b.usage("big", 0.0)
        await close(a, b)
        return seen_by_b, seen_locally, blocked

    seen_by_b, seen_locally, blocked = asyncio.run(scenario())
    assert seen_by_b.inflight == seen_locally.inflight == 2
    assert seen_by_b.max_concurrency == 3
    assert seen_by_b.request_capacity == seen_locally.request_capacity == 60
    assert seen_by_b.token_capacity == seen_locally.token_capacity == 6000
    # Redis refills by its own clock between calls: a few milliseconds' worth at most.
    assert seen_by_b.requests_remaining == pytest.approx(seen_locally.requests_remaining, abs=0.1)
    assert seen_by_b.tokens_remaining == pytest.approx(seen_locally.tokens_remaining, abs=5)
    assert blocked.inflight == 3 and 29 < blocked.blocked_for_s <= 30
    assert blocked.requests_remaining <= 0.1
