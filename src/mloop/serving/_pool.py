"""The model pool: each version loaded once per process, LRU-evicted under a budget.

A memory budget (MB) and a count limit bound what stays resident, and
``evict_idle`` unloads what no request used for a while (scale to zero, model by
model; the next request loads it again). Concurrent first requests for one version
share a single load (single flight). Pinned versions and
versions with requests in flight are never evicted; when everything resident is
busy or pinned the pool runs over budget rather than failing a request.
All bookkeeping runs on the event loop; only the loader runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["ModelPool", "PoolStats"]

T = TypeVar("T")
Key = tuple[str, int]


@dataclass
class _Entry(Generic[T]):
    value: T
    size_mb: float
    pinned: bool = False
    active: int = 0
    last_used: float = 0.0


@dataclass
class PoolStats:
    """Counters a pool keeps (exported as metrics)."""

    hits: int = 0
    misses: int = 0
    loads: int = 0
    load_failures: int = 0
    evictions: int = 0
    resident: int = 0
    memory_mb: float = 0.0

    @property
    def hit_rate(self) -> float:
        """Share of ``get`` calls answered without loading."""
        total = self.hits + self.misses
        return self.hits / total if total else 1.0


class ModelPool(Generic[T]):
    """Loads ``(name, version)`` through ``loader`` once and keeps the hot ones resident."""

    def __init__(
        self,
        loader: Callable[[str, int], T],
        *,
        max_models: int = 100,
        memory_mb: float = 2048.0,
        sizer: Callable[[T], float] = lambda _v: 0.0,
        executor: Executor | None = None,
        on_evict: Callable[[Key, T], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loader = loader
        self.max_models = max(1, max_models)
        self.memory_mb = memory_mb
        self.sizer = sizer
        self.executor = executor
        self.on_evict = on_evict
        self.monotonic = monotonic
        self.stats = PoolStats()
        # The last load failure of each version that has not loaded since (for readiness).
        self.failures: dict[Key, BaseException] = {}
        self._entries: OrderedDict[Key, _Entry[T]] = OrderedDict()
        self._loading: dict[Key, asyncio.Future[T]] = {}
        self._pins: set[Key] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def resident(self) -> list[Key]:
        """Resident versions, least recently used first."""
        return list(self._entries)

    def peek(self, name: str, version: int) -> T | None:
        """The loaded value, without loading or touching recency."""
        entry = self._entries.get((name, version))
        return None if entry is None else entry.value

    async def get(self, name: str, version: int) -> T:
        """The loaded value, loading it once if needed (shared by concurrent callers)."""
        key = (name, version)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            entry.last_used = self.monotonic()
            self.stats.hits += 1
            return entry.value
        self.stats.misses += 1
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[key] = pending
            asyncio.get_running_loop().create_task(self._load(key, pending))
        return await asyncio.shield(pending)

    @contextlib.asynccontextmanager
    async def lease(self, name: str, version: int) -> AsyncIterator[T]:
        """Hold the version resident (not evictable) while the block runs."""
        value = await self.get(name, version)
        entry = self._entries.get((name, version))
        if entry is not None:
            entry.active += 1
        try:
            yield value
        finally:
            if entry is not None:
                entry.active -= 1

    def pin(self, name: str, version: int) -> None:
        """Never evict this version (it need not be loaded yet)."""
        self._pins.add((name, version))
        entry = self._entries.get((name, version))
        if entry is not None:
            entry.pinned = True

    def unpin(self, name: str, version: int) -> None:
        """Make this version evictable again."""
        self._pins.discard((name, version))
        entry = self._entries.get((name, version))
        if entry is not None:
            entry.pinned = False
        self._shrink()

    def evict(self, name: str, version: int) -> bool:
        """Unload a version now unless it is busy; True if it was removed."""
        key = (name, version)
        entry = self._entries.get(key)
        if entry is None or entry.active:
            return False
        self._remove(key, entry)
        return True

    def evict_idle(
        self, idle_s: float, *, keep: Callable[[Key], bool] = lambda _k: False
    ) -> list[Key]:
        """Unload versions no request used for ``idle_s`` seconds (not pinned, busy or kept)."""
        now = self.monotonic()
        gone = []
        for key, entry in list(self._entries.items()):
            if entry.pinned or entry.active or keep(key) or now - entry.last_used < idle_s:
                continue
            self._remove(key, entry)
            self.stats.evictions += 1
            gone.append(key)
        return gone

    async def _load(self, key: Key, future: asyncio.Future[T]) -> None:
        loop = asyncio.get_running_loop()
        try:
            value = await loop.run_in_executor(self.executor, self.loader, *key)
            size = await loop.run_in_executor(self.executor, self.sizer, value)
        except BaseException as exc:  # every waiter must hear about the failure
            self.stats.load_failures += 1
            self.failures[key] = exc
            del self._loading[key]
            future.set_exception(exc)
            # Mark retrieved: a failed load with no waiter left is not an unhandled error.
            future.exception()
            return
        self.stats.loads += 1
        self.failures.pop(key, None)
        self._entries[key] = _Entry(
            value, float(size), pinned=key in self._pins, last_used=self.monotonic()
        )
        self.stats.memory_mb += float(size)
        self.stats.resident = len(self._entries)
        del self._loading[key]
        future.set_result(value)
        self._shrink(keep=key)

    def _shrink(self, keep: Key | None = None) -> None:
        def over() -> bool:
            return len(self._entries) > self.max_models or self.stats.memory_mb > self.memory_mb

        if not over():
            return
        for key in list(self._entries):
            entry = self._entries[key]
            if key == keep or entry.pinned or entry.active:
                continue
            self._remove(key, entry)
            self.stats.evictions += 1
            if not over():
                return

    def _remove(self, key: Key, entry: _Entry[T]) -> None:
        del self._entries[key]
        self.stats.memory_mb = max(0.0, self.stats.memory_mb - entry.size_mb)
        self.stats.resident = len(self._entries)
        if self.on_evict is not None:
            self.on_evict(key, entry.value)
