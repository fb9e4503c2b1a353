"""The exact response cache: the same request to the same deployment and template answers
from memory or Redis, at no cost to quotas or budgets.

Only deterministic requests are cached: ``temperature`` 0, or ``"cache": true`` from a
caller who accepts a repeated answer (``"cache": false`` never caches). The key is
the route, the deployment that answered, its template version, the caller's API key
(one key never sees another's answers) and the canonical request: every field but
``model``, ``stream`` and ``cache``, as sorted compact JSON, hashed. There is no
semantic cache: paraphrase matching serves wrong answers (see the issue's peers).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

from mloop._clock import Clock, SystemClock
from mloop._deps import require

__all__ = ["MemoryCache", "RedisCache", "ResponseCache", "cache_key", "cacheable"]

_NOT_PART_OF_THE_ANSWER = ("model", "stream", "stream_options", "cache")


def cacheable(body: Mapping[str, Any]) -> bool:
    """True when a request asks for (``cache: true``) or allows (temperature 0) a cached answer."""
    flag = body.get("cache")
    if flag is not None:
        return flag is True
    temperature = body.get("temperature")
    return (
        not isinstance(temperature, bool)
        and isinstance(temperature, int | float)
        and temperature == 0
        and int(body.get("n") or 1) == 1
    )


def cache_key(
    route: str, deployment: str, template_version: str, caller: str, body: Mapping[str, Any]
) -> str:
    """The cache key of one request's answer from one deployment."""
    request = {k: v for k, v in body.items() if k not in _NOT_PART_OF_THE_ANSWER}
    canonical = json.dumps(
        [route, deployment, template_version, caller, request],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache(Protocol):
    """Where cached answers live."""

    async def get(self, keys: list[str]) -> tuple[int, dict[str, Any]] | None:
        """The first of ``keys`` that holds an answer: (its index, the answer)."""
        ...

    async def put(self, key: str, response: Mapping[str, Any]) -> None:
        """Keep ``response`` under ``key`` for the cache's TTL."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryCache:
    """An LRU cache in this process with a TTL per entry."""

    def __init__(
        self, *, ttl_s: float = 3600.0, max_entries: int = 10_000, clock: Clock | None = None
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock or SystemClock()
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    async def get(self, keys: list[str]) -> tuple[int, dict[str, Any]] | None:
        now = self.clock.monotonic()
        with self._lock:
            for i, key in enumerate(keys):
                hit = self._entries.get(key)
                if hit is None:
                    continue
                if hit[0] <= now:
                    del self._entries[key]
                    continue
                self._entries.move_to_end(key)
                return i, json.loads(hit[1])  # a copy: callers may change what they get
        return None

    async def put(self, key: str, response: Mapping[str, Any]) -> None:
        data = json.dumps(response).encode()
        with self._lock:
            self._entries[key] = (self.clock.monotonic() + self.ttl_s, data)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def aclose(self) -> None:
        return None


class RedisCache:
    """Cached answers in Redis, shared by every replica; Redis expires them."""

    def __init__(self, url: str, *, prefix: str = "mloop:gateway:", ttl_s: float = 3600.0) -> None:
        redis_asyncio = require("redis.asyncio", "a response cache shared by gateway replicas")
        self.prefix = f"{prefix}cache:"
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._redis: Any = redis_asyncio.Redis.from_url(url)

    async def get(self, keys: list[str]) -> tuple[int, dict[str, Any]] | None:
        if not keys:
            return None
        values = await self._redis.mget([self.prefix + k for k in keys])
        for i, value in enumerate(values):
            if value is not None:
                return i, json.loads(value)
        return None

    async def put(self, key: str, response: Mapping[str, Any]) -> None:
        await self._redis.set(self.prefix + key, json.dumps(response), px=self.ttl_ms)

    async def aclose(self) -> None:
        await self._redis.aclose()
