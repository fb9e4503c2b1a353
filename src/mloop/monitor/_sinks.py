"""Where alert events and monitoring numbers go: structlog, a webhook, Prometheus gauges."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import structlog
from prometheus_client import CollectorRegistry, Gauge

from mloop.monitor._alerts import AlertEvent
from mloop.monitor._observe import WindowStatus

__all__ = ["AlertSink", "LogSink", "PrometheusSink", "WebhookSink"]

_log = structlog.get_logger("mloop.alerts")


class AlertSink(Protocol):
    """Receives alert events; must not raise (a broken sink never stops evaluation)."""

    def send(self, event: AlertEvent) -> None:
        """Deliver one event."""
        ...


class LogSink:
    """Alert events as structured log lines."""

    def send(self, event: AlertEvent) -> None:
        """Log ``event`` (warning when firing, info when resolved)."""
        fields = event.to_dict()
        kind = fields.pop("kind")
        if kind == "firing":
            _log.warning("alert.firing", **fields)
        else:
            _log.info("alert.resolved", **fields)


class WebhookSink:
    """POST each event as JSON with a Slack-compatible ``text`` field, retried with backoff."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.failures = 0

    def send(self, event: AlertEvent) -> None:
        """POST ``{"text": ..., "alert": {...}}``; retry network errors, 429 and 5xx."""
        body: dict[str, Any] = {"text": event.message, "alert": event.to_dict()}
        for attempt in range(self.retries + 1):
            try:
                response = self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    return
                reason = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver rejects this body; retrying will not help
            if attempt < self.retries:
                self.sleep(self.backoff_s * 2**attempt)
        self.failures += 1
        _log.error("alert.webhook_failed", url=self.url, rule=event.rule, reason=reason)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


class PrometheusSink:
    """Gauges for drift, data quality, performance and firing alerts (for Alertmanager)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        self.rows = gauge("mloop_monitor_rows", "Rows in the last window.", ("model",))
        self.drift_share = gauge(
            "mloop_monitor_drift_share", "Share of features drifted in the last window.", ("model",)
        )
        self.feature_drift = gauge(
            "mloop_monitor_feature_drift", "Drift effect size per feature.", ("model", "feature")
        )
        self.feature_drifted = gauge(
            "mloop_monitor_feature_drifted", "1 if the feature drifted.", ("model", "feature")
        )
        self.prediction_drift = gauge(
            "mloop_monitor_prediction_drift", "Drift effect size of predictions.", ("model",)
        )
        self.missing = gauge("mloop_monitor_missing_rate", "Share of missing cells.", ("model",))
        self.performance = gauge(
            "mloop_monitor_performance",
            "Realized performance (labelled rows).",
            ("model", "metric"),
        )
        self.estimated = gauge(
            "mloop_monitor_estimated_performance",
            "Estimated performance without labels (CBPE).",
            ("model", "metric"),
        )
        self.firing = gauge("mloop_alert_firing", "1 while the alert fires.", ("rule", "model"))

    def observe(self, model: str, window: WindowStatus) -> None:
        """Set the gauges from the most recent window of ``model``."""
        self.rows.labels(model).set(window.rows)
        if window.drift is not None:
            self.drift_share.labels(model).set(window.drift.share_drifted)
            for c in window.drift.columns:
                self.feature_drift.labels(model, c.column).set(c.effect)
                self.feature_drifted.labels(model, c.column).set(1.0 if c.drifted else 0.0)
        value = window.metric("prediction_drift")
        if value is not None:
            self.prediction_drift.labels(model).set(value)
        if window.missing_rate is not None:
            self.missing.labels(model).set(window.missing_rate)
        for name, v in window.performance.items():
            self.performance.labels(model, name).set(v)
        for name, v in window.estimated.items():
            self.estimated.labels(model, name).set(v)

    def send(self, event: AlertEvent) -> None:
        """Track which alerts fire."""
        self.firing.labels(event.rule, event.model).set(1.0 if event.kind == "firing" else 0.0)
