"""The gateway: route → templated request → scheduled call → fallback, retry, metrics.

Each client request becomes one scheduler ticket that keeps its rank across
attempts. An attempt that fails with 429 re-anchors the deployment's quota and
queues again; 5xx, timeouts and broken connections count against the
deployment's circuit breaker and keep the request off that deployment for a
jittered backoff; an answer that fails the route's JSON schema, or a provider
that refuses our key, takes the deployment out of this request's chain. The
request fails only when its deadline (or its route's timeout) passes, or every
deployment in its chain is out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from mloop._clock import Clock, SystemClock
from mloop.errors import (
    ConfigurationError,
    InvalidInput,
    Overloaded,
    Unavailable,
)
from mloop.gateway._adapters import adapter_for
from mloop.gateway._backoff import backoff_delay
from mloop.gateway._breaker import CircuitBreaker
from mloop.gateway._budget import prompt_token_bound
from mloop.gateway._cache import MemoryCache, RedisCache, ResponseCache, cache_key, cacheable
from mloop.gateway._config import Deployment, GatewayConfig, Route
from mloop.gateway._failures import Failure, classify_status
from mloop.gateway._headers import parse_observation
from mloop.gateway._limiter import Limiter, LocalLimiter
from mloop.gateway._metrics import GatewayMetrics
from mloop.gateway._pool import ShardedClient
from mloop.gateway._prompts import PromptSource
from mloop.gateway._scheduler import PRIORITIES, Candidate, Grant, Priority, Scheduler, Ticket
from mloop.gateway._schema import schema_errors
from mloop.gateway._spending import Hold, Spending
from mloop.gateway._tokens import estimate_prompt_tokens, text_tokens

__all__ = ["ChatResult", "Gateway", "StreamResult"]

log = logging.getLogger(__name__)

_POOL = 64  # connections per deployment without a max_concurrency


@dataclass(frozen=True)
class ChatResult:
    """One answered request: the OpenAI-shaped response and how it was served."""

    response: dict[str, Any]
    deployment: str
    template_version: str
    attempts: int
    waited_s: float
    cached: bool = False

    def headers(self) -> dict[str, str]:
        """Response headers telling the client which deployment and template answered."""
        return {
            "x-mloop-deployment": self.deployment,
            "x-mloop-template-version": self.template_version,
            "x-mloop-attempts": str(self.attempts),
            "x-mloop-cache": "hit" if self.cached else "miss",
        }


@dataclass
class StreamResult:
    """A started stream: OpenAI chunk dicts, and how the request was placed."""

    chunks: AsyncIterator[dict[str, Any]]
    deployment: str
    template_version: str
    attempts: int
    meta: dict[str, Any] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        """Response headers telling the client which deployment and template answered."""
        return {
            "x-mloop-deployment": self.deployment,
            "x-mloop-template-version": self.template_version,
            "x-mloop-attempts": str(self.attempts),
        }


def _priority(value: str) -> Priority:
    if value not in PRIORITIES:
        raise InvalidInput(
            f"Priority {value!r} is not known; use one of {list(PRIORITIES)}.", param="priority"
        )
    return value  # type: ignore[return-value]


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
    ) -> None:
        self.config = config
        self.spending = spending
        self.prompts = prompts
        self.clock = clock or SystemClock()
        self.metrics = metrics or GatewayMetrics()
        env = os.environ if env is None else env
        self._keys = {
            name: env.get(dep.api_key_env) if dep.api_key_env else None
            for name, dep in config.deployments.items()
        }
        self.limiter = limiter or _default_limiter(config, self.clock)
        self.cache = cache if cache is not None else _default_cache(config, self.clock)
        self.breakers = {name: CircuitBreaker() for name in config.deployments}
        self.scheduler = Scheduler(
            config.deployments,
            self.limiter,
            self.breakers,
            self.clock,
            batch_aging_s=config.batch_aging_s,
        )
        self._http = {
            name: ShardedClient(
                dep.max_concurrency or _POOL, httpx.Timeout(dep.timeout_s, connect=5.0), transport
            )
            for name, dep in config.deployments.items()
        }
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        # Learned ratio of real prompt tokens to our estimate, per deployment.
        self._token_ratio = {name: 1.0 for name in config.deployments}

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop scheduling and close connections."""
        await self.scheduler.aclose()
        for http in self._http.values():
            await http.aclose()
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
        result = await self._run(body, _priority(priority), deadline_s, False, caller, ab_key)
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
        result = await self._run(body, _priority(priority), deadline_s, True, caller, ab_key)
        assert isinstance(result, StreamResult)
        return result

    def models(self) -> list[dict[str, Any]]:
        """The routes, in the shape of OpenAI's ``GET /v1/models``."""
        return [
            {"id": name, "object": "model", "created": 0, "owned_by": "mloop"}
            for name in sorted(self.config.routes)
        ]

    # --- the attempt loop ---------------------------------------------------------------

    def _completion_tokens(self, body: Mapping[str, Any]) -> int:
        completion = body.get("max_tokens") or body.get("max_completion_tokens")
        if completion is None:
            return self.config.default_completion_tokens
        if isinstance(completion, bool) or not isinstance(completion, int) or completion <= 0:
            raise InvalidInput(
                f"max_tokens={str(completion)[:40]!r} must be a whole number of tokens above 0.",
                param="max_tokens",
            )
        limit = self.config.max_completion_tokens
        if completion > limit:
            # Charged to the quota, it would put the deployment in token debt for as long
            # as the provider takes to refill it (years, for 10**12): refused, not charged.
            raise InvalidInput(
                f"max_tokens={completion} is more than this gateway allows ({limit}); ask "
                "for fewer, or raise [scheduler] max_completion_tokens.",
                param="max_tokens",
            )
        return completion

    def _candidates(self, route: Route, body: Mapping[str, Any]) -> list[Candidate]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidInput("The request needs a non-empty 'messages' list.", param="messages")
        for i, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("role"), str)
                or not (content is None or isinstance(content, str | list))
            ):
                raise InvalidInput(
                    f"messages[{i}] must be an object with a 'role' (text) and a 'content' "
                    f'(text or a list of parts), e.g. {{"role": "user", "content": "Hi"}}; '
                    f"got {str(message)[:60]!r}.",
                    param=f"messages[{i}]",
                )
        out = []
        too_big: list[str] = []
        completion = self._completion_tokens(body)
        for name in route.chain:
            rendered = route.template_for(name).render(messages)
            prompt = estimate_prompt_tokens(rendered) * self._token_ratio[name]
            tokens = int(prompt + 0.999) + completion
            capacity = self.config.deployments[name].token_capacity
            if capacity and tokens > capacity:
                too_big.append(f"{name} ({capacity:.0f})")  # it would only ever run in debt
                continue
            out.append(Candidate(name, tokens))
        if not out:
            raise InvalidInput(
                f"The request needs about {tokens} tokens, more than any deployment of route "
                f"{route.name!r} lets through at once: {', '.join(too_big)}. Lower max_tokens "
                "or shorten the messages.",
                param="max_tokens",
            )
        return out

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

    def _max_cost(
        self, route: Route, body: Mapping[str, Any], completion: int
    ) -> tuple[float, int]:
        """The most a request can cost (USD) and use (tokens) on any deployment of its route."""
        usd, tokens = 0.0, 0
        for name in route.chain:
            dep = self.config.deployments[name]
            prompt = prompt_token_bound(route.template_for(name).render(body["messages"]))
            usd = max(usd, dep.cost(prompt, completion))
            tokens = max(tokens, prompt + completion)
        return usd, tokens

    async def _admit(
        self, route: Route, body: Mapping[str, Any], caller: str | None
    ) -> tuple[Hold | None, Mapping[str, Any]]:
        if self.spending is None or caller is None:
            return None, body
        completion = self._completion_tokens(body)
        usd, tokens = self._max_cost(route, body, completion)
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
        route = self._resolved(self.config.route(str(body.get("model", ""))), ab_key)
        budget = route.timeout_s if deadline_s is None else min(deadline_s, route.timeout_s)
        candidates = self._candidates(route, body)
        keys: list[str] = []
        if self.cache is not None and not stream and _wants_cache(body):
            if self.spending is not None and caller is not None:
                await self.spending.check_route(caller, route.name)  # even for a hit
            keys = [
                cache_key(route.name, d, route.template_for(d).version, caller or "", body)
                for d in route.chain
            ]
            hit = await self._cached(route, keys)
            if hit is not None:
                return hit  # before any quota or budget: a hit costs nothing
        if "cache" in body:
            body = {k: v for k, v in body.items() if k != "cache"}  # not a provider field
        hold, body = await self._admit(route, body, caller)
        outcome = "error"
        settle_now = True
        try:
            ticket = self.scheduler.ticket(candidates, priority, budget)
            ticket.completion_tokens = self._completion_tokens(body)
            ticket.hold = hold
            if deadline_s is not None:
                self.scheduler.check_deadline(ticket)
            result = await self._attempts(route, body, ticket, priority, stream)
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

    async def _attempts(
        self,
        route: Route,
        body: Mapping[str, Any],
        ticket: Ticket,
        priority: Priority,
        stream: bool,
    ) -> ChatResult | StreamResult:
        depth = self.metrics.queue_depth.labels(priority)
        while True:
            if ticket.hold is not None and ticket.hold.needs_top_up:
                assert self.spending is not None
                await self.spending.top_up(ticket.hold)
            depth.inc()
            try:
                grant = await self.scheduler.acquire(ticket)
            finally:
                depth.dec()
            self.metrics.queue_wait.labels(priority).observe(grant.waited_s)
            ticket.attempts += 1
            try:
                return await self._call(route, body, ticket, grant, stream)
            except Failure as failure:
                self._on_failure(route, ticket, grant, failure)

    def _on_failure(self, route: Route, ticket: Ticket, grant: Grant, failure: Failure) -> None:
        name = grant.deployment
        now = self.clock.monotonic()
        ticket.last_error = failure.error
        self.metrics.calls.labels(name, failure.kind).inc()
        if failure.kind == "user":
            raise failure.error
        if failure.kind == "deployment":
            ticket.excluded.add(name)
        elif failure.kind == "transient":
            ticket.avoid_until[name] = now + backoff_delay(
                ticket.attempts, retry_after_s=failure.retry_after, rng=self._rng
            )
        if ticket.attempts >= route.max_attempts:
            raise failure.error
        if all(c.deployment in ticket.excluded for c in ticket.candidates):
            raise failure.error

    async def _call(
        self, route: Route, body: Mapping[str, Any], ticket: Ticket, grant: Grant, stream: bool
    ) -> ChatResult | StreamResult:
        dep = self.config.deployments[grant.deployment]
        template = route.template_for(dep.name)
        payload = {**body, "messages": template.render(body["messages"]), "stream": stream}
        if not stream:
            payload.pop("stream_options", None)
        elif ticket.hold is not None and dep.provider == "openai":
            # A budgeted stream settles on the provider's own count, not our estimate.
            payload["stream_options"] = {
                **(body.get("stream_options") or {}),
                "include_usage": True,
            }
        adapter = adapter_for(dep)
        request = adapter.build(dep, payload, self._keys[dep.name])
        started = self.clock.monotonic()
        released = False
        sent = [started]

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            # When the bytes leave (after any wait for a pooled connection).
            if event == "http11.send_request_headers.started":
                sent[0] = self.clock.monotonic()

        request.extensions["trace"] = trace

        async def release(used_tokens: int | None, headers: Mapping[str, str], status: int) -> None:
            nonlocal released
            if released:
                return
            released = True
            now = self.clock.monotonic()
            obs = replace(
                parse_observation(
                    headers, status=status, now_wall=self.clock.now(), used_tokens=used_tokens
                ),
                send_delay_s=max(0.0, sent[0] - started),
            )
            await self.limiter.observe(grant.lease, obs, now)
            self.scheduler.forget_wait(dep.name)
            await self.scheduler.release(grant.lease, now - started if status < 400 else None)
            self.metrics.latency.labels(dep.name).observe(now - started)

        try:
            response, shard = await self._http[dep.name].send(request, stream=stream)
        except asyncio.CancelledError:
            # The caller went away mid-call: give the slot back, or it leaks.
            self._background(release(None, {}, 499))
            raise
        except httpx.HTTPError as exc:
            await release(None, {}, 599)
            self.breakers[dep.name].on_failure(self.clock.monotonic())
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
            raise Failure(
                Unavailable(
                    f"Deployment {dep.name!r} ({dep.base_url}) {kind}: {exc!r}.",
                    deployment=dep.name,
                ),
                kind="transient",
            ) from exc
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            self._http[dep.name].done(shard)
            await release(None, response.headers, response.status_code)
            raise self._classify(dep, response)
        if stream:
            return self._start_stream(
                route, dep, template.version, ticket, grant, response, release, shard
            )
        self._http[dep.name].done(shard)
        try:
            data = adapter.parse(dep, response.json())
        except ValueError as exc:
            await release(None, response.headers, 200)
            self.breakers[dep.name].on_failure(self.clock.monotonic())
            raise Failure(
                Unavailable(f"Deployment {dep.name!r} answered with invalid JSON: {exc}."),
                kind="transient",
            ) from exc
        usage = data.get("usage") or {}
        await release(int(usage.get("total_tokens", 0)) or None, response.headers, 200)
        self.breakers[dep.name].on_success()
        self._account(dep, ticket, usage)
        if route.output_schema is not None:
            self._validate(route, dep, data)
        if dep.name != route.chain[0]:
            self.metrics.fallbacks.labels(route.name, dep.name).inc()
        data.setdefault("model", dep.model)
        return ChatResult(data, dep.name, template.version, ticket.attempts, grant.waited_s)

    def _start_stream(
        self,
        route: Route,
        dep: Deployment,
        version: str,
        ticket: Ticket,
        grant: Grant,
        response: httpx.Response,
        release: Any,
        shard: int,
    ) -> StreamResult:
        self.breakers[dep.name].on_success()
        if dep.name != route.chain[0]:
            self.metrics.fallbacks.labels(route.name, dep.name).inc()
        adapter = adapter_for(dep)

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            text: list[str] = []
            usage: Mapping[str, Any] = {}
            try:
                async for chunk in adapter.chunks(dep, response):
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices", []):
                        text.append(str((choice.get("delta") or {}).get("content") or ""))
                    yield chunk
            finally:
                await response.aclose()
                self._http[dep.name].done(shard)
                if not usage:  # the provider did not count: our estimates stand in
                    prompt = next(c.tokens for c in ticket.candidates if c.deployment == dep.name)
                    completion = text_tokens("".join(text))
                    usage = {
                        "prompt_tokens": max(0, prompt - ticket.completion_tokens),
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                    }
                await release(int(usage.get("total_tokens", 0)) or None, response.headers, 200)
                self._account(dep, ticket, usage)
                if ticket.hold is not None and self.spending is not None:
                    await self.spending.settle(ticket.hold)

        return StreamResult(chunks(), dep.name, version, ticket.attempts)

    def _account(self, dep: Deployment, ticket: Ticket, usage: Mapping[str, Any]) -> None:
        prompt = int(usage.get("prompt_tokens", 0) or 0)
        completion = int(usage.get("completion_tokens", 0) or 0)
        self.metrics.calls.labels(dep.name, "ok").inc()
        self.metrics.tokens.labels(dep.name, "prompt").inc(prompt)
        self.metrics.tokens.labels(dep.name, "completion").inc(completion)
        self.metrics.cost.labels(dep.name).inc(dep.cost(prompt, completion))
        if ticket.hold is not None and self.spending is not None:
            self.spending.bill(ticket.hold, dep, usage)
        if prompt:
            estimate = next(c.tokens for c in ticket.candidates if c.deployment == dep.name)
            # Learn how far our prompt heuristic is off for this deployment's tokenizer.
            est_prompt = max(1.0, estimate - ticket.completion_tokens)
            ratio = self._token_ratio[dep.name] * prompt / est_prompt
            self._token_ratio[dep.name] = min(
                4.0, max(0.25, 0.8 * self._token_ratio[dep.name] + 0.2 * ratio)
            )

    def _validate(self, route: Route, dep: Deployment, data: Mapping[str, Any]) -> None:
        assert route.output_schema is not None
        try:
            content = data["choices"][0]["message"]["content"]
            value = json.loads(content)
        except (KeyError, IndexError, TypeError, ValueError):
            problems = ["the answer is not a JSON document"]
        else:
            problems = schema_errors(value, route.output_schema)
        if problems:
            raise Failure(
                Unavailable(
                    f"Deployment {dep.name!r} answered route {route.name!r} with output that "
                    f"fails the route's schema: {'; '.join(problems[:3])}.",
                    deployment=dep.name,
                ),
                kind="deployment",
            )

    def _classify(self, dep: Deployment, response: httpx.Response) -> Failure:
        obs = parse_observation(
            response.headers, status=response.status_code, now_wall=self.clock.now()
        )
        failure = classify_status(dep, response, obs.retry_after_s)
        breaker = self.breakers[dep.name]
        if failure.kind == "transient":
            breaker.on_failure(self.clock.monotonic())
        else:
            breaker.on_abandoned()
        if failure.kind == "rate_limited":
            self.metrics.provider_429.labels(dep.name).inc()
        return failure


def _wants_cache(body: Mapping[str, Any]) -> bool:
    flag = body.get("cache")
    if flag is not None and not isinstance(flag, bool):
        raise InvalidInput(f"cache={str(flag)[:40]!r} must be true or false.", param="cache")
    return cacheable(body)


def _default_cache(config: GatewayConfig, clock: Clock) -> ResponseCache | None:
    if config.cache_backend == "memory":
        return MemoryCache(
            ttl_s=config.cache_ttl_s, max_entries=config.cache_max_entries, clock=clock
        )
    if config.cache_backend == "redis":
        if not config.redis_url:
            raise ConfigurationError(
                "[cache] backend = 'redis' needs a Redis URL: set [scheduler] redis_url or "
                "MLOOP_REDIS_URL."
            )
        return RedisCache(config.redis_url, prefix=config.key_prefix, ttl_s=config.cache_ttl_s)
    return None


def _default_limiter(config: GatewayConfig, clock: Clock) -> Limiter:
    if config.redis_url:
        from mloop.gateway._redis_limiter import RedisLimiter

        return RedisLimiter(config.deployments, config.redis_url, prefix=config.key_prefix)
    return LocalLimiter(config.deployments, clock.monotonic())
