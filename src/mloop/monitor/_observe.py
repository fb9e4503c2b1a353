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
import pandas as pd
import pyarrow as pa

from mloop.journal import FEATURE, as_new_class, feature_values, probability_matrix
from mloop.monitor._cbpe import estimate_performance
from mloop.monitor._counting import count_windows
from mloop.monitor._drift import DriftReport, drift_over_windows
from mloop.monitor._metrics import classification_metrics, regression_metrics
from mloop.monitor._reference import Reference, as_reference

__all__ = [
    "WindowStatus",
    "contract_violations",
    "drift_of_windows",
    "observe_table",
]


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


_NEW_CLASS = "\x00new class"  # one column for every class the model never saw


def _scorable(labels: Sequence[Any], task: str, classes: Sequence[Any]) -> np.ndarray:
    """Which labels can score the model: one of its classes (as text), a class of the
    same kind it never saw (a miss), or, for a regressor, a finite number."""
    if task == "classification":
        names = {str(c) for c in classes}
        known = set(classes)
        return np.array([str(v) in names or as_new_class(v, known)[0] for v in labels], dtype=bool)
    return np.array(
        [
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in labels
        ],
        dtype=bool,
    )


def _features(table: pa.Table, names: Sequence[str]) -> dict[str, Any]:
    return {name: feature_values(table, name) for name in names}


def _missing_rate(values: Mapping[str, Any], n: int) -> float | None:
    """Share of missing cells; a feature no row of the window sent counts as missing."""
    if not values:
        return None
    missing = sum(
        v.null_count if isinstance(v, pa.ChunkedArray) else int(v.isna().sum())
        for v in values.values()
    )
    return missing / (n * len(values))


def _as_numbers(values: Any) -> Any:
    """Values the contract let through as text, as numbers (NaN where they are not)."""
    if isinstance(values, pa.ChunkedArray):
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            return values
        values = values.to_pandas()
    return pd.to_numeric(values, errors="coerce") if values.dtype == object else values


def contract_violations(schema: Any, table: pa.Table | None) -> np.ndarray | None:
    """Which logged rows break ``schema`` (a contract), checked over all features sent;
    None without a contract or when the rows cannot be checked."""
    if schema is None or not hasattr(schema, "coerce") or table is None or not table.num_rows:
        return None
    values = _features(table, _sent(table))
    columns = {k: v.to_numpy() if isinstance(v, pa.ChunkedArray) else v for k, v in values.items()}
    try:
        _frame, violations = schema.coerce(columns)
    except Exception:  # a malformed log row must not break the whole status page
        return None
    bad = np.zeros(table.num_rows, dtype=bool)
    bad[[v.row for v in violations if getattr(v, "row", None) is not None]] = True
    return bad


WindowDrift = tuple[DriftReport, DriftReport | None]  # features, prediction


def drift_of_windows(
    reference: Reference,
    features: Sequence[str],
    task: str,
    table: pa.Table,
    bounds: Sequence[tuple[int, int]],
) -> list[WindowDrift]:
    """Feature and prediction drift of consecutive windows of ``table``'s rows
    (``bounds``: row ranges), counted in one pass and tested all at once."""
    names = [*features, *(["prediction"] if "prediction" in reference else [])]
    values: dict[str, Any] = {}
    for name in names:
        if name == "prediction":
            values[name] = table.column("prediction" if task == "classification" else "value")
        else:
            v = feature_values(table, name)
            values[name] = _as_numbers(v) if reference[name].kind == "numeric" else v
    counts = count_windows(reference.select(names), values, bounds)
    drift = drift_over_windows(
        reference.select(features), [{f: c[f] for f in features} for c in counts]
    )
    if "prediction" not in reference:
        return [(d, None) for d in drift]
    predicted = drift_over_windows(
        reference.select(["prediction"]), [{"prediction": c["prediction"]} for c in counts]
    )
    return list(zip(drift, predicted, strict=True))


