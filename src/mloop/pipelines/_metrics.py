"""Scoring predictions against labels, and a ``Model`` view of freshly trained estimators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput
from mloop.types import Model, Predictions

__all__ = ["HIGHER_IS_BETTER", "as_model", "score"]

# metric -> True when larger values are better
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "roc_auc": True,
    "log_loss": False,
    "mae": False,
    "rmse": False,
    "r2": True,
}
_CLASSIFICATION = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss")
_REGRESSION = ("mae", "rmse", "r2")


def score(
    predictions: Predictions, target: Sequence[Any] | np.ndarray | pd.Series
) -> dict[str, float]:
    """Every metric that applies to the task (classification or regression)."""
    from sklearn import metrics as m

    y = np.asarray(target, dtype=object)
    if len(y) != len(predictions):
        raise InvalidInput(f"Got {len(y)} labels for {len(predictions)} predictions.")
    if len(y) == 0:
        return {}
    if predictions.task == "regression":
        assert predictions.values is not None
        truth = y.astype(np.float64)
        pred = np.asarray(predictions.values, dtype=np.float64)
        out = {
            "mae": float(m.mean_absolute_error(truth, pred)),
            "rmse": float(np.sqrt(m.mean_squared_error(truth, pred))),
        }
        if len(truth) > 1 and np.var(truth) > 0:
            out["r2"] = float(m.r2_score(truth, pred))
        return out
    assert predictions.labels is not None
    truth_text = np.array([str(v) for v in y], dtype=object)
    pred_text = np.array([str(v) for v in predictions.labels], dtype=object)
    out = {
        "accuracy": float((truth_text == pred_text).mean()),
        "balanced_accuracy": float(m.balanced_accuracy_score(truth_text, pred_text)),
        "f1_macro": float(m.f1_score(truth_text, pred_text, average="macro", zero_division=0)),
    }
    probs = predictions.probabilities
    if probs is not None:
        classes = [str(c) for c in predictions.classes]
        index = {c: i for i, c in enumerate(classes)}
        codes = np.array([index.get(t, -1) for t in truth_text])
        p = np.asarray(probs, dtype=np.float64)
        picked = np.where(codes >= 0, p[np.arange(len(codes)), np.maximum(codes, 0)], 0.0)
        out["log_loss"] = float(-np.log(np.clip(picked, 1e-15, 1.0)).mean())
        if len(classes) == 2 and (codes >= 0).all() and len(set(codes.tolist())) == 2:
            out["roc_auc"] = float(m.roc_auc_score(codes, p[:, 1]))
    return out


class _EstimatorView:
    """A scikit-learn style estimator seen as a ``Model`` (predict returns ``Predictions``)."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        classes = getattr(estimator, "classes_", None)
        self.classes: tuple[Any, ...] = (
            () if classes is None else tuple(np.asarray(classes).tolist())
        )
        self.task: Any = "classification" if classes is not None else "regression"

    def predict(self, frame: pd.DataFrame) -> Predictions:
        if self.task == "regression":
            values = np.asarray(self.estimator.predict(frame), dtype=np.float64).ravel()
            return Predictions(task="regression", values=values)
        probs = None
        if hasattr(self.estimator, "predict_proba"):
            probs = np.asarray(self.estimator.predict_proba(frame), dtype=np.float64)
            labels = np.asarray(self.classes, dtype=object)[probs.argmax(axis=1)]
        else:
            labels = np.asarray(self.estimator.predict(frame), dtype=object)
        return Predictions(
            task="classification", labels=labels, probabilities=probs, classes=self.classes
        )


def as_model(obj: Any) -> Model:
    """``obj`` itself when it already returns ``Predictions``, else a scikit-learn style view."""
    if hasattr(obj, "task") and hasattr(obj, "classes") and hasattr(obj, "predict"):
        return obj  # type: ignore[no-any-return]
    if not hasattr(obj, "predict"):
        raise InvalidInput(
            f"train() returned {type(obj).__name__}, which has no predict(); return a fitted model."
        )
    return _EstimatorView(obj)
