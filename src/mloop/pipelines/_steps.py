"""The steps of a run: snapshot → validate → train → gate → register → rollout.

Each step reads what earlier steps recorded (dataset hash, model artifact, champion
version) from the run, so a restarted runner continues from the last completed step.
Big objects (the frame, the trained model) are cached in memory and otherwise
reloaded from the artifact store by hash.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import pandas as pd

from mloop.errors import ConfigurationError, InvalidInput, NotFound
from mloop.pipelines._checks import Report
from mloop.pipelines._dataset import load_snapshot, snapshot
from mloop.pipelines._gate import gate_decision, slice_scores, time_holdout
from mloop.pipelines._metrics import as_model, score
from mloop.pipelines._protocols import LabeledSource, RolloutStarter
from mloop.pipelines._spec import Pipeline, TrainingData, Window
from mloop.pipelines._validation import validate_data
from mloop.types import Predictions

if TYPE_CHECKING:
    from mloop.registry import ModelVersion, Registry

__all__ = ["STEPS", "RunStopped", "StepContext"]

STEPS = ("snapshot", "validate", "train", "gate", "register", "rollout")


class RunStopped(Exception):
    """A check failed: the run ends as ``rejected`` with this report (not an error)."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.summary())
        self.report = report


@dataclass
class StepContext:
    """What a step needs: the pipeline, its run, the registry and earlier outputs."""

    pipeline: Pipeline
    run_id: str
    registry: Registry
    now: float
    outputs: dict[str, dict[str, Any]]
    rollout: RolloutStarter | None = None
    source: LabeledSource | None = None
    timer: Callable[[], float] | None = None
    actor: str = "mloop-pipelines"
    cache: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        """Append a line to the step's log."""
        self.logs.append(message)

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Keep what user code prints in the step's log."""
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                yield
        finally:
            self.logs.extend(line for line in buffer.getvalue().splitlines() if line.strip())

    # --- shared lookups ------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        """The snapshotted dataset (from memory or the artifact store)."""
        if "frame" not in self.cache:
            digest = self.outputs["snapshot"]["dataset"]
            self.cache["frame"] = load_snapshot(self.registry.artifacts, digest)
        frame: pd.DataFrame = self.cache["frame"]
        return frame

    @property
    def features(self) -> list[str]:
        """Feature columns chosen at the snapshot step."""
        return list(self.outputs["snapshot"]["features"])

    def window(self) -> Window:
        """The window the snapshot step loaded."""
        start, end = self.outputs["snapshot"]["window"]
        return Window(float(start), float(end))

    def split(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, holdout): the holdout is the freshest rows by time."""
        gate = self.pipeline.gate
        return time_holdout(
            self.frame(), self.pipeline.time_column, gate.holdout_fraction, gate.min_holdout_rows
        )

    def champion(self) -> ModelVersion | None:
        """The production version when this run validated its data (fixed for the run)."""
        recorded = self.outputs.get("validate", {}).get("champion", "unset")
        name = self.pipeline.model
        if recorded is None:
            return None
        if recorded != "unset":
            return self.registry.get(f"{name}:{int(recorded)}")
        try:
            return self.registry.get(f"{name}@production")
        except NotFound:
            return None

    def champion_predictions(self, mv: ModelVersion, X: pd.DataFrame) -> Predictions:
        """The champion's predictions for ``X``.

        Rows its contract rejects are not predicted: they get no label and uniform
        probabilities (never "confident"), so one bad cell cannot break the step.
        """
        key = f"champion:{mv.version}"
        if key not in self.cache:
            self.cache[key] = self.registry.load(mv)
        predictor = self.cache[key]
        if mv.schema is None:
            result: Predictions = predictor.model.predict(X)
            return result
        frame, violations = mv.schema.coerce(X)
        bad = sorted({v.row for v in violations if v.severity == "reject" and v.row is not None})
        if not bad:
            result = predictor.model.predict(frame)
            return result
        keep = np.setdiff1d(np.arange(len(frame)), bad)
        part: Predictions = predictor.model.predict(frame.iloc[keep].reset_index(drop=True))
        if part.task == "regression":
            values = np.full(len(frame), np.nan)
            values[keep] = np.asarray(part.values, dtype=np.float64)
            return Predictions(task="regression", values=values)
        labels = np.full(len(frame), None, dtype=object)
        labels[keep] = np.asarray(part.labels, dtype=object)
        probs = None
        if part.probabilities is not None:
            k = len(part.classes)
            probs = np.full((len(frame), k), 1.0 / max(k, 1))
            probs[keep] = np.asarray(part.probabilities, dtype=np.float64)
        return Predictions(
            task="classification", labels=labels, probabilities=probs, classes=part.classes
        )

    def challenger(self) -> Any:
        """The trained model (from memory or its pickled artifact)."""
        if "model" not in self.cache:
            digest = self.outputs["train"]["model_artifact"]
            blob = self.registry.artifacts.read_bytes(digest, name=f"run {self.run_id} model")
            self.cache["model"] = cloudpickle.loads(blob)
        return self.cache["model"]


# --- steps ---------------------------------------------------------------------------


def step_snapshot(ctx: StepContext) -> dict[str, Any]:
    """Load the window's rows, choose the features, store the Parquet snapshot."""
    p = ctx.pipeline
    window = Window(ctx.now - p.window, ctx.now)
    with ctx.capture():
        if p.load is not None:
            frame = p.load(window)
        elif ctx.source is not None:
            frame = ctx.source.labeled_rows(p.model, window)
        else:
            raise ConfigurationError(
                f"Pipeline {p.name!r} has no load() and no labeled source (prediction log joined "
                "with feedback) was given to the runner; give the pipeline a load function."
            )
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"load() returned {type(frame).__name__}; return a pandas DataFrame.")
    if p.target not in frame.columns:
        raise InvalidInput(
            f"The loaded data has no target column {p.target!r}; columns: {list(frame.columns)}."
        )
    frame = frame[frame[p.target].notna()].reset_index(drop=True)
    features = _features(ctx, frame)
    snap = snapshot(frame, ctx.registry.artifacts)
    ctx.cache["frame"] = load_snapshot(ctx.registry.artifacts, snap.sha256)
    ctx.log(f"loaded {snap.rows} labeled rows for [{window.start:.0f}, {window.end:.0f})")
    ctx.log(f"dataset version sha256:{snap.sha256[:12]}")
    return {
        "dataset": snap.sha256,
        "rows": snap.rows,
        "columns": list(snap.columns),
        "features": features,
        "window": [window.start, window.end],
    }


