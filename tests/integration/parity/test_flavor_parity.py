"""Every flavor answers as the model does on real data with missing values.

The entry points share one path after the flavor (tested in
``test_prediction_parity.py``); here each flavor's own reading of the served frame
is checked through the Python API and the records API against the library's own
``predict`` on the training frame: XGBoost and LightGBM with pandas categoricals
holding gaps, ONNX converted from a pipeline that imputes, a python-function model
wrapping a pipeline, and an MLflow model folder saved by mlflow itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from parity_data import DataSet, airquality, breast_cancer, chile, enriched, penguins, slid
from parity_models import sklearn_pipeline
from test_prediction_parity import _answers, _assert_equal, _assert_same, _records

from mloop.config import load_settings
from mloop.flavors import import_mlflow
from mloop.registry import Registry
from mloop.serving import create_app


def _categorical(data: DataSet) -> DataSet:
    """Text columns as pandas categoricals (gaps stay NaN), as XGBoost and LightGBM take them."""
    X = data.X.copy()
    for name in X.columns:
        if pd.api.types.is_string_dtype(X[name].dtype) or X[name].dtype == object:
            X[name] = X[name].astype("category")
    return DataSet(data.name, X.select_dtypes(exclude="datetime"), data.y, data.task)


def _codes(y: np.ndarray) -> np.ndarray:
    """Class names as 0..k-1, what XGBoost's classifier is fitted on."""
    return np.unique(y.astype(str), return_inverse=True)[1]


class PipelineFunction:
    """A user's own class around a fitted pipeline (served as a python function)."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.classes_ = pipeline.classes_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(X))


Expected = tuple[np.ndarray, np.ndarray | None]


def _xgboost(data: DataSet, folder: Path) -> tuple[Any, DataSet, Expected]:
    xgb = pytest.importorskip("xgboost")
    data = _categorical(data)
    if data.task == "regression":
        reg = xgb.XGBRegressor(n_estimators=20, enable_categorical=True, n_jobs=1)
        reg.fit(data.X, data.y)
        return reg, data, (reg.predict(data.X), None)
    codes = _codes(data.y)
    clf = xgb.XGBClassifier(n_estimators=20, enable_categorical=True, n_jobs=1)
    clf.fit(data.X, codes)
    data = DataSet(data.name, data.X, codes, data.task)
    return clf, data, (clf.predict(data.X), clf.predict_proba(data.X))


def _lightgbm(data: DataSet, folder: Path) -> tuple[Any, DataSet, Expected]:
    lgb = pytest.importorskip("lightgbm")
    data = _categorical(data)
    if data.task == "regression":
        reg = lgb.LGBMRegressor(n_estimators=20, verbose=-1, n_jobs=1).fit(data.X, data.y)
        return reg, data, (reg.predict(data.X), None)
    clf = lgb.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1).fit(data.X, data.y)
    return clf, data, (clf.predict(data.X), clf.predict_proba(data.X))


def _onnx(data: DataSet, folder: Path) -> tuple[Any, DataSet, Expected]:
    skl2onnx = pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = data.X.select_dtypes("number").astype("float32")
    data = DataSet(data.name, X, data.y, data.task)
    head: Any = (
        LinearRegression() if data.task == "regression" else LogisticRegression(max_iter=2000)
    )
    pipeline = make_pipeline(SimpleImputer(), StandardScaler(), head).fit(X.to_numpy(), data.y)
    options = {} if data.task == "regression" else {"zipmap": False}
    proto = skl2onnx.to_onnx(pipeline, X.to_numpy()[:1], options=options)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: X.to_numpy()})
    if data.task == "regression":
        return proto, data, (outputs[0].ravel(), None)
    return proto, data, (outputs[0], outputs[1])


def _pyfunc(data: DataSet, folder: Path) -> tuple[Any, DataSet, Expected]:
    model = PipelineFunction(sklearn_pipeline(data))
    return model, data, (model.predict(data.X), model.predict_proba(data.X))


def _mlflow(data: DataSet, folder: Path) -> tuple[Any, DataSet, Expected]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow warns about pickling and type hints
        mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
        pipeline = sklearn_pipeline(data)
        path = folder / f"mlflow-{data.name}"
        mlflow_sklearn.save_model(pipeline, str(path), serialization_format="pickle")
    expected = (pipeline.predict(data.X), None)
    if data.task == "classification":
        expected = (pipeline.predict(data.X), pipeline.predict_proba(data.X))
    return path, data, expected


FLAVORS: dict[str, Callable[[DataSet, Path], tuple[Any, DataSet, Expected]]] = {
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "onnx": _onnx,
    "pyfunc": _pyfunc,
    "mlflow": _mlflow,
}
CASES = [
    ("xgboost", chile),
    ("xgboost", slid),
    ("lightgbm", penguins),
    ("lightgbm", slid),
    ("onnx", breast_cancer),
    ("onnx", airquality),
    ("pyfunc", chile),
    ("mlflow", penguins),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flavor-parity") / "home"


@pytest.fixture(scope="module")
def registered(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    registry = Registry(load_settings(env={}, config_file=None, home=home))
    folder = tmp_path_factory.mktemp("flavor-models")
    out = {}
    for flavor, load in CASES:
        base = load()
        data = enriched(base) if flavor in ("pyfunc", "mlflow") else base
        model, data, expected = FLAVORS[flavor](data, folder)
        name = f"{flavor}-{base.name.replace('_', '-')}"
        kind = None
        if flavor == "mlflow":
            model, kind = import_mlflow(model, trust=True)
        registry.register(
            model,
            name,
            training_data=data.X,
            target=data.y,
            alias="production",
            trust=True,
            flavor=kind,
        )
        out[name] = (data, expected)
    return out


def _ids() -> list[str]:
    return [f"{flavor}-{load.__name__.replace('_', '-')}" for flavor, load in CASES]


@pytest.mark.parametrize("name", _ids())
def test_python_api(home: Path, registered: dict[str, Any], name: str) -> None:
    data, (labels, proba) = registered[name]
    registry = Registry(load_settings(env={}, config_file=None, home=home))
    predictor = registry.load(name, trust=True)
    _assert_equal(predictor.predict(data.X), _as_labels(predictor, labels), proba)


@pytest.mark.parametrize("name", _ids())
def test_records_api(home: Path, registered: dict[str, Any], name: str) -> None:
    data, (labels, proba) = registered[name]
    settings = load_settings(env={}, config_file=None, home=home)
    predictor = Registry(settings).load(name, trust=True)
    with TestClient(create_app(settings, auth=False)) as client:
        r = client.post(f"/models/{name}/predict", json={"records": _records(data.X)})
    assert r.status_code == 200, r.text
    got, probabilities = _answers(r.json()["predictions"], predictor.classes)
    want = _as_labels(predictor, labels)
    if predictor.task == "classification":
        got = np.array([type(want[0])(v) for v in got], dtype=object)
    _assert_same(got, probabilities, want, proba)


def _as_labels(predictor: Any, labels: np.ndarray) -> np.ndarray:
    if predictor.task == "regression":
        return np.asarray(labels, dtype=float)
    return np.asarray(labels)
