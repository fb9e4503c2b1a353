"""Global quotas for several gateway replicas: the same buckets as ``_quota``, in Redis.

Every read-modify-write is one Lua script, so replicas never race. Time is the
Redis server's clock (``TIME``), so replicas on different machines agree on it.
Concurrency slots are leases in a sorted set scored by expiry: a replica that
dies holding slots loses them after ``lease_ttl_s`` instead of leaking them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mloop._deps import require
from mloop.gateway._config import Deployment
from mloop.gateway._limiter import Admission, Lease
from mloop.gateway._quota import REQUEST_RESERVE, TOKEN_RESERVE, Observation, QuotaUse

__all__ = ["RedisLimiter"]

_REFILL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local h = KEYS[1]
if redis.call('EXISTS', h) == 0 then
  redis.call('HSET', h, 'rl', ARGV[1], 'rc', ARGV[1], 'rr', ARGV[2], 'tl', ARGV[3],
             'tc', ARGV[3], 'tr', ARGV[4], 'ts', now, 'bu', 0, 'sr', 0, 'st', 0,
             'sq', 0, 'as', 0)
end
local v = redis.call('HMGET', h, 'rl', 'rc', 'rr', 'tl', 'tc', 'tr', 'ts', 'bu', 'sr', 'st')
local rl, rc, rr = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
local tl, tc, tr = tonumber(v[4]), tonumber(v[5]), tonumber(v[6])
local ts, bu, sr, st = tonumber(v[7]), tonumber(v[8]), tonumber(v[9]), tonumber(v[10])
local dt = math.max(0, now - ts)
if rc > 0 then rl = math.min(rc, rl + dt * rr) end
if tc > 0 then tl = math.min(tc, tl + dt * tr) end
"""

_ACQUIRE = (
    _REFILL
    + """
redis.call('HSET', h, 'rl', tostring(rl), 'tl', tostring(tl), 'ts', tostring(now))
if now < bu then return {0, tostring(bu - now), 'retry_after'} end
local conc = tonumber(ARGV[5])
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= conc then return {0, '-1', 'concurrency'} end
end
local tokens = tonumber(ARGV[6])
local wr, wt = 0, 0
local need_r = 1
if rc >= 10 then need_r = 1 + tonumber(ARGV[9]) end
if rc > 0 and rl < need_r then
  if rr > 0 then wr = (need_r - rl) / rr else wr = 1e9 end
end
if tc > 0 then
  local need = math.min(tokens + tc * tonumber(ARGV[10]), tc)
  if tl < need then
    if tr > 0 then wt = (need - tl) / tr else wt = 1e9 end
  end
end
if wr > 0 or wt > 0 then
  if wr >= wt then return {0, tostring(wr), 'requests'} end
  return {0, tostring(wt), 'tokens'}
end
if rc > 0 then rl = rl - 1 end
if tc > 0 then tl = tl - tokens end
local sq = redis.call('HINCRBY', h, 'sq', 1)
redis.call('HSET', h, 'rl', tostring(rl), 'tl', tostring(tl), 'sr', tostring(sr + 1),
           'st', tostring(st + tokens))
local expires = now + tonumber(ARGV[8])
local lease = sq .. '|' .. now
if conc > 0 then redis.call('ZADD', KEYS[2], expires, lease) end
redis.call('PEXPIRE', h, 86400000)
return {1, tostring(sq), tostring(sr), tostring(st), lease}
"""
)

_OBSERVE = (
    _REFILL
    + """
local function num(x) if x == '' then return nil end return tonumber(x) end
local window = tonumber(ARGV[5])
local function anchor(level, cap, rate, limit, remaining, reset, sent_after, age)
  if limit and limit > 0 then
    rate = limit / window
    if cap <= 0 then cap = limit; level = limit end
  end
  if remaining == nil or cap <= 0 then return level, cap, rate end
  if reset and rate > 0 then
    cap = math.max(1, math.min(limit or 1e18, remaining + reset * rate))
  end
  local provider_now = math.min(cap, remaining + age * rate)
  level = math.min(level, provider_now - math.max(0, sent_after))
  return level, cap, rate
end
local seq, before_r, before_t = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local charged = tonumber(ARGV[15])
local limited = ARGV[17] == '1'
local own_r, own_t = 1, charged
if limited then
  -- Rejected calls cost nothing at the provider: stop counting this one.
  sr = sr - 1; st = st - charged; own_r = 0; own_t = 0
  if tc > 0 then tl = math.min(tc, tl + charged) end
end
-- The provider measured "remaining" when it admitted the call; it has refilled since.
local age = math.max(0, now - tonumber(ARGV[19]) - tonumber(ARGV[20]))
local anchored = tonumber(redis.call('HGET', h, 'as') or '0')
if seq > anchored then
  redis.call('HSET', h, 'as', tostring(seq))
  rl, rc, rr = anchor(rl, rc, rr, num(ARGV[6]), num(ARGV[7]), num(ARGV[8]),
                      sr - before_r - own_r, age)
  tl, tc, tr = anchor(tl, tc, tr, num(ARGV[9]), num(ARGV[10]), num(ARGV[11]),
                      st - before_t - own_t, age)
end
local used = num(ARGV[16])
if num(ARGV[10]) == nil and used ~= nil and tc > 0 then
  tl = math.min(tc, tl + charged - used)
end
if limited then
  rl = math.min(rl, 0)
  local wait = num(ARGV[18]) or 1
  bu = math.max(bu, now + wait)
end
redis.call('HSET', h, 'rl', tostring(rl), 'rc', tostring(rc), 'rr', tostring(rr),
           'tl', tostring(tl), 'tc', tostring(tc), 'tr', tostring(tr), 'ts', tostring(now),
           'bu', tostring(bu), 'sr', tostring(sr), 'st', tostring(st))
return 1
"""
)

