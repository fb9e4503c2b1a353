"""Run a pipeline as a Prefect flow (``pip install 'mloop[prefect]'``).

The flow wraps the same runner, so runs are recorded, retried and resumable exactly as
in-process; Prefect adds its own scheduling, UI and workers on top.
"""

from __future__ import annotations

from typing import Any

from mloop._deps import require
from mloop.pipelines._runner import Runner
from mloop.pipelines._spec import Pipeline
from mloop.pipelines._triggers import TriggerEvent

__all__ = ["as_prefect_flow"]


def as_prefect_flow(runner: Runner, pipeline: Pipeline) -> Any:
    """A Prefect flow named after ``pipeline`` that executes one run and returns it as a dict."""
    prefect = require("prefect", "running pipelines as Prefect flows")

    @prefect.task(name=f"{pipeline.name}-run")  # type: ignore[untyped-decorator]
    def execute(run_id: str) -> dict[str, Any]:
        return runner.execute(pipeline, run_id).to_dict()

    @prefect.flow(name=pipeline.name)  # type: ignore[untyped-decorator]
    def flow(run_id: str | None = None) -> dict[str, Any]:
        chosen = run_id or runner.create(pipeline, TriggerEvent("manual", runner.clock.now()))
        result: dict[str, Any] = execute(chosen)
        return result

    return flow
