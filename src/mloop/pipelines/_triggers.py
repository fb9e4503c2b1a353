"""When a pipeline runs: pure trigger decisions over (config, state, now, event).

A schedule (cron), an alert from monitoring, enough new labeled rows, or a person
(``mloop retrain``) can start a run. Automatic triggers respect a cooldown, never
start a second run while one is in progress, and de-duplicate alerts by key, so an
alert storm starts exactly one run. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.errors import InvalidInput
from mloop.pipelines._cron import CronSchedule

__all__ = [
    "EventKind",
    "TriggerConfig",
    "TriggerDecision",
    "TriggerEvent",
    "TriggerState",
    "decide",
    "run_finished",
]

EventKind = Literal["manual", "alert", "schedule", "labels"]
_KINDS = ("manual", "alert", "schedule", "labels")


@dataclass(frozen=True)
class TriggerConfig:
    """Which events start a run, and how often at most."""

    schedule: str | None = None  # cron expression (UTC), e.g. "0 3 * * *"
    on_alert: bool = True
    alert_kinds: tuple[str, ...] = ("drift", "performance")
    min_new_labels: int | None = (
        None  # start when this many labeled rows arrived since the last run
    )
    cooldown_s: float = 3600.0  # after a run starts, automatic triggers wait this long
    dedup_window_s: float = 86400.0  # the same alert key starts at most one run per window
    stale_run_s: float = 6 * 3600.0  # a run "in progress" this long is presumed dead

    def __post_init__(self) -> None:
        if self.schedule is not None:
            CronSchedule.parse(self.schedule)  # fail at declaration, not at 3 a.m.
        if self.cooldown_s < 0 or self.dedup_window_s < 0:
            raise InvalidInput("cooldown_s and dedup_window_s must be zero or positive seconds.")
        if self.min_new_labels is not None and self.min_new_labels < 1:
            raise InvalidInput(f"min_new_labels must be at least 1; got {self.min_new_labels}.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TriggerConfig:
        """Build from a ``[pipelines.triggers]`` table."""
        values = dict(data)
        if "alert_kinds" in values:
            values["alert_kinds"] = tuple(values["alert_kinds"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InvalidInput(
                f"Unknown trigger setting(s) {sorted(unknown)}; known: {sorted(known)}."
            )
        return cls(**values)


@dataclass(frozen=True)
class TriggerEvent:
    """Something that may start a run.

    ``key`` de-duplicates alerts (e.g. the rule name); ``labeled_rows`` is the total
    number of labeled rows available for ``labels`` events.
    """

    kind: EventKind
    at: float
    key: str = ""
    labeled_rows: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidInput(f"Trigger event kind {self.kind!r} is not one of {_KINDS}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the run)."""
        return {
            "kind": self.kind,
            "at": self.at,
            "key": self.key,
            "labeled_rows": self.labeled_rows,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class TriggerState:
    """What the trigger logic remembers between events (persisted per pipeline)."""

    last_started_at: float | None = None
    running: str | None = None  # id of the run in progress
    last_schedule_slot: float | None = None
    labels_at_last_run: int = 0
    alert_keys: Mapping[str, float] = field(default_factory=dict)  # key -> last time it fired

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "last_started_at": self.last_started_at,
            "running": self.running,
            "last_schedule_slot": self.last_schedule_slot,
            "labels_at_last_run": self.labels_at_last_run,
            "alert_keys": dict(self.alert_keys),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TriggerState:
        """Inverse of :meth:`to_dict` (``None`` gives the initial state)."""
        if not data:
            return cls()
        return cls(
            last_started_at=data.get("last_started_at"),
            running=data.get("running"),
            last_schedule_slot=data.get("last_schedule_slot"),
            labels_at_last_run=int(data.get("labels_at_last_run") or 0),
            alert_keys={str(k): float(v) for k, v in (data.get("alert_keys") or {}).items()},
        )


@dataclass(frozen=True)
class TriggerDecision:
    """Whether to start a run, why, and the state to store either way."""

    fire: bool
    reason: str
    state: TriggerState


def decide(
    config: TriggerConfig, state: TriggerState, now: float, event: TriggerEvent
) -> TriggerDecision:
    """Decide whether ``event`` starts a run (pure; the caller persists ``state``)."""
    if state.running is not None and now - (state.last_started_at or now) < config.stale_run_s:
        return TriggerDecision(False, f"run {state.running} is still in progress", state)
    if event.kind == "manual":
        return _fire(state, now, event, "started by hand")
    if event.kind == "alert":
        return _alert(config, state, now, event)
    if event.kind == "schedule":
        return _schedule(config, state, now, event)
    return _labels(config, state, now, event)


def _cooling(config: TriggerConfig, state: TriggerState, now: float) -> str | None:
    if state.last_started_at is None:
        return None
    left = state.last_started_at + config.cooldown_s - now
    return f"cooling down for another {left:.0f}s after the last run" if left > 0 else None


def _alert(
    config: TriggerConfig, state: TriggerState, now: float, event: TriggerEvent
) -> TriggerDecision:
    kind = str(event.details.get("kind", ""))
    if not config.on_alert:
        return TriggerDecision(False, "alert triggers are off for this pipeline", state)
    if kind and kind not in config.alert_kinds:
        return TriggerDecision(False, f"alerts of kind {kind!r} do not trigger runs", state)
    key = event.key or kind or "alert"
    seen = state.alert_keys.get(key)
    if seen is not None and now - seen < config.dedup_window_s:
        return TriggerDecision(False, f"alert {key!r} already started a run recently", state)
    cooling = _cooling(config, state, now)
    if cooling:
        return TriggerDecision(False, cooling, state)
    # Forget keys older than the window so the state stays small.
    keys = {k: t for k, t in state.alert_keys.items() if now - t < config.dedup_window_s}
    keys[key] = now
    return _fire(dataclasses.replace(state, alert_keys=keys), now, event, f"alert {key!r}")


def _schedule(
    config: TriggerConfig, state: TriggerState, now: float, event: TriggerEvent
) -> TriggerDecision:
    if config.schedule is None:
        return TriggerDecision(False, "no schedule configured", state)
    slot = CronSchedule.parse(config.schedule).previous(now)
    if slot is None or (state.last_schedule_slot is not None and slot <= state.last_schedule_slot):
        return TriggerDecision(False, "no scheduled time has passed since the last check", state)
    marked = dataclasses.replace(state, last_schedule_slot=slot)
    if state.last_schedule_slot is None and now - slot >= 60:
        # First look at this schedule: remember where we are instead of catching up on
        # a slot that passed before the pipeline existed.
        return TriggerDecision(False, "schedule armed", marked)
    cooling = _cooling(config, state, now)
    if cooling:
        return TriggerDecision(False, cooling, marked)
    return _fire(marked, now, event, f"schedule {config.schedule!r}")


def _labels(
    config: TriggerConfig, state: TriggerState, now: float, event: TriggerEvent
) -> TriggerDecision:
    if config.min_new_labels is None:
        return TriggerDecision(False, "no new-label threshold configured", state)
    total = int(event.labeled_rows or 0)
    new = total - state.labels_at_last_run
    if new < config.min_new_labels:
        return TriggerDecision(
            False, f"{new} new labeled rows, waiting for {config.min_new_labels}", state
        )
    cooling = _cooling(config, state, now)
    if cooling:
        return TriggerDecision(False, cooling, state)
    return _fire(state, now, event, f"{new} new labeled rows")


def _fire(state: TriggerState, now: float, event: TriggerEvent, reason: str) -> TriggerDecision:
    labels = state.labels_at_last_run if event.labeled_rows is None else int(event.labeled_rows)
    started = dataclasses.replace(
        state, last_started_at=now, running="(starting)", labels_at_last_run=labels
    )
    return TriggerDecision(True, reason, started)


def run_finished(state: TriggerState) -> TriggerState:
    """The state after the run in progress ended (whatever its outcome)."""
    return dataclasses.replace(state, running=None)
