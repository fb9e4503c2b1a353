"""Prediction cache keyed by model version and canonical input: TTL + LRU, single flight.

In-process by default; ``RedisCache`` shares entries between replicas. Either way,
concurrent misses for one key inside a process compute once and share the result.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np
import orjson

from mloop._clock import Clock, SystemClock
from mloop.errors import Unavailable
from mloop.flavors import Predictions

__all__ = ["CacheStats", "LocalCache", "PredictionCache", "RedisCache", "cache_key"]

Compute = Callable[[], Awaitable[Predictions]]


def cache_key(model: str, version: int, payload: Any) -> bytes:
    """``model:version:`` plus a digest of the canonical (key-sorted) JSON of the input."""
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return f"{model}:{version}:".encode() + hashlib.blake2b(body, digest_size=16).digest()


class CacheStats:
    """Hit and miss counters."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


class PredictionCache(Protocol):
    """Where predictions are remembered between identical requests."""

    stats: CacheStats

    async def get_or_compute(self, key: bytes, compute: Compute) -> tuple[Predictions, bool]:
        """The cached value or ``compute()``'s (computed once per key); True on a hit."""
        ...


class _SingleFlight:
    def __init__(self) -> None:
        self._inflight: dict[bytes, asyncio.Future[Predictions]] = {}

    async def run(self, key: bytes, compute: Compute) -> tuple[Predictions, bool]:
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending), True
        future: asyncio.Future[Predictions] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await compute()
        except BaseException as exc:
            shared: BaseException = exc
            if isinstance(exc, asyncio.CancelledError):
                # The leader's deadline passed; followers must not look cancelled themselves.
                shared = Unavailable(
                    "The shared computation was cancelled; retry.", retry_after=0.1
                )
            future.set_exception(shared)
            future.exception()  # retrieved: followers re-raise it, nobody else must
            raise
        finally:
            del self._inflight[key]
        future.set_result(value)
        return value, False


class LocalCache:
    """In-process LRU with a TTL per entry."""

    def __init__(self, max_entries: int, ttl_s: float, *, clock: Clock | None = None) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.clock = clock or SystemClock()
        self.stats = CacheStats()
        self._data: OrderedDict[bytes, tuple[float, Predictions]] = OrderedDict()
        self._flight = _SingleFlight()

    def __len__(self) -> int:
        return len(self._data)

    async def get_or_compute(self, key: bytes, compute: Compute) -> tuple[Predictions, bool]:
        """See ``PredictionCache``."""
        now = self.clock.monotonic()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            self._data.move_to_end(key)
            self.stats.hits += 1
            return hit[1], True
        value, shared = await self._flight.run(key, compute)
        if shared:
            self.stats.hits += 1
            return value, True
        self.stats.misses += 1
        self._data[key] = (self.clock.monotonic() + self.ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)
        return value, False


def to_wire(p: Predictions) -> bytes:
    """Predictions as compact JSON (for Redis)."""

    def arr(a: np.ndarray | None) -> Any:
        return None if a is None else a.tolist()

    return orjson.dumps(
        {
            "task": p.task,
            "labels": arr(p.labels),
            "probabilities": arr(p.probabilities),
            "classes": list(p.classes),
            "values": arr(p.values),
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def from_wire(data: bytes) -> Predictions:
    """Inverse of ``to_wire``."""
    d = orjson.loads(data)

    def arr(v: Any, dtype: Any = None) -> np.ndarray | None:
        return None if v is None else np.asarray(v, dtype=dtype)

    return Predictions(
        task=d["task"],
        labels=None if d["labels"] is None else np.asarray(d["labels"], dtype=object),
        probabilities=arr(d["probabilities"], float),
        classes=tuple(d["classes"]),
        values=arr(d["values"], float),
    )


class RedisCache:
    """Cache shared by every replica through Redis (entries expire by TTL; Redis evicts LRU)."""

    def __init__(self, url: str, ttl_s: float, *, prefix: str = "mloop:pred:") -> None:
        from mloop._deps import require

        aioredis = require("redis.asyncio", "the shared prediction cache")
        self.client = aioredis.from_url(url)
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.prefix = prefix.encode()
        self.stats = CacheStats()
        self._flight = _SingleFlight()

    async def get_or_compute(self, key: bytes, compute: Compute) -> tuple[Predictions, bool]:
        """See ``PredictionCache``."""
        full = self.prefix + key
        raw = await self.client.get(full)
        if raw is not None:
            self.stats.hits += 1
            return from_wire(raw), True
        value, shared = await self._flight.run(key, compute)
        if shared:
            self.stats.hits += 1
            return value, True
        self.stats.misses += 1
        await self.client.set(full, to_wire(value), px=self.ttl_ms)
        return value, False

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
