"""The in-process runner: records every run and step, retries, resumes after a crash."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mloop._clock import Clock
from mloop.errors import MloopError, RetryableError
from mloop.pipelines._protocols import LabeledSource, RolloutStarter, RunTracker
from mloop.pipelines._spec import Pipeline
from mloop.pipelines._steps import STEP_FUNCTIONS, STEPS, RunStopped, StepContext
from mloop.pipelines._store import Run, RunStore
from mloop.pipelines._triggers import TriggerEvent, TriggerState, run_finished

if TYPE_CHECKING:
    from mloop.registry import Registry

__all__ = ["Runner"]

_log = logging.getLogger("mloop.pipelines")


class Runner:
    """Runs pipelines step by step and records everything in the metadata database.

    ``rollout`` receives challengers that pass the gate; ``source`` provides labeled
    rows for pipelines without ``load``; ``tracker`` mirrors finished runs (MLflow).
    ``sleep`` waits between retries and ``timer`` measures predict latency (inject
    both in tests).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        clock: Clock | None = None,
        rollout: RolloutStarter | None = None,
        source: LabeledSource | None = None,
        tracker: RunTracker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timer: Callable[[], float] | None = time.perf_counter,
        actor: str = "mloop-pipelines",
    ) -> None:
        self.registry = registry
        self.clock = clock or registry.clock
        self.rollout = rollout
        self.source = source
        self.tracker = tracker
        self.sleep = sleep
        self.timer = timer
        self.actor = actor
        self.runs = RunStore(registry.store)

    # --- starting ------------------------------------------------------------------

    def create(
        self,
        pipeline: Pipeline,
        trigger: TriggerEvent | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """Record a pending run of ``pipeline``; return its id."""
        event = trigger or TriggerEvent("manual", self.clock.now())
        run_id = f"{pipeline.name}-{uuid.uuid4().hex[:12]}"
        self.runs.create_run(
            run_id,
            pipeline=pipeline.name,
            model=pipeline.model,
            trigger=event.to_dict(),
            params={**dict(pipeline.params), **dict(params or {})},
            steps=STEPS,
            now=self.clock.now(),
        )
        self.registry.record_event(
            pipeline.model,
            "pipeline.run.created",
            {"run": run_id, "pipeline": pipeline.name, "trigger": event.to_dict()},
            actor=self.actor,
        )
        return run_id

    def run(
        self,
        pipeline: Pipeline,
        trigger: TriggerEvent | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Run:
        """Create a run of ``pipeline`` and execute it to the end."""
        return self.execute(pipeline, self.create(pipeline, trigger, params))

    def resume(self, pipelines: Mapping[str, Pipeline]) -> list[Run]:
        """Continue every unfinished run whose pipeline is in ``pipelines`` (after a crash)."""
        done = []
        for run in reversed(self.runs.list_runs(status=("pending", "running"), limit=1000)):
            pipeline = pipelines.get(run.pipeline)
            if pipeline is None:
                _log.warning(
                    "cannot resume run %s: pipeline %r is not loaded", run.id, run.pipeline
                )
                continue
            done.append(self.execute(pipeline, run.id))
        return done

    # --- executing -----------------------------------------------------------------

    def execute(self, pipeline: Pipeline, run_id: str) -> Run:
        """Run every step of ``run_id`` that has not completed yet, in order."""
        run = self.runs.get(run_id)
        if run.done:
            return run
        now = self.clock.now()
        resumed = run.status == "running"
        self.runs.update_run(run.id, status="running", started_at=run.started_at or now)
        if resumed:
            self._event(pipeline, "pipeline.run.resumed", run.id, {})
        outputs = {s.name: dict(s.output) for s in run.steps if s.status == "succeeded"}
        ctx = StepContext(
            pipeline=pipeline,
            run_id=run.id,
            registry=self.registry,
            now=now,
            outputs=outputs,
            rollout=self.rollout,
            source=self.source,
            timer=self.timer,
            actor=self.actor,
        )
        for step in run.steps:
            if step.status in ("succeeded", "skipped"):
                continue
            outcome = self._step(ctx, step.name, step.attempts)
            if outcome is not None:
                return self._finish(pipeline, run.id, *outcome)
        return self._finish(pipeline, run.id, "succeeded", None)

    def _step(self, ctx: StepContext, name: str, attempts: int) -> tuple[str, str | None] | None:
        """Run one step with retries; ``None`` when it succeeded, else (status, error)."""
        p = ctx.pipeline
        ctx.logs = []
        while True:
            attempts += 1
            ctx.now = self.clock.now()
            started = self.clock.now()
            self.runs.update_step(
                ctx.run_id, name, status="running", attempts=attempts, started_at=started
            )
            try:
                output = STEP_FUNCTIONS[name](ctx)
            except RunStopped as stop:
                self._end_step(
                    ctx, name, "failed", ctx.outputs.get(name, {}), stop.report.summary()
                )
                self.runs.update_run(ctx.run_id, reports=self._reports(ctx))
                action = f"pipeline.{stop.report.stage}.failed"
                self._event(p, action, ctx.run_id, stop.report.to_dict())
                return "rejected", stop.report.summary()
            except RetryableError as exc:
                if attempts < p.max_attempts:
                    delay = p.backoff_s * 2 ** (attempts - 1)
                    ctx.log(f"attempt {attempts} failed ({exc.message}); retrying in {delay:g}s")
                    self.runs.update_step(ctx.run_id, name, status="pending", logs=list(ctx.logs))
                    self.sleep(delay)
                    continue
                self._end_step(ctx, name, "failed", {}, exc.message)
                return "failed", f"step {name} failed after {attempts} attempts: {exc.message}"
            except MloopError as exc:
                self._end_step(ctx, name, "failed", {}, exc.message)
                return "failed", f"step {name} failed: {exc.message}"
            except Exception as exc:  # user code: keep the traceback in the step's log
                ctx.logs.extend(traceback.format_exc().splitlines())
                self._end_step(ctx, name, "failed", {}, f"{type(exc).__name__}: {exc}")
                return "failed", f"step {name} failed: {type(exc).__name__}: {exc}"
            ctx.outputs[name] = output
            self._end_step(ctx, name, "succeeded", output, None)
            self._after_step(ctx, name, output)
            return None

    def _end_step(
        self, ctx: StepContext, name: str, status: str, output: Mapping[str, Any], error: str | None
    ) -> None:
        self.runs.update_step(
            ctx.run_id,
            name,
            status=status,
            finished_at=self.clock.now(),
            output=dict(output),
            logs=list(ctx.logs),
            error=error,
        )

    def _reports(self, ctx: StepContext) -> dict[str, Any]:
        return {
            k: ctx.outputs[k]["report"]
            for k in ("validate", "gate")
            if "report" in ctx.outputs.get(k, {})
        }

    def _after_step(self, ctx: StepContext, name: str, output: Mapping[str, Any]) -> None:
        p = ctx.pipeline
        if name == "snapshot":
            self.runs.update_run(ctx.run_id, dataset=output["dataset"])
            self._event(
                p,
                "pipeline.dataset.snapshot",
                ctx.run_id,
                {"dataset": output["dataset"], "rows": output["rows"]},
            )
        elif name in ("validate", "gate"):
            update: dict[str, Any] = {"reports": self._reports(ctx)}
            if name == "gate":
                update["metrics"] = dict(output.get("challenger") or {})
            self.runs.update_run(ctx.run_id, **update)
            self._event(
                p,
                f"pipeline.{'validation' if name == 'validate' else 'gate'}.passed",
                ctx.run_id,
                output["report"],
            )
        elif name == "register":
            self.runs.update_run(ctx.run_id, model_version=int(output["version"]))
        elif name == "rollout" and output.get("strategy"):
            self._event(p, "pipeline.rollout.started", ctx.run_id, dict(output))

    def _finish(self, pipeline: Pipeline, run_id: str, status: str, error: str | None) -> Run:
        now = self.clock.now()
        self.runs.update_run(run_id, status=status, finished_at=now, error=error)
        self._event(pipeline, f"pipeline.run.{status}", run_id, {"error": error})

        def clear(state: TriggerState) -> tuple[None, TriggerState]:
            return None, run_finished(state) if state.running in (run_id, "(starting)") else state

        self.runs.transition(pipeline.name, now, clear)
        run = self.runs.get(run_id)
        if self.tracker is not None:
            try:
                tracked = self.tracker.log_run(run)
            except Exception as exc:  # the tracker is a mirror: never fail the run for it
                _log.warning("could not log run %s to the tracker: %s", run_id, exc)
            else:
                if tracked:
                    self.runs.update_run(
                        run_id, metrics={**dict(run.metrics), "tracker_run_id": tracked}
                    )
                    run = self.runs.get(run_id)
        return run

    def _event(
        self, pipeline: Pipeline, action: str, run_id: str, details: Mapping[str, Any]
    ) -> None:
        self.registry.record_event(
            pipeline.model,
            action,
            {"run": run_id, "pipeline": pipeline.name, **dict(details)},
            actor=self.actor,
        )

    def get(self, run_id: str) -> Run:
        """The run ``run_id`` with its steps."""
        return self.runs.get(run_id)

    def list_runs(self, pipeline: str | None = None, limit: int = 50) -> list[Run]:
        """Runs, newest first."""
        return self.runs.list_runs(pipeline, limit=limit)
