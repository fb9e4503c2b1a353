"""Realized performance of a window: classification and regression metrics from arrays.

Plain numpy so that a window with one class, an empty slice or a class the model
never predicts gives a number or NaN, never a warning or an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import stats

from mloop.errors import InvalidInput

__all__ = [
    "class_index",
    "classification_metrics",
    "metrics_by_slice",
    "regression_metrics",
    "roc_auc_binary",
]

_EPS = 1e-15


def roc_auc_binary(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for 0/1 labels ``y`` (ties count half); NaN with one class."""
    y = np.asarray(y).astype(bool)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def class_index(labels: Any, classes: Sequence[Any], what: str = "label") -> np.ndarray:
    """Positions of ``labels`` in ``classes`` (compared as text), -1 for unknown labels."""
    if type(labels).__module__.startswith("pyarrow"):  # a logged column: looked up in Arrow
        import pyarrow as pa
        import pyarrow.compute as pc

        names = pa.array([str(c) for c in classes], pa.string())
        found = pc.index_in(pc.cast(labels, pa.string()), value_set=names)
        return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), np.intp)
    lookup = {str(c): i for i, c in enumerate(classes)}
    return np.array([lookup.get(str(v), -1) for v in np.asarray(labels).tolist()], np.intp)


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, _EPS), 0.0)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, _EPS), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, _EPS), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1}


def confusion_scores(confusion: np.ndarray, present: np.ndarray) -> dict[str, float]:
    """Accuracy and precision/recall/F1 (macro over ``present`` classes; binary: positive)."""
    n = confusion.sum()
    tp = np.diag(confusion)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    per = _prf(tp, fp, fn)
    out = {"accuracy": float(tp.sum() / n) if n else float("nan")}
    for name, values in per.items():
        out[f"{name}_macro"] = float(values[present].mean()) if present.any() else float("nan")
    if confusion.shape[0] == 2:
        for name, values in per.items():
            out[name] = float(values[1])
    return out


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    probabilities: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Accuracy, precision/recall/F1 (macro; binary also for ``classes[1]``), ROC AUC, log loss."""
    if classes is None:
        if probabilities is not None:
            raise InvalidInput("Pass classes=... (the column order of probabilities).")
        classes = sorted({*np.asarray(y_true).tolist(), *np.asarray(y_pred).tolist()}, key=str)
    t = class_index(y_true, classes)
    p = class_index(y_pred, classes)
    if t.size != p.size:
        raise InvalidInput(f"Got {t.size} true labels and {p.size} predictions; pass one each.")
    if (t < 0).any():
        unknown = sorted(
            {str(v) for v, i in zip(np.asarray(y_true).tolist(), t, strict=True) if i < 0}
        )
        raise InvalidInput(f"True labels {unknown[:5]} are not among the classes {list(classes)}.")
    k = len(classes)
    out: dict[str, float] = {"n": float(t.size)}
    if t.size == 0:
        return out
    # a prediction outside the classes is simply wrong: it lands in no column
    ok = p >= 0
    confusion = np.bincount(t[ok] * k + p[ok], minlength=k * k).reshape(k, k).astype(np.float64)
    present = np.bincount(t, minlength=k) + np.bincount(p[ok], minlength=k) > 0
    out.update(confusion_scores(confusion, present))
    out["accuracy"] = float(np.mean(t == p))
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=np.float64)
        if proba.shape != (t.size, k):
            raise InvalidInput(
                f"probabilities has shape {proba.shape}; expected ({t.size}, {k}) for "
                f"{t.size} rows and classes {list(classes)}."
            )
        out["roc_auc"] = ovr_auc(t, proba)
        picked = np.clip(proba[np.arange(t.size), t], _EPS, 1.0)
        out["log_loss"] = float(-np.mean(np.log(picked)))
    return out


def ovr_auc(t: np.ndarray, proba: np.ndarray) -> float:
    """Binary AUC of the second column, or the macro one-vs-rest AUC over classes present."""
    if proba.shape[1] == 2:
        return roc_auc_binary(t == 1, proba[:, 1])
    aucs = [roc_auc_binary(t == j, proba[:, j]) for j in range(proba.shape[1])]
    valid = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(valid)) if valid else float("nan")


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MAE, RMSE and R² (NaN when the targets are constant)."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise InvalidInput(f"Got {t.size} true values and {p.size} predictions; pass one each.")
    if t.size == 0:
        return {"n": 0.0}
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        "n": float(t.size),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan"),
    }


def metrics_by_slice(
    slices: Any,
    y_true: Any,
    y_pred: Any,
    *,
    task: Literal["classification", "regression"] = "classification",
    probabilities: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, dict[str, float]]:
    """Realized metrics per distinct value of ``slices`` (one label per row)."""
    keys = np.asarray(slices, dtype=object).astype(str)
    t, p = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    if task == "classification" and classes is None:
        classes = sorted({*t.tolist(), *p.tolist()}, key=str)
    out: dict[str, dict[str, float]] = {}
    for key in sorted(set(keys.tolist())):
        rows = keys == key
        if task == "regression":
            out[key] = regression_metrics(t[rows].astype(float), p[rows].astype(float))
        else:
            proba = None if probabilities is None else np.asarray(probabilities)[rows]
            out[key] = classification_metrics(t[rows], p[rows], proba, classes)
    return out
