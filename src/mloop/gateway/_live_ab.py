"""Live A/B at the gateway: serve each request its arm's prompt, record outcomes, decide.

``LiveAB`` is the gateway's prompt source: for an alias under test it returns the
version of the caller's arm, and otherwise what the registry says. The app reports
each answer (``observe``) and each feedback (``feedback``); after an outcome the
mSPRT is looked at (at most every ``check_interval_s``) and its decision applied:
a better candidate takes the alias (the registry's audited move, reason
``live A/B: ...``), a worse one ends the experiment and the alias stays.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mloop._clock import Clock, SystemClock
from mloop.errors import InvalidInput, NotFound
from mloop.gateway._ab import AbDecision, Arm, Experiment, ab_decision, assign_arm, check_experiment
from mloop.gateway._ab_store import ExperimentStore
from mloop.gateway._prompts import PromptRegistry, PromptVersion, parse_ref
from mloop.gateway._scorers import Case, Scorer, scorer_from_spec
from mloop.store import audit_events

if TYPE_CHECKING:
    from mloop.gateway._gateway import Gateway

__all__ = ["LiveAB", "Observed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    """Which experiment and arm an answer was counted in."""

    experiment: Experiment
    arm: Arm

    def headers(self) -> dict[str, str]:
        """Response headers naming the experiment and arm."""
        return {"x-mloop-ab-experiment": self.experiment.id, "x-mloop-ab-arm": self.arm}


class LiveAB:
    """Live A/B experiments on prompt aliases, in the shared metadata database."""

    def __init__(
        self,
        registry: PromptRegistry,
        *,
        clock: Clock | None = None,
        cache_ttl_s: float = 2.0,
        check_interval_s: float = 1.0,
        gateway: Gateway | None = None,
    ) -> None:
        self.registry = registry
        # In the registry's database: a promotion moves the alias in the same transaction.
        self.store = ExperimentStore(registry.store)
        self.clock = clock or SystemClock()
        self.cache_ttl_s = cache_ttl_s
        self.check_interval_s = check_interval_s
        self.gateway = gateway  # for judge:ROUTE scorers
        self._running: tuple[float, list[Experiment]] | None = None
        self._next_check: dict[str, float] = {}
        self._scorers: dict[str, Scorer] = {}
        self._lock = threading.Lock()

    # --- the prompt source --------------------------------------------------------------

    def resolve(self, ref: str, key: str | None = None) -> PromptVersion:
        """The version ``ref`` names; for an alias under test, the version of ``key``'s arm."""
        found = self.registry.resolve(ref)
        if key is None:
            return found
        name, selector = parse_ref(ref)
        experiment = next(
            (e for e in self.running() if e.prompt == name and e.alias == selector), None
        )
        if experiment is None:
            return found
        arm = assign_arm(experiment.id, key, experiment.share)
        return self.registry.resolve(f"{name}@{experiment.version(arm)}")

    def running(self) -> list[Experiment]:
        """Running experiments, cached for ``cache_ttl_s`` (the last list if the database fails)."""
        now = self.clock.monotonic()
        with self._lock:
            cached = self._running
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            found = self.store.experiments(running_only=True)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("live A/B: cannot read experiments: %r", exc)
            return [] if cached is None else cached[1]
        with self._lock:
            self._running = (now + self.cache_ttl_s, found)
        return found

    def _forget(self) -> None:
        with self._lock:
            self._running = None

    # --- operator actions ---------------------------------------------------------------

    def start(
        self,
        ref: str,
        candidate: int,
        *,
        control: int | None = None,
        share: float = 0.5,
        metric: str = "feedback",
        alpha: float = 0.05,
        mde: float = 0.1,
        min_samples: int = 100,
        case: Mapping[str, Any] | None = None,
        actor: str = "cli",
    ) -> Experiment:
        """Start testing ``candidate`` against what ``ref`` (``name@alias``) names now."""
        name, alias = parse_ref(ref)
        if alias == "latest" or alias.isdigit():
            raise InvalidInput(
                f"A live A/B runs on an alias, e.g. {name}@production; {ref!r} names a version."
            )
        if control is None:
            control = self.registry.lookup(ref).version
        self.registry.get(name, control)
        self.registry.get(name, candidate)
        if metric != "feedback" and not metric.startswith("judge:"):
            scorer_from_spec(metric)  # a typo fails now, not on the first answer
        unknown = set(case or {}) - {"expected", "rubric", "schema"}
        if unknown:
            raise InvalidInput(
                f"Unknown scoring field(s) {sorted(unknown)}; use expected, rubric, schema."
            )
        experiment = Experiment(
            id=f"ab_{uuid.uuid4().hex[:12]}",
            prompt=name,
            alias=alias,
            control=control,
            candidate=candidate,
            share=share,
            metric=metric,
            alpha=alpha,
            mde=mde,
            min_samples=min_samples,
            case=dict(case or {}),
            created_at=self.clock.now(),
            created_by=actor,
        )
        check_experiment(experiment)
        self.store.create(experiment)
        self._audit(experiment, actor, "prompt.ab_start", {"id": experiment.id})
        self._forget()
        return experiment

    def stop(self, experiment_id: str, *, reason: str = "", actor: str = "cli") -> Experiment:
        """End an experiment by hand; the alias stays where it is."""
        experiment = self.store.get(experiment_id)
        why = f"stopped by hand{': ' + reason if reason else ''}"
        details = {"id": experiment_id, "why": why}

        def audit(conn: sa.Connection) -> None:
            self._audit(experiment, actor, "prompt.ab_stop", details, conn)

        if not self.store.finish(experiment_id, "stopped", why, self.clock.now(), then=audit):
            return experiment  # ended already: stopping is idempotent
        self._forget()
        return self.store.get(experiment_id)

    def status(self, experiment_id: str) -> dict[str, Any]:
        """The experiment, each arm's figures and what the test says now (plain data)."""
        experiment = self.store.get(experiment_id)
        arms = self.store.summaries(experiment_id)
        decision = ab_decision(
            experiment, arms["control"]["outcomes"], arms["candidate"]["outcomes"]
        )
        out_arms = {}
        for arm, figures in arms.items():
            summary = figures["outcomes"]
            out_arms[arm] = {
                "version": experiment.version(arm),  # type: ignore[arg-type]
                "requests": figures["requests"],
                "outcomes": summary.n,
                "mean": summary.mean if summary.n else None,
                "variance": summary.variance if summary.n > 1 else None,
            }
        return {**experiment.to_dict(), "arms": out_arms, "decision": decision.to_dict()}

    def evaluate(self, experiment_id: str) -> AbDecision | None:
        """Look at the test and apply its decision; None when the experiment has ended."""
        experiment = self.store.get(experiment_id)
        if experiment.status != "running":
            return None
        arms = self.store.summaries(experiment_id)
        decision = ab_decision(
            experiment, arms["control"]["outcomes"], arms["candidate"]["outcomes"]
        )
        if decision.action == "continue":
            return decision
        e, reason = experiment, decision.reason

        def act(conn: sa.Connection) -> None:
            # In the transaction that ends the experiment: both happen or neither.
            if decision.action == "promote":
                self.registry.move_alias(
                    conn, e.prompt, e.alias, e.candidate, actor="live-ab", why=reason
                )
            else:
                self._audit(e, "live-ab", "prompt.ab_stop", {"id": e.id, "why": reason}, conn)

        status = "promoted" if decision.action == "promote" else "stopped"
        if not self.store.finish(e.id, status, decision.reason, self.clock.now(), then=act):
            return None  # another replica decided first
        self.registry.forget()
        self._forget()
        return decision

    # --- traffic ------------------------------------------------------------------------

    async def observe(
        self,
        *,
        request_id: str,
        key: str,
        served: str,
        messages: Sequence[Mapping[str, Any]],
        output: str | None,
        response_id: str | None = None,
        caller: str | None = None,
    ) -> Observed | None:
        """Count an answer served with template ``served`` (``name@version``) in its arm."""
        name, _, number = served.partition("@")
        if not number.isdigit():
            return None
        for experiment in self.running():
            if experiment.prompt != name:
                continue
            arm = assign_arm(experiment.id, key, experiment.share)
            if experiment.version(arm) != int(number):
                continue  # served by a fallback's prompt, or pinned elsewhere
            score = None
            if experiment.metric != "feedback" and output is not None:
                score = await self._score(experiment, messages, output)
            await asyncio.to_thread(
                self.store.record,
                experiment.id,
                request_id,
                arm,
                at=self.clock.now(),
                response_id=response_id,
                caller=caller,
                score=score,
            )
            if score is not None:
                await self._maybe_evaluate(experiment.id)
            return Observed(experiment, arm)
        return None

    async def feedback(
        self,
        score: float,
        *,
        request_id: str | None = None,
        response_id: str | None = None,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """Record a user's outcome (0 to 1) for an answer; the last feedback counts."""
        if not request_id and not response_id:
            raise InvalidInput("Feedback needs a request_id (or the response's id).")
        experiment_id, arm = await asyncio.to_thread(
            self.store.score,
            score,
            request_id=request_id,
            response_id=response_id,
            caller=caller,
        )
        await self._maybe_evaluate(experiment_id)
        return {"experiment": experiment_id, "arm": arm, "score": score}

    async def _maybe_evaluate(self, experiment_id: str) -> None:
        now = self.clock.monotonic()
        if self._next_check.get(experiment_id, float("-inf")) > now:
            return
        self._next_check[experiment_id] = now + self.check_interval_s
        try:
            await asyncio.to_thread(self.evaluate, experiment_id)
        except (sa.exc.SQLAlchemyError, NotFound) as exc:
            log.warning("live A/B: evaluating %s failed: %r", experiment_id, exc)

    async def _score(
        self, experiment: Experiment, messages: Sequence[Mapping[str, Any]], output: str
    ) -> float | None:
        scorer = self._scorers.get(experiment.metric)
        if scorer is None:
            scorer = scorer_from_spec(experiment.metric, self.gateway)
            self._scorers[experiment.metric] = scorer
        c = experiment.case
        case = Case(
            [dict(m) for m in messages],
            c.get("expected"),
            c.get("rubric"),
            {"schema": c["schema"]} if "schema" in c else {},
        )
        try:
            value = scorer(case, output)
            if inspect.isawaitable(value):
                value = await value
            return max(0.0, min(1.0, float(value)))
        except Exception as exc:  # a scorer that breaks must not break the answer
            log.warning("live A/B: scorer %s failed: %r", experiment.metric, exc)
            return None

    def _audit(
        self,
        experiment: Experiment,
        actor: str,
        action: str,
        details: Mapping[str, Any],
        conn: sa.Connection | None = None,
    ) -> None:
        row = {
            "at": self.clock.now(),
            "actor": actor,
            "action": action,
            "subject": f"prompt:{experiment.prompt}",
            "details": {
                "alias": experiment.alias,
                "control": experiment.control,
                "candidate": experiment.candidate,
                **details,
            },
        }
        if conn is not None:
            conn.execute(audit_events.insert().values(**row))
            return
        with self.registry.store.write() as own:
            own.execute(audit_events.insert().values(**row))
