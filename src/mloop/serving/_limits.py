"""Per-key rate limits: token buckets, in-process or shared through Redis.

The bucket arithmetic is one pure function (``take``) so the local limiter, the
Redis script and the tests agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mloop._clock import Clock, SystemClock
from mloop.errors import Overloaded

__all__ = ["LocalRateLimiter", "RateLimiter", "RedisRateLimiter", "take"]


@dataclass(frozen=True)
class Bucket:
    """Tokens left at time ``at``."""

    tokens: float
    at: float


def take(bucket: Bucket | None, now: float, rate: float, burst: float) -> tuple[Bucket, float]:
    """Try to take one token; return the new bucket and 0, or the seconds to wait."""
    tokens = burst if bucket is None else min(burst, bucket.tokens + (now - bucket.at) * rate)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), 0.0
    return Bucket(tokens, now), (1.0 - tokens) / rate


class RateLimiter(Protocol):
    """Admits or refuses one request for a key."""

    async def acquire(self, key: str) -> None:
        """Return if ``key`` may proceed now, else raise ``Overloaded`` with Retry-After."""
        ...


def _refuse(key: str, rate: float, wait: float) -> Overloaded:
    return Overloaded(
        f"Rate limit of {rate:g} requests/s reached for key {key!r}; retry after {wait:.2f} s.",
        retry_after=wait,
        limit_per_s=rate,
    )


class LocalRateLimiter:
    """Token buckets in this process (one replica)."""

    def __init__(self, rate: float, burst: float, *, clock: Clock | None = None) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.clock = clock or SystemClock()
        self._buckets: dict[str, Bucket] = {}

    async def acquire(self, key: str) -> None:
        """See ``RateLimiter``."""
        bucket, wait = take(self._buckets.get(key), self.clock.monotonic(), self.rate, self.burst)
        self._buckets[key] = bucket
        if wait > 0:
            raise _refuse(key, self.rate, wait)


# Same arithmetic as ``take``, atomic in Redis; time comes from the Redis server so
# replicas with skewed clocks share one bucket correctly.
_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + (now - tonumber(state[2])) * rate)
end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """Token buckets shared by every replica through one Redis script."""

    def __init__(self, url: str, rate: float, burst: float, *, prefix: str = "mloop:rl:") -> None:
        from mloop._deps import require

        aioredis = require("redis.asyncio", "shared rate limits")
        self.client = aioredis.from_url(url)
        self.rate = rate
        self.burst = max(1.0, burst)
        self.prefix = prefix
        self._script = self.client.register_script(_SCRIPT)

    async def acquire(self, key: str) -> None:
        """See ``RateLimiter``."""
        wait = float(await self._script(keys=[self.prefix + key], args=[self.rate, self.burst]))
        if wait > 0:
            raise _refuse(key, self.rate, wait)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
