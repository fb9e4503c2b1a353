"""The model pool: single-flight loads, LRU under count and memory limits, pins and leases."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mloop.errors import NotFound
from mloop.serving import ModelPool

pytestmark = pytest.mark.anyio


class Loader:
    """Counts loads and the most loads of one key at the same time."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, int]] = []
        self.delay = delay
        self._lock = threading.Lock()
        self._running: dict[tuple[str, int], int] = {}
        self.max_concurrent = 0

    def __call__(self, name: str, version: int) -> str:
        with self._lock:
            self.calls.append((name, version))
            n = self._running.get((name, version), 0) + 1
            self._running[(name, version)] = n
            self.max_concurrent = max(self.max_concurrent, n)
        time.sleep(self.delay)
        with self._lock:
            self._running[(name, version)] -= 1
        if name == "missing":
            raise NotFound("no such model")
        return f"{name}:{version}"


async def test_concurrent_first_requests_load_once() -> None:
    loader = Loader(delay=0.05)
    pool: ModelPool[str] = ModelPool(loader)
    values = await asyncio.gather(*(pool.get("churn", 1) for _ in range(50)))
    assert values == ["churn:1"] * 50
    assert loader.calls == [("churn", 1)]
    assert loader.max_concurrent == 1
    assert pool.stats.loads == 1


async def test_least_recently_used_goes_first_under_the_count_limit() -> None:
    pool: ModelPool[str] = ModelPool(Loader(), max_models=2)
    await pool.get("a", 1)
    await pool.get("b", 1)
    await pool.get("a", 1)  # a is now most recent
    await pool.get("c", 1)
    assert pool.resident() == [("a", 1), ("c", 1)]
    assert pool.stats.evictions == 1


async def test_memory_budget_evicts_until_it_fits() -> None:
    pool: ModelPool[str] = ModelPool(Loader(), memory_mb=25, sizer=lambda _v: 10.0)
    for name in "abc":
        await pool.get(name, 1)
    assert pool.resident() == [("b", 1), ("c", 1)]
    assert pool.stats.memory_mb == pytest.approx(20.0)


async def test_pinned_and_leased_versions_survive_eviction() -> None:
    pool: ModelPool[str] = ModelPool(Loader(), max_models=1)
    pool.pin("hot", 1)
    await pool.get("hot", 1)
    async with pool.lease("busy", 1):
        await pool.get("new", 1)
        assert ("busy", 1) in pool
    assert ("hot", 1) in pool


async def test_a_failed_load_reaches_every_waiter_and_can_be_retried() -> None:
    loader = Loader(delay=0.02)
    pool: ModelPool[str] = ModelPool(loader)
    results = await asyncio.gather(
        *(pool.get("missing", 1) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, NotFound) for r in results)
    assert loader.calls == [("missing", 1)]
    with pytest.raises(NotFound):
        await pool.get("missing", 1)
    assert len(loader.calls) == 2


async def test_zipf_traffic_over_many_models_stays_within_the_limit() -> None:
    import numpy as np

    pool: ModelPool[str] = ModelPool(Loader(), max_models=100)
    ranks = np.random.default_rng(0).zipf(1.2, size=3000) % 1000
    for r in ranks.tolist():
        await pool.get(f"m{r}", 1)
    assert len(pool.resident()) <= 100
    assert pool.stats.hit_rate > 0.5


async def test_idle_versions_unload_and_the_next_request_loads_them_once() -> None:
    now = [100.0]
    loader = Loader(delay=0.02)
    pool: ModelPool[str] = ModelPool(loader, monotonic=lambda: now[0])
    await pool.get("churn", 1)
    await pool.get("fraud", 1)
    pool.pin("pinned", 1)
    await pool.get("pinned", 1)
    now[0] = 150.0
    await pool.get("fraud", 1)  # used since: idle for less
    async with pool.lease("busy", 1):
        now[0] = 220.0
        gone = pool.evict_idle(60.0, keep=lambda key: key[0] == "fraud")
        assert gone == [("churn", 1)]  # fraud is kept, pinned pinned, busy in use
        assert pool.resident() == [("pinned", 1), ("fraud", 1), ("busy", 1)]
    assert pool.evict_idle(60.0) == [("fraud", 1), ("busy", 1)]
    values = await asyncio.gather(*(pool.get("churn", 1) for _ in range(20)))
    assert values == ["churn:1"] * 20
    assert loader.calls.count(("churn", 1)) == 2  # once at first, once after unloading
