"""xgboost flavor: the library's own UBJSON model format, loaded without pickle."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop._deps import require
from mloop.errors import InvalidInput
from mloop.flavors._base import Model, Predictions, Task
from mloop.flavors._estimator import EstimatorModel
from mloop.flavors._outputs import (
    check_task,
    classes_from_meta,
    classification,
    empty,
    json_ready,
    probability_matrix,
    regression,
)

__all__ = ["XGBoostFlavor", "booster_task"]

_FILE = "model.ubj"
# sklearn wrappers mloop rebuilds by name; anything else is saved and loaded as a Booster.
_WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor")


def _xgb() -> Any:
    return require("xgboost", "the xgboost flavor")


def booster_task(objective: str, num_class: int) -> tuple[Task, list[Any]]:
    """Task and class labels implied by a Booster's objective."""
    if objective.startswith("multi:"):
        return "classification", list(range(max(num_class, 2)))
    if objective.startswith("binary:"):
        return "classification", [0, 1]
    return "regression", []


def _objective(booster: Any) -> tuple[str, int]:
    config = json.loads(booster.save_config())
    learner = config["learner"]
    return str(learner["objective"]["name"]), int(learner["learner_model_param"]["num_class"])


class BoosterModel:
    """Predicts with a raw ``xgboost.Booster`` through ``inplace_predict``."""

    def __init__(self, booster: Any, *, task: Task, classes: Sequence[Any], objective: str):
        self.booster = booster
        self.task: Task = task
        self.classes: tuple[Any, ...] = tuple(classes)
        self._objective = objective

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Predict every row of ``frame``."""
        array = frame.to_numpy()
        return self._run(frame if array.dtype == object else array)

    def predict_array(self, array: np.ndarray) -> Predictions:
        """Predict a numeric matrix whose columns follow the contract's order."""
        return self._run(array)

    def _run(self, data: Any) -> Predictions:
        if len(data) == 0:
            return empty(self.task, self.classes)
        raw = np.asarray(self.booster.inplace_predict(data))
        if self.task == "regression":
            return regression(raw)
        classes = np.asarray(self.classes)
        if self._objective in ("binary:logistic", "multi:softprob"):
            return classification(self.classes, probabilities=probability_matrix(raw))
        if self._objective == "binary:logitraw":
            return classification(self.classes, labels=classes[(raw > 0).astype(np.intp)])
        # multi:softmax, binary:hinge: the output is already the class index.
        return classification(self.classes, labels=classes[raw.astype(np.intp).ravel()])


class XGBoostFlavor:
    """XGBClassifier / XGBRegressor and raw Boosters, in xgboost's native format."""

    name = "xgboost"

    def accepts(self, model: object) -> bool:
        """True for xgboost's sklearn wrappers and Boosters."""
        if not type(model).__module__.startswith("xgboost"):
            return False
        xgb = _xgb()
        return isinstance(model, xgb.XGBModel | xgb.Booster)

    def save(self, model: object, folder: Path, *, trust: bool = False) -> Mapping[str, Any]:
        """Write ``model.ubj`` with ``save_model``; record the task and class labels."""
        xgb = _xgb()
        if not isinstance(model, xgb.XGBModel | xgb.Booster):
            raise InvalidInput(f"The xgboost flavor saves xgboost models; got {type(model)!r}.")
        booster = model if isinstance(model, xgb.Booster) else model.get_booster()
        objective, num_class = _objective(booster)
        kind = type(model).__name__ if type(model).__name__ in _WRAPPERS else "Booster"
        if kind == "Booster":
            task, classes = booster_task(objective, num_class)
        elif isinstance(model, xgb.XGBClassifier):
            task, classes = "classification", json_ready(np.asarray(model.classes_).tolist())
        else:
            task, classes = "regression", []
        model.save_model(str(folder / _FILE))
        return {
            "format": "ubj",
            "file": _FILE,
            "kind": kind,
            "objective": objective,
            "task": task,
            "classes": classes,
            "feature_names": booster.feature_names,
            "xgboost_version": xgb.__version__,
        }

    def load(self, folder: Path, meta: Mapping[str, Any], *, trust: bool = False) -> Model:
        """Load natively; class labels come from the metadata."""
        xgb = _xgb()
        path = str(folder / str(meta.get("file", _FILE)))
        kind = str(meta.get("kind", "Booster"))
        task = check_task(meta.get("task", "regression"))
        classes = classes_from_meta(meta)
        if kind in _WRAPPERS:
            estimator = getattr(xgb, kind)()
            estimator.load_model(path)
            return EstimatorModel(
                estimator,
                task=task,
                classes=classes,
                inputs="auto",
                labels_from_probabilities=True,
                positional_classes=True,
            )
        booster = xgb.Booster()
        booster.load_model(path)
        objective = str(meta.get("objective") or _objective(booster)[0])
        return BoosterModel(booster, task=task, classes=classes, objective=objective)
