"""OpenTelemetry spans of gateway requests, with the GenAI conventions on provider calls.

Off unless ``gateway.traces`` is on; then the ``otel`` extra is imported (never before).
Each client request is one ``mloop.gateway.request`` span (a child of the caller's
``traceparent`` when the HTTP app got one; route, priority, stream,
cache hit or miss, outcome, the deployment that answered, attempts). Its children:
``mloop.gateway.cache`` (the response-cache lookup), ``mloop.gateway.queue`` (each wait
for a deployment's quota) and one ``chat {model}`` span per provider call. Only the
provider calls are LLM spans, so only they carry ``gen_ai.*`` attributes (OpenTelemetry
GenAI semantic conventions): operation, provider, request and response model, token
usage, ``max_tokens`` and temperature, and ``error.type`` when the call failed (the
HTTP status, e.g. ``429``, or the exception's type). A fallback after a 429 is two
``chat`` spans under one request span.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urlsplit

from mloop._otel import error_status, get_tracer
from mloop.config import Settings
from mloop.errors import Overloaded
from mloop.gateway._config import Deployment

__all__ = ["OFF", "CallTrace", "GatewayTracer", "RequestTrace"]

_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()


class GatewayTracer:
    """Starts the spans of gateway requests through an OpenTelemetry tracer."""

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer

    @classmethod
    def from_settings(cls, settings: Settings | None) -> GatewayTracer | None:
        """A tracer when ``gateway.traces`` is on (installs an OTLP exporter if none is set)."""
        if settings is None or not settings.gateway.traces:
            return None
        return cls(get_tracer("mloop.gateway", "tracing gateway calls"))

    @contextmanager
    def continuing(self, headers: Mapping[str, str]) -> Iterator[None]:
        """Requests started in the block continue the caller's trace (W3C ``traceparent``)."""
        from opentelemetry import context, propagate

        token = context.attach(propagate.extract(dict(headers)))
        try:
            yield
        finally:
            context.detach(token)

    def request(self, route: str, priority: str, stream: bool) -> RequestTrace:
        """The root span of one client request (ended by ``RequestTrace.end``)."""
        from opentelemetry import trace

        span = self._tracer.start_span(
            "mloop.gateway.request",
            kind=trace.SpanKind.SERVER,
            attributes={"mloop.route": route, "mloop.priority": priority, "mloop.stream": stream},
        )
        return RequestTrace(self._tracer, span, trace.set_span_in_context(span))


class RequestTrace:
    """One request's span and its children; with no span (``OFF``) every method does nothing."""

    def __init__(self, tracer: Any, span: Any, context: Any) -> None:
        self._tracer = tracer
        self._span = span
        self._context = context

    def set(self, **attributes: Any) -> None:
        """Add ``mloop.<key>`` attributes to the request span."""
        if self._span is not None:
            for key, value in attributes.items():
                self._span.set_attribute(f"mloop.{key}", value)

    def stage(self, name: str, **attributes: Any) -> AbstractContextManager[Any]:
        """A child span ``mloop.gateway.<name>`` (a queue wait, a cache lookup) for a block."""
        if self._span is None:
            return _NOTHING
        span: AbstractContextManager[Any] = self._tracer.start_as_current_span(
            f"mloop.gateway.{name}",
            context=self._context,
            attributes={f"mloop.{k}": v for k, v in attributes.items()},
        )
        return span

    def call(self, dep: Deployment, body: Mapping[str, Any]) -> CallTrace:
        """The span of one provider call, with the GenAI request attributes."""
        if self._span is None:
            return CallTrace(None)
        from opentelemetry import trace

        url = urlsplit(dep.base_url)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": dep.provider,
            "gen_ai.provider.name": dep.provider,
            "gen_ai.request.model": dep.model,
            "server.address": url.hostname or "",
            "mloop.deployment": dep.name,
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            attributes["gen_ai.request.max_tokens"] = max_tokens
        for field in ("temperature", "top_p"):
            value = body.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[f"gen_ai.request.{field}"] = float(value)
        span = self._tracer.start_span(
            f"chat {dep.model}",
            context=self._context,
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
        )
        return CallTrace(span)

    def end(self, error: BaseException | None = None) -> None:
        """End the request span with its outcome: ok, refused (429 to the caller) or error."""
        if self._span is None:
            return
        if error is None:
            self._span.set_attribute("mloop.outcome", "ok")
        else:
            refused = isinstance(error, Overloaded)
            self._span.set_attribute("mloop.outcome", "refused" if refused else "error")
            self._span.set_attribute("error.type", type(error).__name__)
            self._span.set_status(error_status(str(error)[:200]))
        self._span.end()

    async def until_done(self, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Any]:
        """Pass a stream's chunks through; the request ends with the stream."""
        try:
            async for chunk in chunks:
                yield chunk
        except BaseException as exc:
            self.end(exc)
            raise
        self.end()


OFF = RequestTrace(None, None, None)


class CallTrace:
    """The span of one provider call; ended once, by ``answered``, ``failed`` or a stream."""

    def __init__(self, span: Any) -> None:
        self._span = span

    def answered(self, response: Mapping[str, Any]) -> None:
        """Record the provider's answer (model, id, finish reasons, usage) and end."""
        if self._span is None:
            return
        self._response(response)
        self._span.end()

    def failed(self, error_type: str, error: BaseException | None = None) -> None:
        """Record why the call failed (``error.type``: HTTP status or exception type) and end."""
        if self._span is None:
            return
        self._span.set_attribute("error.type", error_type)
        if error_type.isdigit():
            self._span.set_attribute("http.response.status_code", int(error_type))
        self._span.set_status(error_status(str(error)[:200] if error else error_type))
        self._span.end()

    async def follow(self, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Any]:
        """Pass a stream's chunks through; the call's span ends with the stream."""
        if self._span is None:
            async for chunk in chunks:
                yield chunk
            return
        seen: dict[str, Any] = {"choices": []}
        try:
            async for chunk in chunks:
                if chunk.get("model"):
                    seen["model"] = chunk["model"]
                if chunk.get("id"):
                    seen["id"] = chunk["id"]
                if chunk.get("usage"):
                    seen["usage"] = chunk["usage"]
                seen["choices"].extend(
                    c for c in chunk.get("choices", []) if c.get("finish_reason")
                )
                yield chunk
        except BaseException as exc:
            self.failed(type(exc).__name__, exc)
            raise
        self.answered(seen)

    def _response(self, response: Mapping[str, Any]) -> None:
        span = self._span
        if response.get("model"):
            span.set_attribute("gen_ai.response.model", str(response["model"]))
        if response.get("id"):
            span.set_attribute("gen_ai.response.id", str(response["id"]))
        reasons = [
            str(c["finish_reason"])
            for c in response.get("choices") or []
            if isinstance(c, Mapping) and c.get("finish_reason")
        ]
        if reasons:
            span.set_attribute("gen_ai.response.finish_reasons", reasons)
        usage = response.get("usage") or {}
        for ours, theirs in (
            ("input_tokens", "prompt_tokens"),
            ("output_tokens", "completion_tokens"),
        ):
            if isinstance(usage.get(theirs), int):
                span.set_attribute(f"gen_ai.usage.{ours}", usage[theirs])
