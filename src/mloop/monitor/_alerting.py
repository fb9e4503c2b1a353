"""The alert reconciler: reads windows, applies ``evaluate_rule``, stores state, notifies sinks.

The only place with side effects for alerts. Windows are aligned to multiples of
the rule's window length, so every replica and every run sees the same windows;
a window is evaluated once it is complete.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from mloop._clock import Clock
from mloop.errors import MloopError
from mloop.journal import alert_events, alert_state
from mloop.monitor._alerts import (
    AlertEvent,
    AlertRule,
    AlertState,
    Observation,
    evaluate_rule,
    rules_from_config,
)
from mloop.monitor._service import Monitor, MonitorStatus
from mloop.monitor._sinks import AlertSink, LogSink, PrometheusSink, WebhookSink

__all__ = ["Alerter"]

_log = logging.getLogger("mloop.alerts")


class Alerter:
    """Evaluate the configured alert rules against the monitor and deliver events."""

    def __init__(
        self,
        monitor: Monitor,
        rules: Sequence[AlertRule] | None = None,
        *,
        sinks: Sequence[AlertSink] | None = None,
        gauges: PrometheusSink | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.monitor = monitor
        self.rules = list(rules) if rules is not None else rules_from_config(monitor.settings.raw)
        if sinks is None:
            sinks = [LogSink()]
            if monitor.settings.monitor.webhook_url:
                sinks.append(WebhookSink(monitor.settings.monitor.webhook_url))
        self.sinks: list[AlertSink] = list(sinks)
        self.gauges = gauges
        if gauges is not None:
            self.sinks.append(gauges)
        self.clock = clock or monitor.clock
        self.store = monitor.registry.store

    def state(self, rule: str) -> AlertState:
        """The stored state of ``rule`` (fresh when never evaluated)."""
        with self.store.read() as conn:
            found = conn.execute(
                sa.select(alert_state.c.state).where(alert_state.c.rule == rule)
            ).scalar()
        return AlertState() if found is None else AlertState.from_dict(found)

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """Alert events, newest first."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(alert_events).order_by(alert_events.c.id.desc()).limit(limit)
            )
            return [dict(r._mapping) for r in rows]

    def evaluate(self, now: float | None = None) -> list[AlertEvent]:
        """Feed every complete, not yet seen window to every rule; return the new events."""
        now = self.clock.now() if now is None else now
        cache: dict[tuple[str, float, float, float], MonitorStatus] = {}
        out: list[AlertEvent] = []
        for rule in self.rules:
            try:
                out.extend(self._evaluate_rule(rule, now, cache))
            except MloopError as exc:
                _log.error("alert rule %s could not be evaluated: %s", rule.name, exc.message)
        return out

    def _evaluate_rule(
        self,
        rule: AlertRule,
        now: float,
        cache: dict[tuple[str, float, float, float], MonitorStatus],
    ) -> list[AlertEvent]:
        width = rule.window
        aligned_end = math.floor(now / width) * width
        state = self.state(rule.name)
        first = aligned_end - (rule.for_ + 1) * width
        if state.last_window_end is not None:
            first = max(first, state.last_window_end)
        if first >= aligned_end:
            return []
        key = (rule.model, first, aligned_end, width)
        if key not in cache:
            cache[key] = self.monitor.status(
                rule.model, since=first, until=aligned_end, window=width
            )
        status = cache[key]
        if self.gauges is not None and status.windows:
            self.gauges.observe(rule.model, status.windows[-1])
        events: list[AlertEvent] = []
        for window in status.windows:
            state, new = evaluate_rule(
                rule, state, Observation(window.end, window.metric(rule.metric)), now
            )
            events.extend(new)
        self._save(rule.name, state, events, now)
        for event in events:
            for sink in self.sinks:
                try:
                    sink.send(event)
                except Exception:  # a sink must never stop the others
                    _log.exception("alert sink %s failed", type(sink).__name__)
        return events

    def _save(self, rule: str, state: AlertState, events: list[AlertEvent], now: float) -> None:
        with self.store.write() as conn:
            updated = conn.execute(
                alert_state.update()
                .where(alert_state.c.rule == rule)
                .values(state=state.to_dict(), updated_at=now)
            )
            if updated.rowcount == 0:
                conn.execute(
                    alert_state.insert().values(rule=rule, state=state.to_dict(), updated_at=now)
                )
            for e in events:
                conn.execute(
                    alert_events.insert().values(
                        at=e.at,
                        rule=e.rule,
                        model=e.model,
                        kind=e.kind,
                        metric=e.metric,
                        value=e.value,
                        threshold=e.threshold,
                        message=e.message,
                    )
                )