_USAGE = (
    _REFILL
    + """
local inflight = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
return {tostring(rl), tostring(rc), tostring(tl), tostring(tc), tostring(math.max(0, bu - now)),
        inflight}
"""
)


def _arg(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class RedisLimiter:
    """Quotas shared by every gateway replica that uses the same Redis and key prefix."""

    def __init__(
        self,
        deployments: Mapping[str, Deployment],
        url: str,
        *,
        prefix: str = "mloop:gateway:",
        lease_ttl_s: float = 300.0,
    ) -> None:
        redis_asyncio = require("redis.asyncio", "global rate limits across gateway replicas")
        self.deployments = deployments
        self.prefix = prefix
        self.lease_ttl_s = lease_ttl_s
        self._redis: Any = redis_asyncio.Redis.from_url(url)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._observe = self._redis.register_script(_OBSERVE)
        self._usage = self._redis.register_script(_USAGE)

    def _keys(self, name: str) -> list[str]:
        base = f"{self.prefix}quota:{name}"
        return [base, f"{base}:leases"]

    def _init_args(self, dep: Deployment) -> list[str]:
        return [
            repr(dep.request_capacity),
            repr(dep.rpm / dep.window_s),
            repr(dep.token_capacity),
            repr(dep.tpm / dep.window_s),
        ]

    async def try_acquire(self, deployment: str, tokens: int, now: float) -> Admission:
        dep = self.deployments[deployment]
        args = [
            *self._init_args(dep),
            str(dep.max_concurrency),
            str(tokens),
            "",
            repr(self.lease_ttl_s),
            repr(REQUEST_RESERVE),
            repr(TOKEN_RESERVE),
        ]
        reply = await self._acquire(keys=self._keys(deployment), args=args)
        if int(reply[0]) != 1:
            wait = float(reply[1])
            return Admission(None, float("inf") if wait < 0 else wait, reply[2].decode())
        mark = (int(float(reply[1])), int(float(reply[2])), int(float(reply[3])))
        return Admission(Lease(deployment, tokens, mark, reply[4].decode()))

    async def release(self, lease: Lease, now: float) -> None:
        if self.deployments[lease.deployment].max_concurrency:
            await self._redis.zrem(self._keys(lease.deployment)[1], lease.lease_id)

    async def observe(self, lease: Lease, obs: Observation, now: float) -> None:
        dep = self.deployments[lease.deployment]
        args = [
            *self._init_args(dep),
            repr(dep.window_s),
            _arg(obs.limit_requests),
            _arg(obs.remaining_requests),
            _arg(obs.reset_requests_s),
            _arg(obs.limit_tokens),
            _arg(obs.remaining_tokens),
            _arg(obs.reset_tokens_s),
            str(lease.mark[0]),
            str(lease.mark[1]),
            str(lease.mark[2]),
            str(lease.tokens),
            _arg(obs.used_tokens),
            "1" if obs.rate_limited else "0",
            _arg(obs.retry_after_s),
            lease.lease_id.split("|")[1],  # when the call was admitted (Redis time)
            repr(obs.send_delay_s),
        ]
        await self._observe(keys=self._keys(lease.deployment)[:1], args=args)

    async def usage(self, deployment: str, now: float) -> QuotaUse:
        dep = self.deployments[deployment]
        reply = await self._usage(keys=self._keys(deployment), args=self._init_args(dep))
        rl, rc, tl, tc, blocked = (float(x) for x in reply[:5])
        return QuotaUse(rl, rc, tl, tc, int(reply[5]), dep.max_concurrency, blocked)

    async def aclose(self) -> None:
        await self._redis.aclose()
