"""The spend ledger in Redis: one Lua script checks every cap and holds every charge.

Redis runs a script without interleaving another, so the check and the hold of all
of a request's charges are one step for every replica. Each row is a hash
``<prefix>spend:<subject>|<metric>|<period>|<start>`` with ``spent`` and
``reserved`` in whole units (micro-USD, requests, tokens), expiring a day after its
window ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mloop._deps import require
from mloop.gateway._budget import Charge
from mloop.gateway._ledger import Exceeded, LedgerRow, _filtered

__all__ = ["RedisLedger"]

# ARGV: per key, (amount, cap or -1, expire-at, end)
_RESERVE = """
for i = 1, #KEYS do
  local cap = tonumber(ARGV[4 * i - 2])
  if cap >= 0 then
    local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
    local used = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
    if used + tonumber(ARGV[4 * i - 3]) > cap then return {i, used} end
  end
end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[4 * i - 3])
  redis.call('HSETNX', KEYS[i], 'spent', 0)
  redis.call('HSET', KEYS[i], 'end', ARGV[4 * i])
  redis.call('EXPIREAT', KEYS[i], ARGV[4 * i - 1])
end
return {0, 0}
"""

# ARGV: per key, (minus the held amount, amount used, expire-at, end)
_SETTLE = """
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[4 * i - 3])
  redis.call('HINCRBY', KEYS[i], 'spent', ARGV[4 * i - 2])
  redis.call('HSET', KEYS[i], 'end', ARGV[4 * i])
  redis.call('EXPIREAT', KEYS[i], ARGV[4 * i - 1])
end
return 0
"""

_KEEP_AFTER_END_S = 86400


class RedisLedger:
    """``Ledger`` in Redis, shared by every gateway replica that points at it."""

    def __init__(self, url: str, *, prefix: str = "mloop:gateway:") -> None:
        redis_asyncio = require("redis.asyncio", "a spend ledger shared by gateway replicas")
        self.prefix = prefix
        self._redis: Any = redis_asyncio.Redis.from_url(url)
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)

    def _key(self, c: Charge) -> str:
        return f"{self.prefix}spend:{c.subject}|{c.metric}|{c.period}|{c.start}"

    async def reserve(self, charges: Sequence[Charge]) -> None:
        if not charges:
            return
        args: list[str] = []
        for c in charges:
            cap = -1 if c.cap is None else c.cap
            args += [str(c.amount), str(cap), str(c.end + _KEEP_AFTER_END_S), str(c.end)]
        reply = await self._reserve(keys=[self._key(c) for c in charges], args=args)
        failed = int(reply[0])
        if failed:
            raise Exceeded(charges[failed - 1], int(reply[1]))

    async def settle(self, charges: Sequence[Charge], actual: Sequence[int]) -> None:
        if not charges:
            return
        args: list[str] = []
        for c, used in zip(charges, actual, strict=True):
            args += [str(-c.amount), str(used), str(c.end + _KEEP_AFTER_END_S), str(c.end)]
        await self._settle(keys=[self._key(c) for c in charges], args=args)

    async def rows(self, period: str | None = None, at: float | None = None) -> list[LedgerRow]:
        out = []
        async for raw in self._redis.scan_iter(match=f"{self.prefix}spend:*", count=500):
            key = raw.decode()
            subject, metric, row_period, start = key[len(self.prefix) + 6 :].rsplit("|", 3)
            values = await self._redis.hgetall(key)
            out.append(
                LedgerRow(
                    subject,
                    metric,
                    row_period,
                    int(start),
                    int(values.get(b"end", 0)),
                    int(values.get(b"spent", 0)),
                    int(values.get(b"reserved", 0)),
                )
            )
        return _filtered(out, period, at)

    async def aclose(self) -> None:
        await self._redis.aclose()
