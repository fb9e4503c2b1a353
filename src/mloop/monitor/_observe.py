"""One window of logged predictions turned into monitoring numbers (pure: rows in, numbers out).

Drift is the engine's (counts on the reference profile's bins, effect-size verdicts);
realized performance uses the rows that have labels, estimated performance (CBPE)
uses every row's probabilities and the version's calibration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from mloop.journal import as_new_class
from mloop.monitor._cbpe import estimate_performance
from mloop.monitor._counting import WindowCounts
from mloop.monitor._drift import DriftReport, drift_from_counts
from mloop.monitor._metrics import classification_metrics, regression_metrics
from mloop.monitor._reference import as_reference

__all__ = ["WindowStatus", "observe_rows"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(value: Any) -> float | None:
    return None if value is None else _clean(float(value))


@dataclass(frozen=True)
class WindowStatus:
    """Monitoring numbers of one time window of one model (optionally one version)."""

    model: str
    start: float
    end: float
    rows: int
    versions: Mapping[int, int] = field(default_factory=dict)
    drift: DriftReport | None = None
    prediction_drift: DriftReport | None = None
    missing_rate: float | None = None
    out_of_contract_rate: float | None = None
    labelled: int = 0
    performance: Mapping[str, float] = field(default_factory=dict)
    estimated: Mapping[str, float] = field(default_factory=dict)
    # Labels that joined but cannot score this model (not one of its classes, text
    # for a regressor): left out of ``labelled`` and ``performance``.
    unscorable_labels: int = 0
    # Labels of a class the model never saw (counted in ``labelled``, as misses).
    new_class_labels: int = 0

    @property
    def drift_share(self) -> float | None:
        """Share of features that drifted (None without a reference or rows)."""
        return None if self.drift is None else self.drift.share_drifted

    def metric(self, name: str) -> float | None:
        """The value an alert rule named ``name`` watches (None: no data this window)."""
        if self.rows == 0:
            return 0.0 if name == "rows" else None
        if name == "rows":
            return float(self.rows)
        if name == "drift_share":
            return self.drift_share
        if name == "prediction_drift":
            if self.prediction_drift is None or not self.prediction_drift.columns:
                return None
            return float(self.prediction_drift.columns[0].effect)
        if name.startswith("feature_drift:"):
            column = name.split(":", 1)[1]
            if self.drift is None:
                return None
            found = [c for c in self.drift.columns if c.column == column]
            return float(found[0].effect) if found else None
        if name == "missing_rate":
            return self.missing_rate
        if name == "out_of_contract_rate":
            return self.out_of_contract_rate
        if name.startswith("estimated_"):
            return _num(self.estimated.get(name[len("estimated_") :]))
        return _num(self.performance.get(name))

    def guard_metrics(self) -> dict[str, Any]:
        """What a rollout guard reads (names match ``rollout.VersionStats`` fields)."""
        return {
            "rows": self.rows,
            "prediction_drift": self.metric("prediction_drift"),
            "labels": self.labelled,
            "accuracy": self.metric("accuracy"),
            "estimated_accuracy": self.metric("estimated_accuracy"),
        }

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """JSON-ready summary; ``detail`` adds the full drift reports."""
        features = {}
        if self.drift is not None:
            features = {
                c.column: {
                    "method": c.method,
                    "effect": _clean(c.effect),
                    "threshold": _clean(c.threshold),
                    "drifted": c.drifted,
                }
                for c in self.drift.columns
            }
        pred = None
        if self.prediction_drift is not None and self.prediction_drift.columns:
            c = self.prediction_drift.columns[0]
            pred = {"method": c.method, "effect": _clean(c.effect), "drifted": c.drifted}
        out: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "versions": {str(k): v for k, v in self.versions.items()},
            "drift_share": self.drift_share,
            "drifted_features": [] if self.drift is None else self.drift.drifted_columns,
            "features": features,
            "prediction_drift": pred,
            "missing_rate": self.missing_rate,
            "out_of_contract_rate": self.out_of_contract_rate,
            "labelled": self.labelled,
            "unscorable_labels": self.unscorable_labels,
            "new_class_labels": self.new_class_labels,
            "performance": {k: _clean(v) for k, v in self.performance.items()},
            "estimated_performance": {k: _clean(v) for k, v in self.estimated.items()},
        }
        if detail:
            out["drift_report"] = None if self.drift is None else self.drift.to_dict()
            out["prediction_drift_report"] = (
                None if self.prediction_drift is None else self.prediction_drift.to_dict()
            )
        return out


def _probabilities(
    outputs: Sequence[Mapping[str, Any]], classes: Sequence[Any]
) -> np.ndarray | None:
    names = [str(c) for c in classes]
    if len(names) < 2 or not outputs or "probabilities" not in outputs[0]:
        return None
    try:
        return np.array(
            [[float(o["probabilities"][n]) for n in names] for o in outputs], dtype=np.float64
        )
    except (KeyError, TypeError, ValueError):
        return None


_NEW_CLASS = "\x00new class"  # one column for every class the model never saw


def _scorable(labels: pd.Series, task: str, classes: Sequence[Any]) -> np.ndarray:
    """Which labels can score the model: one of its classes (as text), a class of the
    same kind it never saw (a miss), or, for a regressor, a finite number."""
    if task == "classification":
        names = {str(c) for c in classes}
        known = set(classes)
        return np.array(
            [str(v) in names or as_new_class(v, known)[0] for v in labels.tolist()], dtype=bool
        )
    return np.array(
        [
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in labels.tolist()
        ],
        dtype=bool,
    )


def _out_of_contract(schema: Any, inputs: list[dict[str, Any]]) -> float | None:
    if schema is None or not hasattr(schema, "coerce") or not inputs:
        return None
    try:
        _frame, violations = schema.coerce(inputs)
    except Exception:  # a malformed log row must not break the whole status page
        return None
    bad = {v.row for v in violations if getattr(v, "row", None) is not None}
    return len(bad) / len(inputs)


def observe_rows(
    model: str,
    start: float,
    end: float,
    rows: pd.DataFrame,
    labels: pd.Series | None,
    *,
    task: str,
    classes: Sequence[Any],
    profile: Any = None,
    schema: Any = None,
) -> WindowStatus:
    """Monitoring numbers for the logged prediction ``rows`` of one window."""
    n = len(rows)
    versions = {int(k): int(v) for k, v in rows["version"].value_counts().items()} if n else {}
    if n == 0:
        return WindowStatus(model, start, end, 0, versions)
    inputs = [orjson.loads(x) for x in rows["inputs"]]
    outputs = [orjson.loads(x) for x in rows["outputs"]]
    frame = pd.DataFrame.from_records(inputs)
    features = list(profile.features) if profile is not None else list(frame.columns)
    present = [f for f in features if f in frame.columns]
    missing_rate = float(frame[present].isna().to_numpy().mean()) if present else None
    drift = prediction_drift = None
    if profile is not None:
        ref = as_reference(profile)
        window = frame.reindex(columns=features)
        for name in features:
            if ref[name].kind == "numeric" and window[name].dtype == object:
                # a logged value the contract let through as text must not break the page
                window[name] = pd.to_numeric(window[name], errors="coerce")
        counts = WindowCounts(ref.select(features)).update(window)
        drift = drift_from_counts(ref.select(features), counts.counts)
        if "prediction" in ref:
            values = rows["prediction"] if task == "classification" else rows["value"]
            pc = WindowCounts(ref.select(["prediction"])).update({"prediction": values.to_numpy()})
            prediction_drift = drift_from_counts(ref.select(["prediction"]), pc.counts)
    probabilities = _probabilities(outputs, classes) if task == "classification" else None
    performance: dict[str, float] = {}
    labelled = unscorable = new_classes = 0
    if labels is not None:
        joined = labels.notna().to_numpy()
        scorable = _scorable(labels, task, classes)
        has = joined & scorable
        labelled = int(has.sum())
        unscorable = int((joined & ~scorable).sum())
        if labelled:
            truth = labels[has].tolist()
            if task == "classification":
                names = [str(c) for c in classes]
                known = set(names)
                # Every class the model never saw scores as one extra class: the model gave
                # it no probability, and a flood of distinct junk labels cannot grow the
                # probability matrix by a column each.
                labels_text = [str(t) if str(t) in known else _NEW_CLASS for t in truth]
                new_classes = labels_text.count(_NEW_CLASS)
                picked = None if probabilities is None else probabilities[has]
                extra = [_NEW_CLASS] if new_classes else []
                if picked is not None and extra:
                    picked = np.hstack([picked, np.zeros((len(picked), 1))])
                performance = classification_metrics(
                    labels_text,
                    rows["prediction"].to_numpy()[has].astype(str),
                    picked,
                    classes=[*names, *extra],
                )
            else:
                performance = regression_metrics(
                    np.asarray(truth, dtype=np.float64), rows["value"].to_numpy()[has]
                )
    estimated: dict[str, float] = {}
    if probabilities is not None:
        calibration = getattr(profile, "calibration", None)
        estimated = estimate_performance(
            probabilities,
            [str(c) for c in classes],
            calibration=calibration,
            y_pred=rows["prediction"].astype(str).tolist(),
        )
    return WindowStatus(
        model=model,
        start=start,
        end=end,
        rows=n,
        versions=versions,
        drift=drift,
        prediction_drift=prediction_drift,
        missing_rate=missing_rate,
        out_of_contract_rate=_out_of_contract(schema, inputs),
        labelled=labelled,
        performance=performance,
        estimated=estimated,
        unscorable_labels=unscorable,
        new_class_labels=new_classes,
    )
