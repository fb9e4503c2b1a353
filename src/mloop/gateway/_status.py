"""The gateway's state as plain data, for ``GET /v1/status`` and the dashboard.

Every number comes from where the gateway already keeps it: quotas from the
limiter, breaker states from the breakers, counts from the Prometheus metrics
that ``/metrics`` exports, jobs from the job store, spend from the ledger through
the same report as ``mloop gateway spend``. Nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from mloop.auth import KeyLimits, Limits, LimitStore
from mloop.gateway._gateway import Gateway
from mloop.gateway._jobs import JobStore
from mloop.gateway._scheduler import PRIORITIES
from mloop.gateway._spend_report import budget_caps, spend_report

__all__ = ["CALL_OUTCOMES", "JOB_STATUSES", "REQUEST_OUTCOMES", "SPEND_PERIODS", "gateway_status"]

log = logging.getLogger(__name__)

JOB_STATUSES = ("queued", "running", "succeeded", "failed")
# Every outcome is listed, with 0 when it has not happened: readers need no defaults.
CALL_OUTCOMES = ("ok", "rate_limited", "transient", "deployment", "user")
REQUEST_OUTCOMES = ("ok", "error", "refused")
SPEND_PERIODS = ("day", "week", "month")


async def gateway_status(
    gw: Gateway, *, jobs: JobStore | None = None, limits: LimitStore | None = None
) -> dict[str, Any]:
    """Per-deployment quota, breaker, 429s and calls; queue; fallbacks; jobs; spend."""
    now = gw.clock.monotonic()
    values = gw.metrics.values
    provider_429 = values(gw.metrics.provider_429)
    calls: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CALL_OUTCOMES, 0))
    for (deployment, outcome), n in values(gw.metrics.calls).items():
        calls[deployment][outcome] = int(n)
    fallbacks = values(gw.metrics.fallbacks)
    served_as_fallback: dict[str, int] = defaultdict(int)
    for (_, deployment), n in fallbacks.items():
        served_as_fallback[deployment] += int(n)
    deployments = []
    for name, dep in gw.config.deployments.items():
        usage = await gw.limiter.usage(name, now)
        deployments.append(
            {
                "name": name,
                "provider": dep.provider,
                "model": dep.model,
                "rpm": dep.rpm,
                "tpm": dep.tpm,
                "quota": usage.to_dict(),
                "breaker": gw.breakers[name].state(now),
                "provider_429": int(provider_429.get((name,), 0)),
                "calls": calls[name],
                "fallbacks": served_as_fallback[name],
            }
        )
    depth = values(gw.metrics.queue_depth)
    requests: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(REQUEST_OUTCOMES, 0))
    for (route, _, outcome), n in values(gw.metrics.requests).items():
        requests[route][outcome] += int(n)
    return {
        "object": "mloop.gateway.status",
        "at": gw.clock.now(),
        "deployments": deployments,
        "queue": {p: int(depth.get((p,), 0)) for p in PRIORITIES},
        "requests": [{"route": route, **n} for route, n in sorted(requests.items())],
        "fallbacks": [
            {"route": route, "deployment": deployment, "count": int(n)}
            for (route, deployment), n in sorted(fallbacks.items())
        ],
        "jobs": await _jobs(jobs),
        "spend": await _spend(gw, limits),
    }


async def _jobs(jobs: JobStore | None) -> dict[str, int] | None:
    if jobs is None:
        return None
    counts = await asyncio.to_thread(jobs.count_by_status)
    return {**{s: 0 for s in JOB_STATUSES}, **counts}


async def _spend(gw: Gateway, limits: LimitStore | None) -> dict[str, Any] | None:
    """Spend per key, team, route and deployment in the current windows (None: no budgets)."""
    if gw.spending is None:
        return None
    at = gw.spending.clock.now()
    out: dict[str, Any] = {}
    await gw.spending.flush()  # uncapped keys' tallies, else up to a second behind
    try:
        keys, teams = await asyncio.to_thread(_limits, limits)
        for period in SPEND_PERIODS:
            rows = await gw.spending.ledger.rows(period=period, at=at)
            out[period] = spend_report(rows, budget_caps(keys, teams, period))
    except Exception as exc:  # the status must still answer when the ledger is down
        log.warning("gateway status: spend ledger unreachable: %r", exc)
        return {"error": f"The spend ledger could not be read: {exc!r}."}
    return out


def _limits(limits: LimitStore | None) -> tuple[list[KeyLimits], dict[str, Limits]]:
    if limits is None:
        return [], {}
    return limits.key_limits(), limits.team_limits()
