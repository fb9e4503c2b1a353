"""Alert rules and their evaluation: a pure function of (rule, state, observation, now).

A rule watches one metric of one model over fixed windows. It fires after ``for``
consecutive breaching windows, resolves on the first window that does not breach,
and does not fire again within ``cooldown`` seconds of its last firing (flapping
guard). Windows without data change nothing. Each window counts once: feeding the
same window twice is a no-op, so evaluation can be retried safely.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from mloop._duration import parse_duration as _parse
from mloop.errors import ConfigurationError

__all__ = [
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "Observation",
    "evaluate_rule",
    "parse_duration",
    "rules_from_config",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_METRIC = re.compile(
    r"^(drift_share|prediction_drift|missing_rate|out_of_contract_rate|rows|"
    r"feature_drift:.+|(estimated_)?[a-z0-9_]+)$"
)


def parse_duration(value: str | float | int, what: str = "duration") -> float:
    """A positive duration from mloop.toml (``"90s"``, ``"15m"``, ``"1h"``, ``"7d"``, seconds)."""
    seconds = _parse(value, what, error=ConfigurationError)
    if seconds <= 0:
        raise ConfigurationError(f"{what} {value!r} must be positive.")
    return seconds


@dataclass(frozen=True)
class AlertRule:
    """Fire when ``metric`` of ``model`` is ``op threshold`` for ``for_`` windows."""

    name: str
    model: str
    metric: str
    threshold: float
    op: Literal[">", ">=", "<", "<="] = ">"
    window: float = 3600.0
    for_: int = 1
    cooldown: float = 0.0
    severity: str = "warning"

    def breached(self, value: float) -> bool:
        """True when ``value`` violates the rule."""
        return _OPS[self.op](value, self.threshold)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], index: int = 0) -> AlertRule:
        """Build a rule from one ``[[alerts]]`` table of mloop.toml."""
        where = f"[[alerts]] #{index + 1}"
        missing = [k for k in ("name", "model", "metric", "threshold") if k not in data]
        if missing:
            raise ConfigurationError(
                f"{where} lacks {missing}; each alert needs name, model, metric and threshold."
            )
        known = {"name", "model", "metric", "threshold", "op", "window", "for", "cooldown"}
        unknown = set(data) - known - {"severity"}
        if unknown:
            raise ConfigurationError(f"{where} has unknown keys {sorted(unknown)}.")
        metric = str(data["metric"])
        if not _METRIC.match(metric):
            raise ConfigurationError(
                f"{where} metric {metric!r} is not known; use drift_share, "
                "feature_drift:<column>, prediction_drift, missing_rate, out_of_contract_rate, "
                "rows, a realized metric (accuracy, f1, rmse…) or estimated_<metric>."
            )
        op = str(data.get("op", ">"))
        if op not in _OPS:
            raise ConfigurationError(f"{where} op {op!r} must be one of {sorted(_OPS)}.")
        try:
            threshold = float(data["threshold"])
            for_ = int(data.get("for", 1))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: threshold and for must be numbers.") from exc
        if for_ < 1:
            raise ConfigurationError(f"{where}: for must be >= 1 (consecutive windows).")
        cooldown = data.get("cooldown", 0)
        return cls(
            name=str(data["name"]),
            model=str(data["model"]),
            metric=metric,
            threshold=threshold,
            op=op,  # type: ignore[arg-type]
            window=parse_duration(data.get("window", "1h"), f"{where} window"),
            for_=for_,
            cooldown=0.0 if cooldown in (0, "0") else parse_duration(cooldown, f"{where} cooldown"),
            severity=str(data.get("severity", "warning")),
        )


def rules_from_config(raw: Mapping[str, Any]) -> list[AlertRule]:
    """Every ``[[alerts]]`` table in the parsed mloop.toml (``settings.raw``)."""
    tables = raw.get("alerts", [])
    if isinstance(tables, Mapping):
        tables = [tables]
    if not isinstance(tables, Sequence):
        raise ConfigurationError("alerts in mloop.toml must be [[alerts]] tables.")
    rules = [AlertRule.from_mapping(t, i) for i, t in enumerate(tables)]
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"Alert names must be unique; repeated: {dupes}.")
    return rules


@dataclass(frozen=True)
class AlertState:
    """What a rule remembers between evaluations."""

    status: Literal["ok", "pending", "firing"] = "ok"
    breaches: int = 0
    last_window_end: float | None = None
    last_value: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in ``monitor_alert_state``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        """Inverse of ``to_dict``."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Observation:
    """The metric's value over the window ending at ``window_end`` (None: no data)."""

    window_end: float
    value: float | None


@dataclass(frozen=True)
class AlertEvent:
    """A rule started firing or resolved."""

    rule: str
    model: str
    kind: Literal["firing", "resolved"]
    metric: str
    value: float | None
    threshold: float
    op: str
    at: float
    severity: str = "warning"

    @property
    def message(self) -> str:
        """One human line, e.g. for Slack."""
        value = "n/a" if self.value is None else f"{self.value:.4g}"
        if self.kind == "firing":
            return (
                f"[{self.severity.upper()}] {self.rule}: {self.model} {self.metric}={value} "
                f"{self.op} {self.threshold:g}"
            )
        return f"[RESOLVED] {self.rule}: {self.model} {self.metric}={value}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with ``message``."""
        return {**asdict(self), "message": self.message}


def evaluate_rule(
    rule: AlertRule, state: AlertState, observation: Observation, now: float
) -> tuple[AlertState, list[AlertEvent]]:
    """The rule's next state and the events to send after seeing one window."""
    if state.last_window_end is not None and observation.window_end <= state.last_window_end:
        return state, []
    if observation.value is None:
        return replace(state, last_window_end=observation.window_end), []
    value = float(observation.value)
    seen = replace(state, last_window_end=observation.window_end, last_value=value)

    def event(kind: Literal["firing", "resolved"]) -> AlertEvent:
        return AlertEvent(
            rule.name, rule.model, kind, rule.metric, value, rule.threshold, rule.op, now,
            rule.severity,
        )  # fmt: skip

    if not rule.breached(value):
        if state.status == "firing":
            return replace(seen, status="ok", breaches=0, resolved_at=now), [event("resolved")]
        return replace(seen, status="ok", breaches=0), []
    breaches = state.breaches + 1
    if state.status == "firing":
        return replace(seen, breaches=breaches), []
    cooling = state.fired_at is not None and now - state.fired_at < rule.cooldown
    if breaches >= rule.for_ and not cooling:
        return replace(seen, status="firing", breaches=breaches, fired_at=now), [event("firing")]
    return replace(seen, status="pending", breaches=breaches), []
