"""The flavors mloop knows, by name, and which one saves a given object."""

from __future__ import annotations

from mloop.errors import InvalidInput
from mloop.flavors._base import Flavor
from mloop.flavors._lightgbm import LightGBMFlavor
from mloop.flavors._mlflow import MlflowFlavor
from mloop.flavors._onnx import OnnxFlavor
from mloop.flavors._pyfunc import PyfuncFlavor
from mloop.flavors._sklearn import SklearnFlavor
from mloop.flavors._xgboost import XGBoostFlavor

__all__ = ["FLAVORS", "flavor_for", "get_flavor"]

# Tried in this order by flavor_for: native formats first, cloudpickle (pyfunc) last.
_ORDER: tuple[Flavor, ...] = (
    XGBoostFlavor(),
    LightGBMFlavor(),
    OnnxFlavor(),
    MlflowFlavor(),
    SklearnFlavor(),
    PyfuncFlavor(),
)
_BY_NAME: dict[str, Flavor] = {f.name: f for f in _ORDER}

FLAVORS: tuple[str, ...] = tuple(sorted(_BY_NAME))


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name`` (one of ``FLAVORS``)."""
    flavor = _BY_NAME.get(name)
    if flavor is None:
        raise InvalidInput(
            f"Unknown model flavor {name!r}. Known flavors: {', '.join(FLAVORS)}.",
            flavor=name,
        )
    return flavor


def flavor_for(model: object) -> Flavor:
    """The flavor that saves ``model``, preferring native formats over pickling."""
    for flavor in _ORDER:
        if flavor.accepts(model):
            return flavor
    raise InvalidInput(
        f"mloop cannot tell how to save an object of type {type(model).__module__}."
        f"{type(model).__qualname__}. Supported: scikit-learn estimators (sklearn), xgboost and "
        "lightgbm models, ONNX graphs (ModelProto, bytes or a .onnx path), MLflow model "
        "directories (via import_mlflow), and any object with a predict() method (pyfunc).",
        type=f"{type(model).__module__}.{type(model).__qualname__}",
    )
