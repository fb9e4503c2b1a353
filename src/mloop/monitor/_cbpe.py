"""Label-free performance estimation from calibrated confidence (CBPE, as NannyML does it).

When labels arrive late or never, a calibrated classifier's probabilities say how
often each prediction is right: row ``i`` predicted class ``j`` is correct with
probability ``P[i, j]``. Summing gives the expected confusion matrix and from it
accuracy, precision, recall and F1; ROC AUC is the expected share of correctly
ordered (positive, negative) pairs. The estimate holds under covariate shift as
long as P(y | x) is unchanged (no concept drift) and the calibration is good.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from mloop.contracts import Profile
from mloop.errors import InvalidInput
from mloop.monitor._metrics import class_index, confusion_scores

__all__ = ["CalibrationLike", "estimate_performance", "expected_auc"]


class CalibrationLike(Protocol):
    """What ``mloop.contracts.Calibration`` provides: a per-class probability map."""

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, same shape, rows summing to one."""
        ...


def expected_auc(p: np.ndarray, score: np.ndarray) -> float:
    """Expected ROC AUC of ``score`` when row ``i`` is positive with probability ``p[i]``.

    Ratio of expectations over distinct pairs: sum p_i (1 - p_j) [s_i > s_j] (ties half)
    over sum p_i (1 - p_j); O(n log n) through per-score-group prefix sums.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    q = 1.0 - p
    _, group = np.unique(np.asarray(score, dtype=np.float64), return_inverse=True)
    pos = np.bincount(group, weights=p)
    neg = np.bincount(group, weights=q)
    below = np.cumsum(neg) - neg
    self_pairs = float(np.sum(p * q))
    ties = float(np.sum(pos * neg)) - self_pairs
    numerator = float(np.sum(pos * below)) + 0.5 * ties
    denominator = float(p.sum() * q.sum()) - self_pairs
    return numerator / denominator if denominator > 0 else float("nan")


def estimate_performance(
    probabilities: np.ndarray,
    classes: Sequence[Any],
    *,
    calibration: CalibrationLike | None = None,
    reference: Profile | None = None,
    y_pred: Any = None,
) -> dict[str, float]:
    """Estimated accuracy, precision/recall/F1 and ROC AUC of a window without labels.

    ``probabilities`` are the model's raw outputs (columns in ``classes`` order);
    ``calibration`` (default: the ``reference`` profile's) maps them to frequencies;
    without one they are trusted as calibrated. ``y_pred`` defaults to the most
    probable class.
    """
    if calibration is None and reference is not None:
        calibration = reference.calibration
    raw = np.asarray(probabilities, dtype=np.float64)
    k = len(classes)
    if raw.ndim != 2 or raw.shape[1] != k or k < 2:
        raise InvalidInput(
            f"probabilities has shape {raw.shape}; expected (rows, {k}) for classes "
            f"{list(classes)} (at least two classes)."
        )
    n = raw.shape[0]
    if n == 0:
        return {"n": 0.0}
    cal = calibration.apply(raw) if calibration is not None else raw
    cal = cal / np.clip(cal.sum(axis=1, keepdims=True), 1e-12, None)
    if y_pred is None:
        pred = raw.argmax(axis=1)
    else:
        pred = class_index(y_pred, classes)
        if pred.size != n or (pred < 0).any():
            raise InvalidInput("y_pred must hold one known class label per row of probabilities.")
    # expected confusion: rows = true class (probabilistic), columns = predicted class (known)
    confusion = np.zeros((k, k))
    for j in range(k):
        rows = pred == j
        if rows.any():
            confusion[:, j] = cal[rows].sum(axis=0)
    present = np.ones(k, dtype=bool)
    out: dict[str, float] = {"n": float(n)}
    out.update(confusion_scores(confusion, present))
    if k == 2:
        out["roc_auc"] = expected_auc(cal[:, 1], raw[:, 1])
    else:
        aucs = [expected_auc(cal[:, j], raw[:, j]) for j in range(k)]
        valid = [a for a in aucs if not np.isnan(a)]
        out["roc_auc"] = float(np.mean(valid)) if valid else float("nan")
    return out
