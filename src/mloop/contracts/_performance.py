"""Realized metrics of the predictions on the reference data, when its labels are known."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mloop.contracts._calibration import encode_labels
from mloop.types import Predictions

__all__ = ["reference_metrics"]


def reference_metrics(
    predictions: Predictions, target: Sequence[Any] | np.ndarray
) -> dict[str, float]:
    """Accuracy (+ ROC AUC and log loss when possible) or MAE / RMSE / R²."""
    if predictions.task == "regression":
        return _regression(predictions, target)
    return _classification(predictions, target)


def _regression(predictions: Predictions, target: Sequence[Any] | np.ndarray) -> dict[str, float]:
    assert predictions.values is not None
    y = np.asarray(target, dtype=np.float64)
    pred = np.asarray(predictions.values, dtype=np.float64)
    keep = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[keep], pred[keep]
    if y.size == 0:
        return {}
    err = pred - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    out = {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean()))}
    if ss_tot > 0:
        out["r2"] = 1.0 - float((err**2).sum()) / ss_tot
    return out


def _classification(
    predictions: Predictions, target: Sequence[Any] | np.ndarray
) -> dict[str, float]:
    assert predictions.labels is not None
    classes = list(predictions.classes)
    truth = encode_labels(target, classes)
    known = truth >= 0
    if not known.any():
        return {}
    guess = encode_labels(predictions.labels, classes)
    out = {"accuracy": float((guess[known] == truth[known]).mean())}
    probs = predictions.probabilities
    if probs is None:
        return out
    from sklearn.metrics import roc_auc_score

    p = np.asarray(probs, dtype=np.float64)[known]
    y = truth[known]
    picked = np.clip(p[np.arange(len(y)), y], 1e-15, 1.0)
    out["log_loss"] = float(-np.log(picked).mean())
    if len(classes) == 2 and len(np.unique(y)) == 2:
        out["roc_auc"] = float(roc_auc_score(y, p[:, 1]))
    return out
