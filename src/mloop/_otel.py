"""The lazily imported OpenTelemetry pieces that serving and the gateway share.

Nothing here imports ``opentelemetry`` before a caller asks for a tracer, and
then only through ``_deps.require`` (which says how to install the ``otel`` extra).
"""

from __future__ import annotations

from typing import Any

from mloop._deps import require

__all__ = ["error_status", "get_tracer"]


def get_tracer(name: str, purpose: str) -> Any:
    """An OpenTelemetry tracer named ``name``, installing an OTLP exporter if none is set."""
    trace = require("opentelemetry.trace", purpose)
    _ensure_provider(trace, purpose)
    return trace.get_tracer(name)


def error_status(description: str) -> Any:
    """The ERROR span status, with ``description``."""
    from opentelemetry.trace import Status, StatusCode

    return Status(StatusCode.ERROR, description)


def _ensure_provider(trace: Any, purpose: str) -> None:
    """Install an SDK provider exporting OTLP over HTTP unless the process has one.

    The exporter reads the standard ``OTEL_EXPORTER_OTLP_*`` variables and the provider
    ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``, as every OTel SDK does.
    """
    if type(trace.get_tracer_provider()).__name__ != "ProxyTracerProvider":
        return  # the application (or a test) configured one already
    sdk = require("opentelemetry.sdk.trace", purpose)
    export = require("opentelemetry.sdk.trace.export", purpose)
    otlp = require("opentelemetry.exporter.otlp.proto.http.trace_exporter", "exporting traces")
    provider = sdk.TracerProvider()
    provider.add_span_processor(export.BatchSpanProcessor(otlp.OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