def _classification(
    truth: list[Any],
    predicted: np.ndarray,
    probabilities: np.ndarray | None,
    classes: Sequence[Any],
) -> tuple[dict[str, float], int]:
    names = [str(c) for c in classes]
    known = set(names)
    # Every class the model never saw scores as one extra class: the model gave it no
    # probability, and a flood of distinct junk labels cannot grow the probability
    # matrix by a column each.
    labels_text = [str(t) if str(t) in known else _NEW_CLASS for t in truth]
    new_classes = labels_text.count(_NEW_CLASS)
    extra = [_NEW_CLASS] if new_classes else []
    if probabilities is not None and extra:
        probabilities = np.hstack([probabilities, np.zeros((len(probabilities), 1))])
    metrics = classification_metrics(
        labels_text, predicted, probabilities, classes=[*names, *extra]
    )
    return metrics, new_classes


def observe_table(
    model: str,
    start: float,
    end: float,
    table: pa.Table | None,
    labels: np.ndarray | None,
    *,
    task: str,
    classes: Sequence[Any],
    profile: Any = None,
    reference: Reference | None = None,
    violations: np.ndarray | None = None,
    drift: WindowDrift | None = None,
) -> WindowStatus:
    """Monitoring numbers for one window of logged prediction rows: a monitoring table
    (``mloop.journal``: a column per input feature and class probability), the label
    of each row (None where none arrived) and which rows break the contract
    (``contract_violations``). ``reference``: the profile's, when the caller has it;
    ``counts``: this window's slot counts when the caller counted many windows at once
    (``window_counts``)."""
    n = 0 if table is None else table.num_rows
    if table is None or n == 0:
        return WindowStatus(model, start, end, 0, {})
    found, per_version = np.unique(table.column("version").to_numpy(), return_counts=True)
    versions = {int(v): int(c) for v, c in zip(found, per_version, strict=True)}
    if profile is not None:
        features = list(profile.features)
    else:
        features = [c[len(FEATURE) :] for c in table.column_names if c.startswith(FEATURE)]
    values = _features(table, features)
    if profile is not None:
        full = reference if reference is not None else as_reference(profile)
        if drift is None:
            drift = drift_of_windows(full, features, task, table, [(0, n)])[0]
    feature_drift, prediction_drift = drift if drift is not None else (None, None)
    names = [str(c) for c in classes]
    probabilities = probability_matrix(table, names) if task == "classification" else None
    performance: dict[str, float] = {}
    labelled = unscorable = new_classes = 0
    if labels is not None:
        joined = np.flatnonzero(pd.notna(labels))
        scorable = _scorable(labels[joined].tolist(), task, classes)
        has = joined[scorable]
        labelled = len(has)
        unscorable = len(joined) - labelled
        if labelled:
            truth = labels[has].tolist()
            if task == "classification":
                predicted = np.array(
                    [str(p) for p in table.column("prediction").take(has).to_pylist()], dtype=object
                ).astype(str)
                performance, new_classes = _classification(
                    truth, predicted, None if probabilities is None else probabilities[has], classes
                )
            else:
                performance = regression_metrics(
                    np.asarray(truth, dtype=np.float64),
                    table.column("value")
                    .take(has)
                    .to_numpy(zero_copy_only=False)
                    .astype(np.float64),
                )
    estimated: dict[str, float] = {}
    if probabilities is not None:
        estimated = estimate_performance(
            probabilities,
            names,
            calibration=getattr(profile, "calibration", None),
            y_pred=table.column("prediction"),
        )
    return WindowStatus(
        model=model,
        start=start,
        end=end,
        rows=n,
        versions=versions,
        drift=feature_drift,
        prediction_drift=prediction_drift,
        missing_rate=_missing_rate(values, n) if features else None,
        out_of_contract_rate=None if violations is None else float(violations.mean()),
        labelled=labelled,
        performance=performance,
        estimated=estimated,
        unscorable_labels=unscorable,
        new_class_labels=new_classes,
    )


def _sent(table: pa.Table) -> list[str]:
    """Every feature some row of the window sent (a contract checks all of them)."""
    return [c[len(FEATURE) :] for c in table.column_names if c.startswith(FEATURE)]
