"""OpenTelemetry spans of one prediction: admission, batching, predict and log.

Off unless ``serving.traces`` is on; then the ``otel`` extra is imported (never before)
and every prediction gets a ``mloop.prediction`` span (a child of the caller's
``traceparent``, if any) with four children: ``mloop.admission`` (routing, cache
lookup, the model's bounded queue), ``mloop.batch`` (waiting for the micro-batch to
start), ``mloop.predict`` (the model's call for the whole micro-batch: the span says
how many requests and rows shared it) and ``mloop.log`` (the journal write). These are
model-serving spans, so they carry ``mloop.*`` attributes, no ``gen_ai.*`` ones.

The batcher is ours and runs many requests in one call, so it cannot hold one span per
request open; it stamps a ``BatchTiming`` that the request put in a context variable,
and the spans are written afterwards with those timestamps. With tracing off the
batcher reads one context variable per request and nothing else happens.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mloop._otel import error_status, get_tracer
from mloop.config import Settings

__all__ = ["BatchTiming", "PredictionTracer", "batch_timing"]

_TIMING: ContextVar[BatchTiming | None] = ContextVar("mloop_batch_timing", default=None)


@dataclass
class BatchTiming:
    """When one request entered its model's queue, its batch started and ended (ns)."""

    queued_ns: int = 0
    dispatched_ns: int = 0
    finished_ns: int = 0
    batch_rows: int = 0
    batch_requests: int = 0


def batch_timing() -> BatchTiming | None:
    """The timing the current request wants stamped, if it is traced."""
    return _TIMING.get()


class PredictionTracer:
    """Writes the spans of predictions through an OpenTelemetry tracer."""

    def __init__(self, tracer: Any, propagator: Any) -> None:
        self._tracer = tracer
        self._propagator = propagator

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionTracer | None:
        """A tracer when ``serving.traces`` is on (installs an OTLP exporter if none is set)."""
        if not settings.serving.traces:
            return None
        from mloop._deps import require

        tracer = get_tracer("mloop.serving", "tracing predictions")
        return cls(tracer, require("opentelemetry.propagate", "tracing predictions"))

    @contextmanager
    def request(self, model: str, headers: Mapping[str, str], api: str) -> Iterator[RequestSpans]:
        """The spans of one prediction request; the root ends when the block does."""
        from opentelemetry import trace

        parent = self._propagator.extract(dict(headers))
        root = self._tracer.start_span(
            "mloop.prediction",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"mloop.model": model, "mloop.api": api},
        )
        spans = RequestSpans(self._tracer, root, trace.set_span_in_context(root))
        token = _TIMING.set(spans.timing)
        try:
            yield spans
        except BaseException as exc:
            spans.fail(exc)
            raise
        finally:
            _TIMING.reset(token)
            spans.close()


class RequestSpans:
    """One request's root span and the timestamps its child spans are written from."""

    def __init__(self, tracer: Any, root: Any, context: Any) -> None:
        self._tracer = tracer
        self.root = root
        self._context = context
        self.timing = BatchTiming()
        self.started_ns = time.time_ns()
        self._log_started_ns = 0
        self._log_ended_ns = 0
        self._error = ""

    def set(self, **attributes: Any) -> None:
        """Add ``mloop.<key>`` attributes to the root span."""
        for key, value in attributes.items():
            self.root.set_attribute(f"mloop.{key}", value)

    @contextmanager
    def log(self) -> Iterator[None]:
        """Time the journal write."""
        self._log_started_ns = time.time_ns()
        try:
            yield
        finally:
            self._log_ended_ns = time.time_ns()

    def fail(self, exc: BaseException) -> None:
        """Mark the request failed, and the stage it failed in (see ``close``)."""
        self._error = type(exc).__name__
        self.root.record_exception(exc)

    def close(self) -> None:
        """Write the child spans from the recorded timestamps and end the root."""
        t = self.timing
        now = time.time_ns()
        stages: list[tuple[str, int, int, dict[str, Any] | None]] = [
            ("mloop.admission", self.started_ns, t.queued_ns or now, None)
        ]
        if t.queued_ns:
            stages.append(("mloop.batch", t.queued_ns, t.dispatched_ns or now, None))
        if t.dispatched_ns:
            batch = {"mloop.batch.rows": t.batch_rows, "mloop.batch.requests": t.batch_requests}
            stages.append(("mloop.predict", t.dispatched_ns, t.finished_ns or now, batch))
        if self._log_started_ns:
            stages.append(("mloop.log", self._log_started_ns, self._log_ended_ns or now, None))
        if not t.queued_ns and not self._error:
            stages.pop(0)  # answered from the cache: nothing was queued
        for index, (name, start, end, attributes) in enumerate(stages):
            span = self._child(name, start, attributes)
            if self._error and index == len(stages) - 1:  # the stage it failed in
                span.set_status(error_status(self._error))
            span.end(end_time=max(start, end))
        if self._error:
            self.root.set_status(error_status(self._error))
        self.root.end()

    def _child(self, name: str, start_ns: int, attributes: dict[str, Any] | None = None) -> Any:
        return self._tracer.start_span(
            name, context=self._context, start_time=start_ns, attributes=attributes
        )
