"""Turns events (alerts, clock ticks, new labels, a person) into at most one run each.

The decision is the pure ``decide``; this module only loads and stores trigger state
atomically and hands fired runs to the runner (inline, or to an executor).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mloop.errors import Conflict, NotFound
from mloop.pipelines._runner import Runner
from mloop.pipelines._spec import Pipeline
from mloop.pipelines._store import Run
from mloop.pipelines._triggers import TriggerDecision, TriggerEvent, TriggerState, decide

__all__ = ["TriggerOutcome", "TriggerService", "alert_category"]

Submit = Callable[[Callable[[], Run]], Any]


@dataclass(frozen=True)
class TriggerOutcome:
    """What an event did to one pipeline: the decision and the run id it started, if any."""

    pipeline: str
    fired: bool
    reason: str
    run_id: str | None = None


_DRIFT_WORDS = ("drift", "psi", "js", "ks", "wasserstein", "share", "domain")


def alert_category(metric: str) -> str:
    """ "drift" for drift metrics (psi, js, drift_share …), else "performance"."""
    name = metric.lower()
    return "drift" if any(w in name for w in _DRIFT_WORDS) else "performance"


def _field(alert: Any, name: str, default: Any = None) -> Any:
    if isinstance(alert, Mapping):
        return alert.get(name, default)
    return getattr(alert, name, default)


class TriggerService:
    """Routes events to pipelines; cooldown and de-duplication make alert storms start one run.

    ``submit`` runs a started run: by default inline (the caller waits); pass e.g.
    ``ThreadPoolExecutor(1).submit`` so an alert callback returns at once.
    """

    def __init__(
        self,
        runner: Runner,
        pipelines: Iterable[Pipeline],
        *,
        submit: Submit | None = None,
    ) -> None:
        self.runner = runner
        self.pipelines = {p.name: p for p in pipelines}
        self.submit: Submit = submit or (lambda job: job())

    def _pipeline(self, name: str) -> Pipeline:
        try:
            return self.pipelines[name]
        except KeyError:
            raise NotFound(
                f"No pipeline named {name!r}; known: {sorted(self.pipelines)}. "
                "Add one with: mloop pipelines add module:attr"
            ) from None

    def handle(self, name: str, event: TriggerEvent) -> TriggerOutcome:
        """Decide on ``event`` for pipeline ``name`` and start a run if it fires."""
        pipeline = self._pipeline(name)
        now = self.runner.clock.now()

        def change(state: TriggerState) -> tuple[TriggerDecision, TriggerState]:
            decision = decide(pipeline.triggers, state, now, event)
            return decision, decision.state

        decision = self.runner.runs.transition(name, now, change)
        if not decision.fire:
            return TriggerOutcome(name, False, decision.reason)
        run_id = self.runner.create(pipeline, event)

        def mark(state: TriggerState) -> tuple[None, TriggerState]:
            return None, dataclasses.replace(state, running=run_id)

        self.runner.runs.transition(name, now, mark)
        self.submit(lambda: self.runner.execute(pipeline, run_id))
        return TriggerOutcome(name, True, decision.reason, run_id)

    def on_alert(self, alert: Any) -> list[TriggerOutcome]:
        """The callback for the alert system: every pipeline of the alert's model considers it.

        ``alert`` is a mapping or object (e.g. ``mloop.monitor`` ``AlertEvent``) with
        ``model``, ``rule`` (the de-duplication key), ``metric``, ``value`` and ``kind``
        ("firing" or "resolved"; resolved alerts start nothing). ``category``
        ("drift" | "performance") is taken from the alert or inferred from the metric.
        """
        if str(_field(alert, "kind", "firing")) == "resolved":
            return []
        model = str(_field(alert, "model", ""))
        rule = str(_field(alert, "rule", "") or _field(alert, "name", "") or "alert")
        metric = _field(alert, "metric")
        details = {
            "kind": str(_field(alert, "category", "") or alert_category(str(metric or ""))),
            "rule": rule,
            "metric": metric,
            "value": _field(alert, "value"),
            "message": _field(alert, "message"),
        }
        event = TriggerEvent(
            "alert",
            self.runner.clock.now(),
            key=rule,
            details={k: v for k, v in details.items() if v is not None},
        )
        return [self.handle(p.name, event) for p in self.pipelines.values() if p.model == model]

    def tick(self) -> list[TriggerOutcome]:
        """Check schedules and new-label counts of every pipeline (call about once a minute)."""
        now = self.runner.clock.now()
        outcomes = []
        for p in self.pipelines.values():
            if p.triggers.schedule is not None:
                outcomes.append(self.handle(p.name, TriggerEvent("schedule", now)))
            if p.triggers.min_new_labels is not None and self.runner.source is not None:
                count = self.runner.source.count_labeled(p.model)
                outcomes.append(
                    self.handle(p.name, TriggerEvent("labels", now, labeled_rows=count))
                )
        return outcomes

    def retrain(self, name: str, *, actor: str = "") -> TriggerOutcome:
        """Start a run by hand (refused while one is in progress)."""
        event = TriggerEvent(
            "manual", self.runner.clock.now(), details={"actor": actor} if actor else {}
        )
        outcome = self.handle(name, event)
        if not outcome.fired:
            raise Conflict(f"Pipeline {name!r} did not start: {outcome.reason}.")
        return outcome
