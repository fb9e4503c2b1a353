"""The live side of monitoring: prediction log, feedback, monitor service, alert rules and sinks.

HTTP routes are in :mod:`mloop.monitor.http` (``router_for(monitor)``).
"""

from mloop.journal import (
    DurableLog,
    FeedbackLog,
    FeedbackResult,
    LogStore,
    ParquetLogStore,
    PredictionLog,
    SqlLogStore,
)
from mloop.monitor._alerting import Alerter
from mloop.monitor._alerts import (
    AlertEvent,
    AlertRule,
    AlertState,
    Observation,
    evaluate_rule,
    parse_duration,
    rules_from_config,
)
from mloop.monitor._observe import WindowStatus
from mloop.monitor._service import Monitor, MonitorStatus
from mloop.monitor._sinks import AlertSink, LogSink, PrometheusSink, WebhookSink

__all__ = [
    "AlertEvent",
    "AlertRule",
    "AlertSink",
    "AlertState",
    "Alerter",
    "DurableLog",
    "FeedbackLog",
    "FeedbackResult",
    "LogSink",
    "LogStore",
    "Monitor",
    "MonitorStatus",
    "Observation",
    "ParquetLogStore",
    "PredictionLog",
    "PrometheusSink",
    "SqlLogStore",
    "WebhookSink",
    "WindowStatus",
    "evaluate_rule",
    "parse_duration",
    "rules_from_config",
]
