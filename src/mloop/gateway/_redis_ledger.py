"""The spend ledger in Redis: one Lua script checks every cap and holds every charge.

Redis runs a script without interleaving another, so the check and the hold of all
of a request's charges are one step for every replica. Each row is a hash
``<prefix>spend:<subject>|<metric>|<period>|<start>`` with ``spent`` and
``reserved`` in whole units (micro-USD, requests, tokens), expiring a day after its
window ends. Each hold is a hash ``<prefix>hold:<id>`` (row key -> amount) scored by
its expiry in the sorted set ``<prefix>holds``; whoever removes it from that set
(a settle or a sweep) releases it, so it is released exactly once. The scripts touch
hold rows they read from the hold, so the ledger needs one Redis, not a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mloop._deps import require
from mloop.gateway._budget import Charge
from mloop.gateway._ledger import Exceeded, LedgerRow, _filtered

__all__ = ["RedisLedger"]

# KEYS: the rows, then the hold hash and the holds set.
# ARGV: per row (amount, cap or -1, expire-at, end); then hold id, hold expiry.
_RESERVE = """
local n = #KEYS - 2
for i = 1, n do
  local cap = tonumber(ARGV[4 * i - 2])
  if cap >= 0 then
    local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
    local used = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
    if used + tonumber(ARGV[4 * i - 3]) > cap then return {i, used} end
  end
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[4 * i - 3])
  redis.call('HSETNX', KEYS[i], 'spent', 0)
  redis.call('HSET', KEYS[i], 'end', ARGV[4 * i])
  redis.call('EXPIREAT', KEYS[i], ARGV[4 * i - 1])
  redis.call('HINCRBY', KEYS[n + 1], KEYS[i], ARGV[4 * i - 3])
end
redis.call('ZADD', KEYS[n + 2], ARGV[4 * n + 2], ARGV[4 * n + 1])
return {0, 0}
"""

# KEYS[1]: the holds set. ARGV[1]: the hold-key prefix; then the ids to release.
_RELEASE = """
local released = 0
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    local h = ARGV[1] .. ARGV[i]
    local items = redis.call('HGETALL', h)
    for j = 1, #items, 2 do
      redis.call('HINCRBY', items[j], 'reserved', -tonumber(items[j + 1]))
    end
    redis.call('DEL', h)
    released = released + 1
  end
end
return released
"""

# KEYS: rows. ARGV: per row (amount used, expire-at, end).
_SPEND = """
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'spent', ARGV[3 * i - 2])
  redis.call('HSETNX', KEYS[i], 'reserved', 0)
  redis.call('HSET', KEYS[i], 'end', ARGV[3 * i])
  redis.call('EXPIREAT', KEYS[i], ARGV[3 * i - 1])
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
        self._release = self._redis.register_script(_RELEASE)
        self._spend = self._redis.register_script(_SPEND)

    def _key(self, c: Charge) -> str:
        return f"{self.prefix}spend:{c.subject}|{c.metric}|{c.period}|{c.start}"

    async def reserve(self, charges: Sequence[Charge], hold_id: str, expires_at: float) -> None:
        if not charges:
            return
        args: list[str] = []
        for c in charges:
            cap = -1 if c.cap is None else c.cap
            args += [str(c.amount), str(cap), str(c.end + _KEEP_AFTER_END_S), str(c.end)]
        args += [hold_id, repr(expires_at)]
        keys = [self._key(c) for c in charges]
        keys += [f"{self.prefix}hold:{hold_id}", f"{self.prefix}holds"]
        reply = await self._reserve(keys=keys, args=args)
        failed = int(reply[0])
        if failed:
            raise Exceeded(charges[failed - 1], int(reply[1]))

    async def settle(
        self, hold_ids: Sequence[str], charges: Sequence[Charge], used: Sequence[int]
    ) -> None:
        if hold_ids:
            await self._release(
                keys=[f"{self.prefix}holds"], args=[f"{self.prefix}hold:", *hold_ids]
            )
        if charges:
            args: list[str] = []
            for c, amount in zip(charges, used, strict=True):
                args += [str(amount), str(c.end + _KEEP_AFTER_END_S), str(c.end)]
            await self._spend(keys=[self._key(c) for c in charges], args=args)

    async def sweep(self, now: float) -> int:
        expired = await self._redis.zrangebyscore(
            f"{self.prefix}holds", "-inf", f"({now!r}", start=0, num=500
        )
        if not expired:
            return 0
        ids = [e.decode() for e in expired]
        released = await self._release(
            keys=[f"{self.prefix}holds"], args=[f"{self.prefix}hold:", *ids]
        )
        return int(released)

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
