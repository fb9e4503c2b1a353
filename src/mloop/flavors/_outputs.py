"""Turn what a library returns (vectors, margins, ZipMap dicts) into ``Predictions``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mloop.errors import FatalError
from mloop.flavors._base import Predictions, Task

__all__ = [
    "as_column",
    "check_task",
    "classes_from_meta",
    "classification",
    "empty",
    "json_ready",
    "probability_matrix",
    "regression",
]


def json_ready(values: Iterable[Any]) -> list[Any]:
    """Class labels as plain Python values (``np.int64(1)`` -> ``1``) for JSON metadata."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def as_column(raw: Any) -> np.ndarray:
    """One value per row from a vector, a one-column matrix, a Series or a list."""
    array = np.asarray(raw)
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim != 1:
        raise FatalError(
            f"The model returned an output of shape {array.shape}; "
            "mloop expects one value per row (shape (n,) or (n, 1))."
        )
    return array


def probability_matrix(raw: Any, n_classes: int | None = None) -> np.ndarray:
    """Per-class probabilities ``(n, k)``; a binary model's ``(n,)`` P(class 1) becomes 2 columns."""
    proba = np.asarray(raw, dtype=np.float64)
    if proba.ndim == 2 and proba.shape[1] == 1:
        proba = proba[:, 0]
    if proba.ndim == 1:
        return np.column_stack([1.0 - proba, proba])
    if n_classes is not None and proba.shape[1] != n_classes:
        raise FatalError(
            f"The model returned {proba.shape[1]} probability columns but has {n_classes} classes."
        )
    return proba


def classification(
    classes: Sequence[Any],
    *,
    probabilities: np.ndarray | None = None,
    labels: Any = None,
) -> Predictions:
    """Predictions of a classifier; labels default to the most probable class."""
    class_array = np.asarray(classes) if len(classes) else None
    if labels is None:
        if probabilities is None or class_array is None:
            raise FatalError("A classifier returned neither labels nor probabilities with classes.")
        labels = class_array[probabilities.argmax(axis=1)]
    else:
        labels = as_column(labels)
    return Predictions(
        task="classification",
        labels=labels,
        probabilities=probabilities,
        classes=tuple(classes),
        values=None,
    )


def empty(task: Task, classes: Sequence[Any]) -> Predictions:
    """Predictions for zero rows (libraries reject empty input; serving may still send it)."""
    if task == "regression":
        return Predictions(task="regression", values=np.zeros(0))
    return Predictions(
        task="classification",
        labels=np.asarray([], dtype=object),
        probabilities=np.zeros((0, len(classes))),
        classes=tuple(classes),
    )


def regression(values: Any) -> Predictions:
    """Predictions of a regressor: one float per row."""
    column = as_column(values)
    try:
        column = column.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise FatalError(
            f"A model registered as a regressor returned non-numeric values ({column[:3]!r}); "
            "register it as a classifier (give the object a 'classes_' attribute or "
            "task='classification')."
        ) from exc
    return Predictions(task="regression", values=column)


def check_task(value: object) -> Task:
    """``value`` as a ``Task``, or a clear error."""
    if value == "classification":
        return "classification"
    if value == "regression":
        return "regression"
    raise FatalError(
        f"Unknown task {value!r} in flavor metadata; expected classification/regression."
    )


def classes_from_meta(meta: Mapping[str, Any]) -> tuple[Any, ...]:
    """The class labels recorded at save time (empty for regressors)."""
    return tuple(meta.get("classes") or ())
