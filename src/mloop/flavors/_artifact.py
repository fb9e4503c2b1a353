"""Open a model file or directory from disk (what ``mloop register <path>`` takes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mloop._deps import require
from mloop.errors import InvalidInput, NotFound
from mloop.flavors._mlflow import import_mlflow
from mloop.flavors._sklearn import load_pickle_file, load_skops_file

__all__ = ["load_artifact"]

_KINDS = (
    ".skops (scikit-learn), .pkl/.pickle/.joblib (needs trust), .onnx, xgboost .json/.ubj, "
    "lightgbm .txt, or an MLflow model directory"
)


def load_artifact(path: Path | str, *, trust: bool = False) -> object:
    """The model stored at ``path``, ready for ``flavor_for`` and registration.

    Pickle files run code when read and need ``trust=True``; skops files may hold only
    scikit-learn/numpy/scipy types unless ``trust=True``.
    """
    target = Path(path)
    if not target.exists():
        raise NotFound(f"No model file or directory at '{target}'.")
    if target.is_dir() or target.name == "MLmodel":
        model, _ = import_mlflow(target, trust=trust)
        return model
    suffix = target.suffix.lower()
    if suffix == ".skops":
        return load_skops_file(target, trust=trust)
    if suffix in (".pkl", ".pickle", ".joblib"):
        return load_pickle_file(target, trust=trust)
    if suffix == ".onnx":
        return target.read_bytes()
    if suffix in (".json", ".ubj"):
        return _xgboost(target)
    if suffix == ".txt":
        lgb = require("lightgbm", "loading a lightgbm .txt model")
        try:
            return lgb.Booster(model_file=str(target))
        except Exception as exc:
            raise InvalidInput(f"'{target}' is not a lightgbm text model: {exc}") from exc
    raise InvalidInput(f"Cannot tell what kind of model '{target}' is. mloop reads {_KINDS}.")


def _xgboost(path: Path) -> Any:
    xgb = require("xgboost", "loading an xgboost model file")
    try:
        booster = xgb.Booster(model_file=str(path))
    except Exception as exc:
        raise InvalidInput(f"'{path}' is not an xgboost model file: {exc}") from exc
    # xgboost's sklearn wrappers leave their estimator type in the booster's attributes.
    attribute = booster.attr("scikit_learn")
    kind = json.loads(attribute).get("_estimator_type") if attribute else None
    if kind == "classifier":
        model = xgb.XGBClassifier()
    elif kind == "regressor":
        model = xgb.XGBRegressor()
    else:
        return booster
    model.load_model(str(path))
    return model
