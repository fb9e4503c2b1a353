"""Choosing a flavor by name or by object, and the public surface of mloop.flavors."""

from __future__ import annotations

import numpy as np
import pytest

import mloop.flavors
from mloop.errors import InvalidInput
from mloop.flavors import FLAVORS, flavor_for, get_flavor


def test_public_surface() -> None:
    assert mloop.flavors.__all__ == [
        "FLAVORS",
        "ArrayModel",
        "Flavor",
        "MlflowModelDir",
        "Model",
        "Predictions",
        "Task",
        "flavor_for",
        "get_flavor",
        "import_mlflow",
        "load_artifact",
        "task_from_target",
    ]
    assert FLAVORS == ("lightgbm", "mlflow", "onnx", "pyfunc", "sklearn", "xgboost")


def test_every_name_resolves_to_its_flavor() -> None:
    for name in FLAVORS:
        assert get_flavor(name).name == name


def test_unknown_flavor_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"'torch'.*sklearn"):
        get_flavor("torch")


def test_object_without_predict_is_refused_with_the_supported_kinds() -> None:
    with pytest.raises(InvalidInput, match=r"builtins\.dict.*pyfunc"):
        flavor_for({"weights": [1, 2]})


def test_plain_objects_with_predict_are_pyfunc_and_bytes_are_onnx() -> None:
    class Constant:
        def predict(self, frame: object) -> np.ndarray:
            return np.zeros(3)

    assert flavor_for(Constant()).name == "pyfunc"
    with pytest.raises(InvalidInput):
        flavor_for(Constant)  # the class itself is not a model
    assert flavor_for(b"\x08\x07").name == "onnx"


def test_sklearn_estimators_pick_the_sklearn_flavor() -> None:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0])
    assert flavor_for(model).name == "sklearn"
