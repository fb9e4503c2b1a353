"""Mirror finished runs to MLflow tracking (params, metrics, tags, reports)."""

from __future__ import annotations

import math
from typing import Any

from mloop._deps import require
from mloop.pipelines._store import Run

__all__ = ["MlflowTracker"]


class MlflowTracker:
    """A ``RunTracker`` that logs each finished run to the MLflow server at ``tracking_uri``.

    The CLI passes ``MLFLOW_TRACKING_URI``; tests use a local ``file:`` store.
    """

    def __init__(self, tracking_uri: str, experiment: str = "mloop-pipelines") -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment

    def log_run(self, run: Run) -> str | None:
        """Log ``run``; return the MLflow run id."""
        require("mlflow", "logging pipeline runs to MLflow")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id if found is not None else client.create_experiment(self.experiment)
        )
        tags = {
            "mloop.run_id": run.id,
            "mloop.pipeline": run.pipeline,
            "mloop.model": run.model,
            "mloop.status": run.status,
            "mloop.trigger": str(run.trigger.get("kind", "")),
            "mloop.dataset_sha256": run.dataset or "",
        }
        if run.model_version is not None:
            tags["mloop.model_version"] = str(run.model_version)
        created = client.create_run(experiment_id, run_name=run.id, tags=tags)
        mlflow_id: str = created.info.run_id
        for key, value in run.params.items():
            client.log_param(mlflow_id, key, str(value)[:500])
        for key, value in _numbers(run.metrics).items():
            client.log_metric(mlflow_id, key, value)
        for step in run.steps:
            if step.duration_s is not None:
                client.log_metric(mlflow_id, f"step_{step.name}_seconds", step.duration_s)
        client.log_dict(mlflow_id, run.to_dict(), "mloop_run.json")
        status = "FINISHED" if run.status == "succeeded" else "FAILED"
        client.set_terminated(mlflow_id, status=status)
        return mlflow_id


def _numbers(values: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in dict(values).items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[str(key)] = float(value)
    return out
