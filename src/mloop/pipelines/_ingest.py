"""Ingest flows: a source (HTTP JSON API, files) → an optional transform → a SQL table.

Each run is recorded in the same tables as retraining runs (``mloop runs list`` shows
it), one step each for extract, transform and load, with row counts as outputs. The
sink upserts on a key, so running a flow again (on a schedule, or after a failure)
does not duplicate rows. :func:`as_prefect_ingest_flow` runs the same flow under Prefect.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from mloop._clock import Clock, SystemClock
from mloop._deps import require
from mloop.errors import MloopError
from mloop.pipelines._sql_sink import SqlSink, WriteResult
from mloop.pipelines._store import Run, RunStore

__all__ = ["INGEST_STEPS", "FrameSource", "IngestFlow", "as_prefect_ingest_flow", "run_ingest"]

INGEST_STEPS = ("extract", "transform", "load")


class FrameSource(Protocol):
    """Anything that reads its data as one frame (``HttpJsonSource``, ``FileSource``)."""

    def read(self) -> pd.DataFrame:
        """All rows the source holds now."""
        ...


@dataclass(frozen=True)
class IngestFlow:
    """Where data comes from, what happens to it, which table it lands in."""

    name: str
    source: FrameSource
    sink: SqlSink
    transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None


def run_ingest(flow: IngestFlow, runs: RunStore, *, clock: Clock | None = None) -> Run:
    """Run ``flow`` once, recording the run and each step; returns the finished run."""
    clock = clock or SystemClock()
    run_id = f"{flow.name}-{uuid.uuid4().hex[:12]}"
    runs.create_run(
        run_id,
        pipeline=flow.name,
        model=f"ingest:{flow.sink.table}",
        trigger={"kind": "manual", "at": clock.now()},
        params={"source": type(flow.source).__name__, "table": flow.sink.table},
        steps=INGEST_STEPS,
        now=clock.now(),
    )
    runs.update_run(run_id, status="running", started_at=clock.now())
    frame: pd.DataFrame | None = None
    written: WriteResult | None = None
    for step in INGEST_STEPS:
        runs.update_step(run_id, step, status="running", attempts=1, started_at=clock.now())
        try:
            if step == "extract":
                frame = flow.source.read()
                output: dict[str, Any] = {"rows": len(frame), "columns": list(map(str, frame))}
                line = f"read {len(frame)} rows, {frame.shape[1]} columns"
            elif step == "transform":
                assert frame is not None
                if flow.transform is not None:
                    frame = flow.transform(frame)
                output = {"rows": len(frame), "applied": flow.transform is not None}
                line = f"{len(frame)} rows" if flow.transform else "no transform"
            else:
                assert frame is not None
                written = flow.sink.write(frame)
                output = written.to_dict()
                line = (
                    f"{written.rows} rows into {flow.sink.table}: {written.inserted} new, "
                    f"{written.updated} updated"
                )
        except Exception as exc:
            message = exc.message if isinstance(exc, MloopError) else f"{type(exc).__name__}: {exc}"
            logs = [] if isinstance(exc, MloopError) else traceback.format_exc().splitlines()
            runs.update_step(
                run_id, step, status="failed", finished_at=clock.now(), logs=logs, error=message
            )
            runs.update_run(
                run_id, status="failed", finished_at=clock.now(), error=f"step {step}: {message}"
            )
            return runs.get(run_id)
        runs.update_step(
            run_id, step, status="succeeded", finished_at=clock.now(), output=output, logs=[line]
        )
    assert written is not None
    runs.update_run(
        run_id, status="succeeded", finished_at=clock.now(), metrics=dict(written.to_dict())
    )
    return runs.get(run_id)


def as_prefect_ingest_flow(flow: IngestFlow, runs: RunStore) -> Any:
    """A Prefect flow named after ``flow`` that runs it once and returns the run as a dict."""
    prefect = require("prefect", "running ingest flows as Prefect flows")

    @prefect.flow(name=flow.name)  # type: ignore[untyped-decorator]
    def ingest() -> dict[str, Any]:
        return run_ingest(flow, runs).to_dict()

    return ingest