def _features(ctx: StepContext, frame: pd.DataFrame) -> list[str]:
    p = ctx.pipeline
    if p.features is not None:
        chosen = list(p.features)
    else:
        champion = ctx.champion()
        if champion is not None and champion.schema is not None:
            chosen = list(champion.schema.names)
        else:
            skip = {p.target, p.time_column}
            chosen = [str(c) for c in frame.columns if c not in skip]
    missing = [c for c in chosen if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"The loaded data lacks feature column(s) {missing}; columns: {list(frame.columns)}."
        )
    return chosen


def step_validate(ctx: StepContext) -> dict[str, Any]:
    """Check the data against the champion's contract and profile before training."""
    champion = ctx.champion()
    frame = ctx.frame()
    predictions = None
    if champion is not None:
        predictions = ctx.champion_predictions(champion, frame[ctx.features])
        ctx.log(f"champion {champion.ref} predicted {len(frame)} rows for the label checks")
    else:
        ctx.log("no production version yet: contract, label and flip checks are skipped")
    report = validate_data(
        frame,
        features=ctx.features,
        target=ctx.pipeline.target,
        config=ctx.pipeline.validation,
        schema=None if champion is None else champion.schema,
        profile=None if champion is None else champion.profile,
        champion=predictions,
    )
    ctx.log(report.summary())
    output = {
        "report": report.to_dict(),
        "champion": None if champion is None else champion.version,
    }
    if not report.passed:
        ctx.outputs["validate"] = output
        raise RunStopped(report)
    return output


def step_train(ctx: StepContext) -> dict[str, Any]:
    """Train on everything but the freshest holdout; keep the model as an artifact."""
    train, holdout = ctx.split()
    data = TrainingData(
        train.reset_index(drop=True), tuple(ctx.features), ctx.pipeline.target, ctx.window()
    )
    with ctx.capture():
        model = ctx.pipeline.train(data)
    if model is None:
        raise InvalidInput(
            f"train() of pipeline {ctx.pipeline.name!r} returned None; return the fitted model."
        )
    blob = cloudpickle.dumps(model)
    digest = ctx.registry.artifacts.put_bytes(blob)
    ctx.cache["model"] = model
    ctx.log(
        f"trained {type(model).__name__} on {len(train)} rows; holdout {len(holdout)} freshest rows"
    )
    return {
        "model_artifact": digest,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "size_bytes": len(blob),
    }


def _latency_p95_ms(ctx: StepContext, model: Any, X: pd.DataFrame) -> float | None:
    if ctx.timer is None or len(X) == 0:
        return None
    rows = min(ctx.pipeline.gate.latency_rows, len(X))
    view = as_model(model)
    samples = []
    for i in range(rows):
        one = X.iloc[[i]]
        start = ctx.timer()
        view.predict(one)
        samples.append((ctx.timer() - start) * 1000.0)
    return float(np.percentile(samples, 95))


