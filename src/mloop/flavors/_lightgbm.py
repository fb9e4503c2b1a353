"""lightgbm flavor: the library's own text model format, loaded as a Booster without pickle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop._deps import require
from mloop.errors import InvalidInput
from mloop.flavors._base import Model, Predictions, Task
from mloop.flavors._outputs import (
    check_task,
    classes_from_meta,
    classification,
    empty,
    json_ready,
    probability_matrix,
    regression,
)

__all__ = ["LightGBMFlavor"]

_FILE = "model.txt"
_CLASSIFYING = ("binary", "multiclass", "multiclassova")


def _lgb() -> Any:
    return require("lightgbm", "the lightgbm flavor")


class LightGBMModel:
    """Predicts with a ``lightgbm.Booster``; maps class indices to the recorded labels."""

    def __init__(self, booster: Any, *, task: Task, classes: Sequence[Any]):
        self.booster = booster
        self.task: Task = task
        self.classes: tuple[Any, ...] = tuple(classes)
        # Categories learned from pandas 'category' columns, in the order of those columns.
        self._categories: list[list[Any]] = list(getattr(booster, "pandas_categorical", None) or [])

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Predict every row of ``frame``."""
        array = frame.to_numpy()
        if array.dtype != object:
            return self._run(array)
        return self._run(self._categorical(frame))

    def predict_array(self, array: np.ndarray) -> Predictions:
        """Predict a numeric matrix whose columns follow the contract's order."""
        return self._run(array)

    def _categorical(self, frame: pd.DataFrame) -> pd.DataFrame:
        # lightgbm reads only 'category' columns; serving frames carry plain strings.
        text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if len(text) != len(self._categories):
            return frame
        dtypes = {
            c: pd.CategoricalDtype(cats) for c, cats in zip(text, self._categories, strict=True)
        }
        return frame.astype(dtypes)

    def _run(self, data: Any) -> Predictions:
        if len(data) == 0:
            return empty(self.task, self.classes)
        raw = self.booster.predict(data)
        if self.task == "regression":
            return regression(raw)
        return classification(
            self.classes, probabilities=probability_matrix(raw, len(self.classes))
        )


class LightGBMFlavor:
    """LGBMClassifier / LGBMRegressor and raw Boosters, in lightgbm's text format."""

    name = "lightgbm"

    def accepts(self, model: object) -> bool:
        """True for lightgbm's sklearn wrappers and Boosters."""
        if not type(model).__module__.startswith("lightgbm"):
            return False
        lgb = _lgb()
        return isinstance(model, lgb.LGBMModel | lgb.Booster)

    def save(self, model: object, folder: Path, *, trust: bool = False) -> Mapping[str, Any]:
        """Write ``model.txt``; record the task and the original class labels."""
        lgb = _lgb()
        if isinstance(model, lgb.LGBMModel):
            booster = model.booster_
        elif isinstance(model, lgb.Booster):
            booster = model
        else:
            raise InvalidInput(f"The lightgbm flavor saves lightgbm models; got {type(model)!r}.")
        objective = str(booster.params.get("objective") or "")
        if isinstance(model, lgb.LGBMClassifier):
            task: Task = "classification"
            classes = json_ready(np.asarray(model.classes_).tolist())
        elif objective in _CLASSIFYING and not isinstance(model, lgb.LGBMModel):
            task = "classification"
            num_class = int(booster.params.get("num_class") or 1)
            classes = list(range(max(num_class, 2)))
        else:
            task, classes = "regression", []
        (folder / _FILE).write_text(booster.model_to_string(), encoding="utf-8")
        return {
            "format": "text",
            "file": _FILE,
            "kind": type(model).__name__,
            "objective": objective,
            "task": task,
            "classes": classes,
            "feature_names": list(booster.feature_name()),
            "lightgbm_version": lgb.__version__,
        }

    def load(self, folder: Path, meta: Mapping[str, Any], *, trust: bool = False) -> Model:
        """Load the text model as a Booster; labels come from the metadata."""
        lgb = _lgb()
        booster = lgb.Booster(model_file=str(folder / str(meta.get("file", _FILE))))
        return LightGBMModel(
            booster,
            task=check_task(meta.get("task", "regression")),
            classes=classes_from_meta(meta),
        )
