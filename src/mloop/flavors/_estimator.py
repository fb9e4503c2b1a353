"""A ``Model`` around any object with the scikit-learn ``predict``/``predict_proba`` API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from mloop.flavors._base import Predictions, Task
from mloop.flavors._outputs import classification, empty, probability_matrix, regression

__all__ = [
    "EstimatorModel",
    "FrameModel",
    "estimator_classes",
    "infer_task",
    "labels_follow_probabilities",
]

InputKind = Literal["array", "frame", "auto"]

# Final estimators whose predict() is not the argmax of predict_proba(): SVC's probabilities
# come from a separate Platt calibration, a stratified dummy draws labels at random.
_PREDICT_DISAGREES = frozenset({"SVC", "NuSVC", "DummyClassifier"})


def infer_task(model: object) -> Task:
    """Classification when the object says so or has ``classes_``; regression otherwise."""
    declared = getattr(model, "task", None)
    if declared in ("classification", "regression"):
        return "classification" if declared == "classification" else "regression"
    try:
        from sklearn.base import BaseEstimator, is_classifier, is_regressor

        if isinstance(model, BaseEstimator):
            if is_classifier(model):
                return "classification"
            if is_regressor(model):
                return "regression"
    except (AttributeError, TypeError):  # pragma: no cover - exotic estimators without tags
        pass
    return "classification" if hasattr(model, "classes_") else "regression"


def estimator_classes(model: object) -> tuple[Any, ...]:
    """The fitted ``classes_`` as a tuple (empty when absent or multi-output)."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return ()
    array = np.asarray(classes)
    return tuple(array.tolist()) if array.ndim == 1 else ()


def labels_follow_probabilities(model: object) -> bool:
    """True when ``predict`` equals the argmax of ``predict_proba`` (saves a second pass)."""
    final = model
    for _ in range(10):  # unwrap Pipeline / search CV down to the estimator that decides
        steps = getattr(final, "steps", None)
        best = getattr(final, "best_estimator_", None)
        if steps:
            final = steps[-1][1]
        elif best is not None:
            final = best
        else:
            break
    module = type(final).__module__
    return module.startswith("sklearn.") and type(final).__name__ not in _PREDICT_DISAGREES


class FrameModel:
    """Predicts with an estimator-like object; the object receives a DataFrame or an array.

    ``inputs``: ``"frame"`` passes the DataFrame (the object was fitted with feature names),
    ``"array"`` passes ``frame.to_numpy()`` (fitted without names: avoids sklearn's
    feature-name warning and the DataFrame overhead), ``"auto"`` passes an array when every
    column is numeric and the frame otherwise.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        task: Task,
        classes: Sequence[Any] = (),
        inputs: InputKind = "frame",
        labels_from_probabilities: bool = False,
        positional_classes: bool = False,
    ) -> None:
        self.estimator = estimator
        self.task: Task = task
        self.classes: tuple[Any, ...] = tuple(classes)
        self._inputs: InputKind = inputs
        self._has_proba = task == "classification" and hasattr(estimator, "predict_proba")
        # Labels can come from the probabilities only when we know which class each column is.
        self._labels_from_probabilities = (
            labels_from_probabilities and self._has_proba and bool(self.classes)
        )
        # xgboost learns classes 0..k-1: map its predicted indices back to the recorded labels.
        self._positional = positional_classes and bool(self.classes)

    def _prepare(self, frame: pd.DataFrame) -> Any:
        if self._inputs == "frame":
            return frame
        array = frame.to_numpy()
        if self._inputs == "auto" and array.dtype == object:
            return frame
        return array

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Predict every row of ``frame`` (columns in the contract's order)."""
        return self._run(self._prepare(frame))

    def _run(self, data: Any, estimator: Any = None) -> Predictions:
        if len(data) == 0:
            return empty(self.task, self.classes)
        if estimator is None:
            estimator = self.estimator
        if self.task == "regression":
            return regression(estimator.predict(data))
        probabilities = None
        if self._has_proba and self.classes:
            probabilities = probability_matrix(estimator.predict_proba(data), len(self.classes))
        if self._labels_from_probabilities:
            return classification(self.classes, probabilities=probabilities)
        labels = np.asarray(estimator.predict(data))
        if self._positional:
            labels = np.asarray(self.classes)[labels.astype(np.intp).ravel()]
        return classification(self.classes, probabilities=probabilities, labels=labels)


class EstimatorModel(FrameModel):
    """A ``FrameModel`` that also offers the ``predict_array`` fast path."""

    def __init__(
        self,
        estimator: Any,
        *,
        task: Task,
        classes: Sequence[Any] = (),
        inputs: InputKind = "frame",
        labels_from_probabilities: bool = False,
        positional_classes: bool = False,
        feature_names: Sequence[str] | None = None,
        array_estimator: Any = None,
    ) -> None:
        super().__init__(
            estimator,
            task=task,
            classes=classes,
            inputs=inputs,
            labels_from_probabilities=labels_from_probabilities,
            positional_classes=positional_classes,
        )
        self._feature_names = list(feature_names) if feature_names is not None else None
        # The same fitted estimator without its recorded feature names: it predicts an
        # array whose columns the contract already ordered, skipping the DataFrame and
        # sklearn's per-call name checks (which cost as much as a small model's predict).
        self._array_estimator = array_estimator

    def predict_array(self, array: np.ndarray) -> Predictions:
        """Predict a numeric matrix whose columns follow the contract's order."""
        if self._array_estimator is not None:
            return self._run(array, self._array_estimator)
        if self._inputs == "frame" and self._feature_names is not None:
            return self._run(pd.DataFrame(array, columns=self._feature_names))
        return self._run(array)
