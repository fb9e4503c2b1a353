"""Persistence of pipeline definitions, runs, steps and trigger state in the metadata DB."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mloop.errors import NotFound
from mloop.pipelines._tables import pipeline_defs, pipeline_runs, pipeline_steps, pipeline_triggers
from mloop.pipelines._triggers import TriggerState
from mloop.store import MetadataStore

__all__ = ["PipelineDefinition", "Run", "RunStore", "StepRecord"]

_T = TypeVar("_T")
DONE = ("succeeded", "rejected", "failed")


@dataclass(frozen=True)
class StepRecord:
    """One step of a run: status, attempts, timings, output and log lines."""

    name: str
    position: int
    status: str  # pending | running | succeeded | failed | skipped
    attempts: int
    started_at: float | None
    finished_at: float | None
    output: Mapping[str, Any]
    logs: tuple[str, ...]
    error: str | None

    @property
    def duration_s(self) -> float | None:
        """Seconds the step took (None until it finished)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "output": dict(self.output),
            "logs": list(self.logs),
            "error": self.error,
        }


@dataclass(frozen=True)
class Run:
    """One pipeline run: what started it, its steps, dataset, reports and outcome."""

    id: str
    pipeline: str
    model: str
    status: str  # pending | running | succeeded | rejected | failed
    trigger: Mapping[str, Any]
    params: Mapping[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    dataset: str | None
    model_version: int | None
    metrics: Mapping[str, Any]
    reports: Mapping[str, Any]
    error: str | None
    steps: tuple[StepRecord, ...] = field(default=())

    @property
    def done(self) -> bool:
        """True once the run ended (succeeded, rejected or failed)."""
        return self.status in DONE

    def step(self, name: str) -> StepRecord:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise NotFound(
            f"Run {self.id} has no step {name!r}; steps: {[s.name for s in self.steps]}."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "model": self.model,
            "status": self.status,
            "trigger": dict(self.trigger),
            "params": dict(self.params),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "dataset": self.dataset,
            "model_version": self.model_version,
            "metrics": dict(self.metrics),
            "reports": dict(self.reports),
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class PipelineDefinition:
    """A pipeline registered with ``mloop pipelines add``."""

    name: str
    path: str
    model: str
    options: Mapping[str, Any]
    created_at: float


def _step(row: Row[Any]) -> StepRecord:
    return StepRecord(
        name=row.name,
        position=row.position,
        status=row.status,
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        output=row.output or {},
        logs=tuple(row.logs or ()),
        error=row.error,
    )


def _run(row: Row[Any], steps: Sequence[StepRecord]) -> Run:
    return Run(
        id=row.id,
        pipeline=row.pipeline,
        model=row.model,
        status=row.status,
        trigger=row.trigger or {},
        params=row.params or {},
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        dataset=row.dataset,
        model_version=row.model_version,
        metrics=row.metrics or {},
        reports=row.reports or {},
        error=row.error,
        steps=tuple(steps),
    )


class RunStore:
    """Reads and writes runs, steps, definitions and trigger state."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    # --- runs ----------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        pipeline: str,
        model: str,
        trigger: Mapping[str, Any],
        params: Mapping[str, Any],
        steps: Sequence[str],
        now: float,
    ) -> None:
        """Insert a pending run with its pending steps."""
        with self.store.write() as conn:
            conn.execute(
                pipeline_runs.insert().values(
                    id=run_id,
                    pipeline=pipeline,
                    model=model,
                    status="pending",
                    trigger=dict(trigger),
                    params=dict(params),
                    created_at=now,
                    metrics={},
                    reports={},
                )
            )
            for i, name in enumerate(steps):
                conn.execute(
                    pipeline_steps.insert().values(
                        run_id=run_id,
                        name=name,
                        position=i,
                        status="pending",
                        attempts=0,
                        output={},
                        logs=[],
                    )
                )

    def update_run(self, run_id: str, **values: Any) -> None:
        """Set columns of one run."""
        with self.store.write() as conn:
            conn.execute(
                pipeline_runs.update().where(pipeline_runs.c.id == run_id).values(**values)
            )

    def update_step(self, run_id: str, name: str, **values: Any) -> None:
        """Set columns of one step."""
        with self.store.write() as conn:
            conn.execute(
                pipeline_steps.update()
                .where(pipeline_steps.c.run_id == run_id, pipeline_steps.c.name == name)
                .values(**values)
            )

    def get(self, run_id: str) -> Run:
        """The run ``run_id`` (a unique prefix is enough) with its steps."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(pipeline_runs).where(pipeline_runs.c.id.startswith(run_id)).limit(2)
            ).all()
            if len(rows) != 1:
                recent = conn.execute(
                    sa.select(pipeline_runs.c.id)
                    .order_by(pipeline_runs.c.created_at.desc())
                    .limit(5)
                ).scalars()
                what = "matches several runs" if rows else "matches no run"
                raise NotFound(
                    f"Run id {run_id!r} {what}; recent runs: {list(recent)}. See: mloop runs list"
                )
            return self._with_steps(conn, [rows[0]])[0]

    def list_runs(
        self, pipeline: str | None = None, *, status: Sequence[str] = (), limit: int = 50
    ) -> list[Run]:
        """Runs, newest first, optionally of one pipeline and with given statuses."""
        query = sa.select(pipeline_runs).order_by(pipeline_runs.c.created_at.desc()).limit(limit)
        if pipeline is not None:
            query = query.where(pipeline_runs.c.pipeline == pipeline)
        if status:
            query = query.where(pipeline_runs.c.status.in_(list(status)))
        with self.store.read() as conn:
            return self._with_steps(conn, conn.execute(query).all())

    def _with_steps(self, conn: Connection, rows: Sequence[Row[Any]]) -> list[Run]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        steps: dict[str, list[StepRecord]] = {i: [] for i in ids}
        for s in conn.execute(
            sa.select(pipeline_steps)
            .where(pipeline_steps.c.run_id.in_(ids))
            .order_by(pipeline_steps.c.position)
        ).all():
            steps[s.run_id].append(_step(s))
        return [_run(r, steps[r.id]) for r in rows]

    # --- definitions ---------------------------------------------------------------

    def add_definition(
        self, name: str, path: str, model: str, options: Mapping[str, Any], now: float
    ) -> None:
        """Register (or replace) a pipeline by import path."""
        with self.store.write() as conn:
            conn.execute(pipeline_defs.delete().where(pipeline_defs.c.name == name))
            conn.execute(
                pipeline_defs.insert().values(
                    name=name, path=path, model=model, options=dict(options), created_at=now
                )
            )

    def definitions(self) -> list[PipelineDefinition]:
        """Every pipeline registered with ``mloop pipelines add``."""
        with self.store.read() as conn:
            rows = conn.execute(sa.select(pipeline_defs).order_by(pipeline_defs.c.name)).all()
        return [
            PipelineDefinition(r.name, r.path, r.model, r.options or {}, r.created_at) for r in rows
        ]

    # --- trigger state -------------------------------------------------------------

    def transition(
        self, pipeline: str, now: float, change: Callable[[TriggerState], tuple[_T, TriggerState]]
    ) -> _T:
        """Atomically read the trigger state, apply ``change`` and store the new state.

        The write transaction (SQLite ``BEGIN IMMEDIATE``, PostgreSQL row lock) makes
        concurrent alerts on several replicas see each other's decisions.
        """
        with self.store.write() as conn:
            insert: Any
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            # Make sure the row exists, then lock it: concurrent first events serialise too.
            conn.execute(
                insert(pipeline_triggers)
                .values(pipeline=pipeline, state=TriggerState().to_dict(), updated_at=now)
                .on_conflict_do_nothing(index_elements=["pipeline"])
            )
            query = sa.select(pipeline_triggers.c.state).where(
                pipeline_triggers.c.pipeline == pipeline
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            result, new = change(TriggerState.from_dict(conn.execute(query).scalar()))
            conn.execute(
                pipeline_triggers.update()
                .where(pipeline_triggers.c.pipeline == pipeline)
                .values(state=new.to_dict(), updated_at=now)
            )
            return result

    def trigger_state(self, pipeline: str) -> TriggerState:
        """The stored trigger state of ``pipeline`` (initial state if none)."""
        with self.store.read() as conn:
            raw = conn.execute(
                sa.select(pipeline_triggers.c.state).where(pipeline_triggers.c.pipeline == pipeline)
            ).scalar()
        return TriggerState.from_dict(raw)