def step_gate(ctx: StepContext) -> dict[str, Any]:
    """Score challenger and champion on the same freshest holdout; apply the gate."""
    p = ctx.pipeline
    _, holdout = ctx.split()
    holdout = holdout.reset_index(drop=True)
    X, y = holdout[ctx.features], holdout[p.target]
    model = ctx.challenger()
    challenger_pred = as_model(model).predict(X)
    challenger = score(challenger_pred, y)
    if p.evaluate is not None:
        with ctx.capture():
            challenger.update({k: float(v) for k, v in p.evaluate(model, holdout).items()})
    champion_mv = ctx.champion()
    champion: dict[str, float] | None = None
    slices = []
    metric = p.gate.metric_for(challenger_pred.task)
    if champion_mv is not None:
        champion_pred = ctx.champion_predictions(champion_mv, X)
        champion = score(champion_pred, y)
        slices = slice_scores(
            holdout,
            p.target,
            p.gate.slices,
            metric,
            challenger_pred,
            champion_pred,
            p.gate.min_slice_rows,
        )
    report = gate_decision(
        p.gate,
        task=challenger_pred.task,
        challenger=challenger,
        champion=champion,
        slices=slices,
        latency_p95_ms=_latency_p95_ms(ctx, model, X),
        size_bytes=int(ctx.outputs["train"]["size_bytes"]),
    )
    ctx.log(report.summary())
    output = {"report": report.to_dict(), "challenger": challenger, "champion": champion}
    if not report.passed:
        ctx.outputs["gate"] = output
        raise RunStopped(report)
    return output


def step_register(ctx: StepContext) -> dict[str, Any]:
    """Register the challenger with alias ``challenger``, linked to its dataset (idempotent)."""
    p = ctx.pipeline
    reg = ctx.registry
    with contextlib.suppress(NotFound):
        for mv in reg.versions(p.model):
            if mv.tags.get("pipeline_run") == ctx.run_id:  # registered before a crash
                ctx.log(f"already registered as {mv.ref} before a restart")
                return {"version": mv.version}
    train, holdout = ctx.split()
    digest = ctx.outputs["snapshot"]["dataset"]
    champion = ctx.outputs["validate"].get("champion")
    mv = reg.register(
        ctx.challenger(),
        p.model,
        training_data=train[ctx.features].reset_index(drop=True),
        target=train[p.target].to_numpy(),
        reference_data=holdout[ctx.features].reset_index(drop=True),
        reference_target=holdout[p.target].to_numpy(),
        metrics={k: float(v) for k, v in ctx.outputs["gate"]["challenger"].items()},
        params=dict(p.params),
        tags={"pipeline": p.name, "pipeline_run": ctx.run_id, "dataset_sha256": digest},
        alias="challenger",
        description=f"Trained by pipeline {p.name!r}, run {ctx.run_id}.",
        actor=ctx.actor,
        lineage={
            "dataset_sha256": digest,
            "pipeline": p.name,
            "pipeline_run": ctx.run_id,
            "window": ctx.outputs["snapshot"]["window"],
            "champion_version": champion,
        },
    )
    ctx.log(f"registered {mv.ref} with alias challenger")
    return {"version": mv.version}


def step_rollout(ctx: StepContext) -> dict[str, Any]:
    """Hand the registered challenger to the rollout policy (or say how to promote it)."""
    p = ctx.pipeline
    version = int(ctx.outputs["register"]["version"])
    strategy = p.rollout.strategy
    first = ctx.outputs.get("validate", {}).get("champion") is None
    if strategy == "none" or ctx.rollout is None or first:
        why = (
            "rollout strategy is 'none'"
            if strategy == "none"
            else "no production version to roll out against (first model)"
            if first
            else "no rollout controller given"
        )
        ctx.log(f"{why}; promote by hand: mloop alias set {p.model} production {version}")
        return {"strategy": None, "skipped": why}
    handle = ctx.rollout.start(p.model, version, strategy, **dict(p.rollout.policy))
    ctx.log(f"rollout of {p.model}:{version} started ({strategy})")
    return {"strategy": strategy, "policy": dict(p.rollout.policy), "handle": _plain(handle)}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


STEP_FUNCTIONS: dict[str, Callable[[StepContext], dict[str, Any]]] = {
    "snapshot": step_snapshot,
    "validate": step_validate,
    "train": step_train,
    "gate": step_gate,
    "register": step_register,
    "rollout": step_rollout,
}
