"""Prediction cache, token-bucket rate limits and the live stats window."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mloop._clock import ManualClock
from mloop.errors import Overloaded
from mloop.flavors import Predictions
from mloop.serving import LocalCache, LocalRateLimiter, ServingStats, cache_key

pytestmark = pytest.mark.anyio


def preds(label: str) -> Predictions:
    return Predictions(task="classification", labels=np.array([label]), classes=("no", "yes"))


def test_cache_key_ignores_field_order_but_not_version() -> None:
    a = cache_key("churn", 1, [{"a": 1, "b": 2}])
    assert a == cache_key("churn", 1, [{"b": 2, "a": 1}])
    assert a != cache_key("churn", 2, [{"a": 1, "b": 2}])


async def test_cache_hits_until_the_ttl_passes() -> None:
    clock = ManualClock()
    cache = LocalCache(10, ttl_s=5, clock=clock)
    calls = 0

    async def compute() -> Predictions:
        nonlocal calls
        calls += 1
        return preds("yes")

    assert (await cache.get_or_compute(b"k", compute))[1] is False
    assert (await cache.get_or_compute(b"k", compute))[1] is True
    clock.advance(6)
    assert (await cache.get_or_compute(b"k", compute))[1] is False
    assert calls == 2


async def test_cache_is_lru_bounded_and_single_flight() -> None:
    cache = LocalCache(2, ttl_s=60)
    calls = 0

    async def slow() -> Predictions:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return preds("no")

    results = await asyncio.gather(*(cache.get_or_compute(b"x", slow) for _ in range(10)))
    assert calls == 1
    assert sum(hit for _, hit in results) == 9
    for key in (b"a", b"b", b"c"):
        await cache.get_or_compute(key, slow)
    assert len(cache) == 2


async def test_token_bucket_refuses_past_the_burst_and_refills() -> None:
    clock = ManualClock()
    limiter = LocalRateLimiter(rate=2, burst=2, clock=clock)
    await limiter.acquire("k")
    await limiter.acquire("k")
    with pytest.raises(Overloaded) as info:
        await limiter.acquire("k")
    assert info.value.retry_after == pytest.approx(0.5)
    await limiter.acquire("other")  # buckets are per key
    clock.advance(0.5)
    await limiter.acquire("k")


def test_stats_window_reports_percentiles_errors_and_shadow_agreement() -> None:
    clock = ManualClock()
    stats = ServingStats(window_s=10, clock=clock)
    for ms in range(1, 101):
        stats.observe("churn", 3, float(ms))
    stats.observe("churn", 3, 0.0, ok=False)
    stats.observe_shadow("churn", 4, agreed=9, compared=10)
    snap = stats.snapshot("churn")
    assert snap[3]["requests"] == 101
    assert snap[3]["errors"] == 1
    assert snap[3]["p50_ms"] == pytest.approx(50.5)
    assert snap[4]["shadow_agreement"] == pytest.approx(0.9)
    clock.advance(30)
    stats.observe("churn", 3, 1.0)
    assert stats.snapshot("churn")[3]["requests"] == 1
