"""Do two models answer the same? Agreement of predictions, judged against a tolerance.

Pure functions over ``Predictions``: no model, no clock. Rows with a missing value are
judged on their own as well as with the rest, because that is where converted models
go wrong (a tree's "missing goes left" lost in conversion changes only those rows, a
few percent of the data, and would hide inside an overall agreement of 99%).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mloop.flavors import Predictions

__all__ = ["Agreement", "Tolerance", "compare_predictions", "judge"]


@dataclass(frozen=True)
class Tolerance:
    """How close a converted model must stay to the original to be accepted."""

    min_label_agreement: float = 0.999
    max_probability_diff: float = 1e-3
    # Regression: the largest difference as a fraction of the spread (std) of the
    # original's predictions on the reference rows.
    max_relative_value_diff: float = 1e-3


@dataclass(frozen=True)
class Agreement:
    """How far the candidate's predictions are from the original's on the same rows.

    Classification fills the label and probability fields; regression the value fields.
    ``missing_*`` are the same figures over rows holding at least one missing value.
    ``worst_rows`` are positions of the rows that differ most, for the report.
    ``tied_rows`` counts rows whose labels differ only where the original's top
    probabilities tie exactly (both answers are its argmax); they count as agreeing.
    """

    task: str
    rows: int
    missing_rows: int
    label_agreement: float | None = None
    missing_label_agreement: float | None = None
    max_probability_diff: float | None = None
    missing_max_probability_diff: float | None = None
    max_value_diff: float | None = None
    missing_max_value_diff: float | None = None
    value_scale: float | None = None
    tied_rows: int = 0
    worst_rows: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["worst_rows"] = list(self.worst_rows)
        return out


def compare_predictions(
    original: Predictions, candidate: Predictions, missing: np.ndarray
) -> Agreement:
    """Agreement of ``candidate`` with ``original`` (same rows; ``missing`` marks rows with gaps)."""
    n = len(original)
    if len(candidate) != n or len(missing) != n:
        raise ValueError(f"Predictions of {len(candidate)} and {n} rows cannot be compared.")
    gaps = np.asarray(missing, dtype=bool)
    if original.task == "regression":
        assert original.values is not None and candidate.values is not None
        diff = np.abs(
            np.asarray(original.values, np.float64) - np.asarray(candidate.values, np.float64)
        )
        diff = np.where(np.isnan(diff), np.inf, diff)  # NaN from one side only is a difference
        return Agreement(
            task="regression",
            rows=n,
            missing_rows=int(gaps.sum()),
            max_value_diff=_max(diff),
            missing_max_value_diff=_max(diff[gaps]) if gaps.any() else None,
            value_scale=float(np.nanstd(np.asarray(original.values, np.float64))) if n else None,
            worst_rows=_worst(diff),
        )
    assert original.labels is not None and candidate.labels is not None
    equal = _same_labels(original.labels, candidate.labels)
    tied = ~equal & _tied_top(original, candidate.labels)
    same = equal | tied
    proba_diff = _probability_diff(original, candidate)
    badness = (~same).astype(np.float64) + (0.0 if proba_diff is None else proba_diff)
    return Agreement(
        task="classification",
        rows=n,
        missing_rows=int(gaps.sum()),
        label_agreement=_mean(same),
        missing_label_agreement=_mean(same[gaps]) if gaps.any() else None,
        max_probability_diff=None if proba_diff is None else _max(proba_diff),
        missing_max_probability_diff=(
            None if proba_diff is None or not gaps.any() else _max(proba_diff[gaps])
        ),
        tied_rows=int(tied.sum()),
        worst_rows=_worst(badness),
    )


def judge(agreement: Agreement, tolerance: Tolerance) -> list[str]:
    """Why the candidate is refused (empty when it answers the same within ``tolerance``)."""
    problems: list[str] = []
    if agreement.rows == 0:
        return ["there were no reference rows to compare on"]
    groups = [("all rows", "")]
    if agreement.missing_rows:
        groups.append((f"the {agreement.missing_rows} rows with missing values", "missing_"))
    for where, prefix in groups:
        if agreement.task == "classification":
            labels = getattr(agreement, f"{prefix}label_agreement")
            if labels is not None and labels < tolerance.min_label_agreement:
                problems.append(
                    f"labels agree on {labels:.2%} of {where}, below the "
                    f"{tolerance.min_label_agreement:.2%} required"
                )
            proba = getattr(agreement, f"{prefix}max_probability_diff")
            if proba is not None and proba > tolerance.max_probability_diff:
                problems.append(
                    f"probabilities differ by up to {proba:.3g} on {where}, above the "
                    f"{tolerance.max_probability_diff:g} allowed"
                )
        else:
            diff = getattr(agreement, f"{prefix}max_value_diff")
            scale = agreement.value_scale or 1.0
            if diff is not None and diff > tolerance.max_relative_value_diff * scale:
                problems.append(
                    f"values differ by up to {diff:.3g} on {where} ({diff / scale:.3g} of the "
                    f"predictions' spread), above the {tolerance.max_relative_value_diff:g} allowed"
                )
    return problems


def _same_labels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    left = np.asarray(a).ravel()
    right = np.asarray(b).ravel()
    if left.dtype.kind in "iufb" and right.dtype.kind in "iufb":
        return np.asarray(left == right, dtype=bool)
    # Labels of different types (1 vs "1", np.str_ vs str) compare by their text.
    return np.array([str(x) == str(y) for x, y in zip(left, right, strict=True)], dtype=bool)


def _tied_top(original: Predictions, labels: np.ndarray) -> np.ndarray:
    """Rows where ``labels`` name a class holding the original's top probability."""
    n = len(original)
    if original.probabilities is None or not original.classes:
        return np.zeros(n, dtype=bool)
    proba = np.asarray(original.probabilities, np.float64)
    column = {str(c): i for i, c in enumerate(original.classes)}
    index = np.array([column.get(str(v), -1) for v in np.asarray(labels).ravel()])
    known = index >= 0
    theirs = np.where(known, proba[np.arange(n), np.where(known, index, 0)], -np.inf)
    return np.asarray(known & (theirs >= proba.max(axis=1)), dtype=bool)


def _probability_diff(original: Predictions, candidate: Predictions) -> np.ndarray | None:
    if original.probabilities is None or candidate.probabilities is None:
        return None
    order = _column_order(original.classes, candidate.classes)
    if order is None:
        return np.ones(len(original))  # different classes: as far apart as it gets
    theirs = np.asarray(candidate.probabilities, np.float64)[:, order]
    diff = np.abs(np.asarray(original.probabilities, np.float64) - theirs).max(axis=1)
    return np.where(np.isnan(diff), 1.0, diff)


def _column_order(mine: tuple[Any, ...], theirs: tuple[Any, ...]) -> list[int] | None:
    position = {str(c): i for i, c in enumerate(theirs)}
    if len(mine) != len(theirs) or any(str(c) not in position for c in mine):
        return None
    return [position[str(c)] for c in mine]


def _mean(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else 1.0


def _max(values: np.ndarray) -> float:
    return float(values.max()) if values.size else 0.0


def _worst(badness: np.ndarray, k: int = 5) -> tuple[int, ...]:
    if not badness.size or not np.any(badness > 0):
        return ()
    order = np.argsort(-badness, kind="stable")[:k]
    return tuple(int(i) for i in order if badness[i] > 0)
