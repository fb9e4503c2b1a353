"""The gateway: route → templated request → scheduled call → fallback, retry, metrics.

Each client request becomes one scheduler ticket that keeps its rank across
attempts (``_attempts``). The request fails only when its deadline (or its
route's timeout) passes, or every deployment in its chain is out. A cacheable
request is answered from the response cache before any quota or budget.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from mloop._clock import Clock, SystemClock
from mloop.errors import ConfigurationError, Overloaded
from mloop.gateway._attempts import Attempts
from mloop.gateway._backends import default_cache, default_limiter
from mloop.gateway._breaker import CircuitBreaker
from mloop.gateway._cache import ResponseCache, cache_key
from mloop.gateway._config import GatewayConfig, Route
from mloop.gateway._limiter import Limiter
from mloop.gateway._metrics import GatewayMetrics
from mloop.gateway._planning import (
    completion_tokens,
    max_cost,
    plan_candidates,
    priority_of,
    wants_cache,
)
from mloop.gateway._prompts import PromptSource
from mloop.gateway._results import ChatResult, StreamResult
from mloop.gateway._scheduler import Candidate, Priority, Scheduler
from mloop.gateway._spending import Hold, Spending
from mloop.gateway._tracing import OFF, GatewayTracer, RequestTrace

__all__ = ["ChatResult", "Gateway", "StreamResult"]

log = logging.getLogger(__name__)


class Gateway:
    """Schedules chat requests onto rate-limited deployments with fallback chains."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        limiter: Limiter | None = None,
        metrics: GatewayMetrics | None = None,
        env: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        spending: Spending | None = None,
        cache: ResponseCache | None = None,
        prompts: PromptSource | None = None,
        tracer: GatewayTracer | None = None,
    ) -> None:
        self.config = config
        self.tracer = tracer
        self.prompts = prompts
        self.clock = clock or SystemClock()
        self.metrics = metrics or GatewayMetrics()
        env = os.environ if env is None else env
        self._keys = {
            name: env.get(dep.api_key_env) if dep.api_key_env else None
            for name, dep in config.deployments.items()
        }
        self.limiter = limiter or default_limiter(config, self.clock)
        self.cache = cache if cache is not None else default_cache(config, self.clock)
        self.breakers = {name: CircuitBreaker() for name in config.deployments}
        self.scheduler = Scheduler(
            config.deployments,
            self.limiter,
            self.breakers,
            self.clock,
            batch_aging_s=config.batch_aging_s,
        )
        self._rng = rng or random.Random()
        # Learned ratio of real prompt tokens to our estimate, per deployment.
        self._token_ratio = {name: 1.0 for name in config.deployments}
        self.attempts = Attempts(
            config,
            scheduler=self.scheduler,
            limiter=self.limiter,
            breakers=self.breakers,
            metrics=self.metrics,
            clock=self.clock,
            keys=self._keys,
            token_ratio=self._token_ratio,
            spending=spending,
            rng=self._rng,
            transport=transport,
        )

    @property
    def spending(self) -> Spending | None:
        """Budgets and spend of API keys, or None when requests are not charged."""
        return self.attempts.spending

    @spending.setter
    def spending(self, spending: Spending | None) -> None:
        self.attempts.spending = spending

    async def aclose(self) -> None:
        """Stop scheduling and close connections."""
        await self.scheduler.aclose()
        await self.attempts.aclose()
        await self.limiter.aclose()
        if self.cache is not None:
            await self.cache.aclose()

    # --- public entry points -----------------------------------------------------------

    async def chat(
        self,
        body: Mapping[str, Any],
        *,
        priority: str = "interactive",
        deadline_s: float | None = None,
        caller: str | None = None,
        ab_key: str | None = None,
    ) -> ChatResult:
        """Answer an OpenAI-style chat request whose ``model`` is a route name.

        ``ab_key``: whose arm to serve when a prompt alias is under live A/B (sticky).
        """
        result = await self._run(body, priority_of(priority), deadline_s, False, caller, ab_key)
        assert isinstance(result, ChatResult)
        return result

    async def stream(
        self,
        body: Mapping[str, Any],
        *,
        priority: str = "interactive",
        deadline_s: float | None = None,
        caller: str | None = None,
        ab_key: str | None = None,
    ) -> StreamResult:
        """Start a streamed answer; fallback happens before the first chunk, never after."""
        result = await self._run(body, priority_of(priority), deadline_s, True, caller, ab_key)
        assert isinstance(result, StreamResult)
        return result

    def models(self) -> list[dict[str, Any]]:
        """The routes, in the shape of OpenAI's ``GET /v1/models``."""
        return [
            {"id": name, "object": "model", "created": 0, "owned_by": "mloop"}
            for name in sorted(self.config.routes)
        ]

    # --- one request: plan, cache, budget, attempts -------------------------------------

    def _candidates(self, route: Route, body: Mapping[str, Any]) -> list[Candidate]:
        """The deployments of the route that can take this request, with token estimates."""
        return plan_candidates(self.config, route, body, self._token_ratio)

    def _resolved(self, route: Route, ab_key: str | None = None) -> Route:
        """The route with its prompt references resolved now (an alias may have moved)."""
        if not route.prompts:
            return route
        if self.prompts is None:
            raise ConfigurationError(
                f"Route {route.name!r} refers to prompts {dict(route.prompts)} but the gateway "
                "has no prompt registry; serve it with settings (mloop gateway serve)."
            )
        # Cached in the registry for a second or two: a dict lookup on the hot path.
        resolved = {
            dep: self.prompts.resolve(ref, ab_key).template for dep, ref in route.prompts.items()
        }
        return replace(route, templates={**route.templates, **resolved})

    async def _admit(
        self, route: Route, body: Mapping[str, Any], caller: str | None
    ) -> tuple[Hold | None, Mapping[str, Any]]:
        if self.spending is None or caller is None:
            return None, body
        completion = completion_tokens(self.config, body)
        usd, tokens = max_cost(self.config, route, body, completion)
        hold = await self.spending.admit(caller, route.name, usd, tokens)
        if hold.charges and not (body.get("max_tokens") or body.get("max_completion_tokens")):
            # The hold covers this many completion tokens; the provider must not send more.
            body = {**body, "max_tokens": completion}
        return hold, body

    async def _run(
        self,
        body: Mapping[str, Any],
        priority: Priority,
        deadline_s: float | None,
        stream: bool,
        caller: str | None = None,
        ab_key: str | None = None,
    ) -> ChatResult | StreamResult:
        trace = OFF
        if self.tracer is not None:
            trace = self.tracer.request(str(body.get("model", "")), priority, stream)
        try:
            result = await self._serve(body, priority, deadline_s, stream, caller, trace, ab_key)
        except BaseException as exc:
            trace.end(exc)
            raise
        trace.set(deployment=result.deployment, attempts=result.attempts)
        if isinstance(result, StreamResult):
            result.chunks = trace.until_done(result.chunks)  # the request ends with its stream
        else:
            trace.end()
        return result

    async def _serve(
        self,
        body: Mapping[str, Any],
        priority: Priority,
        deadline_s: float | None,
        stream: bool,
        caller: str | None,
        trace: RequestTrace,
        ab_key: str | None,
    ) -> ChatResult | StreamResult:
        route = self._resolved(self.config.route(str(body.get("model", ""))), ab_key)
        budget = route.timeout_s if deadline_s is None else min(deadline_s, route.timeout_s)
        candidates = self._candidates(route, body)
        keys: list[str] = []
        if self.cache is not None and not stream and wants_cache(body):
            if self.spending is not None and caller is not None:
                await self.spending.check_route(caller, route.name)  # even for a hit
            keys = [
                cache_key(route.name, d, route.template_for(d).version, caller or "", body)
                for d in route.chain
            ]
            with trace.stage("cache"):
                hit = await self._cached(route, keys)
            trace.set(cache="miss" if hit is None else "hit")
            if hit is not None:
                return hit  # before any quota or budget: a hit costs nothing
        if "cache" in body:
            body = {k: v for k, v in body.items() if k != "cache"}  # not a provider field
        hold, body = await self._admit(route, body, caller)
        outcome = "error"
        settle_now = True
        try:
            ticket = self.scheduler.ticket(candidates, priority, budget)
            ticket.completion_tokens = completion_tokens(self.config, body)
            ticket.hold = hold
            if deadline_s is not None:
                self.scheduler.check_deadline(ticket)
            result = await self.attempts.run(route, body, ticket, priority, stream, trace)
            outcome = "ok"
            if keys and isinstance(result, ChatResult):
                await self._remember(keys[route.chain.index(result.deployment)], result)
            settle_now = not stream  # a stream settles when its last chunk is out
            return result
        except Overloaded:
            outcome = "refused"
            raise
        finally:
            self.metrics.requests.labels(route.name, priority, outcome).inc()
            if hold is not None and settle_now and self.spending is not None:
                await asyncio.shield(self.spending.settle(hold))

    async def _cached(self, route: Route, keys: list[str]) -> ChatResult | None:
        assert self.cache is not None
        try:
            hit = await self.cache.get(keys)
        except Exception as exc:  # a cache that is down is a miss, never a failed request
            log.warning("response cache: lookup failed: %r", exc)
            hit = None
        self.metrics.cache.labels(route.name, "miss" if hit is None else "hit").inc()
        if hit is None:
            return None
        name = route.chain[hit[0]]
        return ChatResult(hit[1], name, route.template_for(name).version, 0, 0.0, cached=True)

    async def _remember(self, key: str, result: ChatResult) -> None:
        assert self.cache is not None
        try:
            await self.cache.put(key, result.response)
        except Exception as exc:
            log.warning("response cache: store failed: %r", exc)
