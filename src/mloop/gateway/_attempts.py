"""The attempt loop: queue for a deployment, call it, and decide what a failure means.

An attempt that fails with 429 re-anchors the deployment's quota and queues
again; 5xx, timeouts and broken connections count against the deployment's
circuit breaker and keep the request off that deployment for a jittered
backoff; an answer that fails the route's JSON schema, or a provider that
refuses our key, takes the deployment out of this request's chain.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import replace
from typing import Any

import httpx

from mloop._clock import Clock
from mloop.errors import Unavailable
from mloop.gateway._adapters import adapter_for
from mloop.gateway._backoff import backoff_delay
from mloop.gateway._breaker import CircuitBreaker
from mloop.gateway._config import Deployment, GatewayConfig, Route
from mloop.gateway._failures import Failure, classify_status
from mloop.gateway._headers import parse_observation
from mloop.gateway._limiter import Limiter
from mloop.gateway._metrics import GatewayMetrics
from mloop.gateway._planning import learned_token_ratio
from mloop.gateway._pool import ShardedClient
from mloop.gateway._results import ChatResult, StreamResult
from mloop.gateway._scheduler import Grant, Priority, Scheduler, Ticket
from mloop.gateway._schema import schema_errors
from mloop.gateway._spending import Spending
from mloop.gateway._tokens import text_tokens
from mloop.gateway._tracing import OFF, RequestTrace

__all__ = ["Attempts"]

_POOL = 64  # connections per deployment without a max_concurrency


class Attempts:
    """Runs a ticket's attempts on granted deployments until one answers or it must give up."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        scheduler: Scheduler,
        limiter: Limiter,
        breakers: Mapping[str, CircuitBreaker],
        metrics: GatewayMetrics,
        clock: Clock,
        keys: Mapping[str, str | None],
        token_ratio: dict[str, float],
        spending: Spending | None,
        rng: random.Random,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.limiter = limiter
        self.breakers = breakers
        self.metrics = metrics
        self.clock = clock
        self.spending = spending
        self._keys = keys
        self._token_ratio = token_ratio
        self._rng = rng
        self._http = {
            name: ShardedClient(
                dep.max_concurrency or _POOL, httpx.Timeout(dep.timeout_s, connect=5.0), transport
            )
            for name, dep in config.deployments.items()
        }
        self._tasks: set[asyncio.Task[None]] = set()

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Close the connection pools."""
        for http in self._http.values():
            await http.aclose()

    async def run(
        self,
        route: Route,
        body: Mapping[str, Any],
        ticket: Ticket,
        priority: Priority,
        stream: bool,
        trace: RequestTrace = OFF,
    ) -> ChatResult | StreamResult:
        """Queue, call, and on failure queue again, until an answer or a final error."""
        depth = self.metrics.queue_depth.labels(priority)
        while True:
            if ticket.hold is not None and ticket.hold.needs_top_up:
                assert self.spending is not None
                await self.spending.top_up(ticket.hold)
            depth.inc()
            try:
                with trace.stage("queue", priority=priority) as span:
                    grant = await self.scheduler.acquire(ticket)
                    if span is not None:
                        span.set_attribute("mloop.deployment", grant.deployment)
                        span.set_attribute("mloop.waited_s", grant.waited_s)
            finally:
                depth.dec()
            self.metrics.queue_wait.labels(priority).observe(grant.waited_s)
            ticket.attempts += 1
            call = trace.call(self.config.deployments[grant.deployment], body)
            try:
                result = await self._call(route, body, ticket, grant, stream)
            except Failure as failure:
                call.failed(failure.error_type, failure.error)
                self._on_failure(route, ticket, grant, failure)
                continue
            except BaseException as exc:  # cancelled: the caller went away
                call.failed(type(exc).__name__, exc)
                raise
            if isinstance(result, StreamResult):
                result.chunks = call.follow(result.chunks)
            else:
                call.answered(result.response)
            return result

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
                error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
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
                error_type="invalid_json",
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
            self._token_ratio[dep.name] = learned_token_ratio(
                self._token_ratio[dep.name], prompt, estimate - ticket.completion_tokens
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
                error_type="invalid_output",
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
