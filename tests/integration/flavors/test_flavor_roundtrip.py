"""Each flavor saves a model and loads it back with the original labels and probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flavor_models import assert_same, mixed_frame, mixed_pipeline, numeric_frame, round_trip
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mloop.flavors import ArrayModel, flavor_for, get_flavor


def test_sklearn_pipeline_with_column_transformer_and_missing_values(tmp_path: Path) -> None:
    frame, labels = mixed_frame()
    pipeline = mixed_pipeline(frame, labels)
    flavor = flavor_for(pipeline)
    assert flavor.name == "sklearn"
    model = round_trip(flavor, pipeline, tmp_path / "m")
    # Unseen category and missing values in the batch being served.
    batch = frame.head(20).copy()
    batch.loc[batch.index[0], "plan"] = "enterprise"
    batch.loc[batch.index[1], ["age", "plan"]] = [np.nan, None]
    got = model.predict(batch)
    assert model.task == "classification"
    assert model.classes == ("no", "yes")
    assert_same(got, pipeline.predict(batch), pipeline.predict_proba(batch))
    assert got.to_records()[0]["label"] in ("no", "yes")
    assert len(model.predict(batch.head(0))) == 0  # an empty micro-batch is not an error


def test_sklearn_fitted_on_arrays_gets_arrays_without_warnings(tmp_path: Path) -> None:
    frame, labels = numeric_frame()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame.to_numpy(), labels)
    model = round_trip(get_flavor("sklearn"), forest, tmp_path / "m")
    got = model.predict(frame)  # a DataFrame in, no "feature names" warning (warnings are errors)
    assert_same(got, forest.predict(frame.to_numpy()), forest.predict_proba(frame.to_numpy()))
    assert isinstance(model, ArrayModel)
    assert_same(model.predict_array(frame.to_numpy()), forest.predict(frame.to_numpy()))


def test_sklearn_regressor_and_svc_labels(tmp_path: Path) -> None:
    frame, labels = numeric_frame()
    target = frame["f0"] * 2 + frame["f1"]
    regressor = HistGradientBoostingRegressor(max_iter=10).fit(frame, target)
    model = round_trip(get_flavor("sklearn"), regressor, tmp_path / "r")
    got = model.predict(frame)
    assert model.task == "regression" and got.values is not None
    np.testing.assert_allclose(got.values, regressor.predict(frame))
    assert isinstance(model, ArrayModel)
    np.testing.assert_allclose(model.predict_array(frame.to_numpy()).values, got.values)  # type: ignore[arg-type]
    # A stratified dummy draws labels apart from its probabilities: labels come from predict().
    dummy = DummyClassifier(strategy="stratified", random_state=0).fit(frame, labels)
    dummy_model = round_trip(get_flavor("sklearn"), dummy, tmp_path / "s")
    assert_same(dummy_model.predict(frame), dummy.predict(frame), dummy.predict_proba(frame))


def test_xgboost_wrappers_and_booster(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    frame, labels = numeric_frame()
    codes = pd.Series(labels).map({"low": 0, "mid": 1, "high": 2}).to_numpy()
    clf = xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1).fit(frame, codes)
    assert flavor_for(clf).name == "xgboost"
    model = round_trip(flavor_for(clf), clf, tmp_path / "c")
    assert_same(model.predict(frame), clf.predict(frame), clf.predict_proba(frame))
    assert model.classes == (0, 1, 2)
    booster = clf.get_booster()
    raw = round_trip(flavor_for(booster), booster, tmp_path / "b")
    assert_same(raw.predict(frame), clf.predict(frame), clf.predict_proba(frame))
    reg = xgb.XGBRegressor(n_estimators=8, n_jobs=1).fit(frame, frame["f0"])
    reg_model = round_trip(flavor_for(reg), reg, tmp_path / "r")
    np.testing.assert_allclose(reg_model.predict(frame).values, reg.predict(frame), rtol=1e-6)  # type: ignore[arg-type]


def test_lightgbm_keeps_string_labels(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    frame, labels = numeric_frame()
    clf = lgb.LGBMClassifier(n_estimators=8, verbose=-1, n_jobs=1).fit(frame, labels)
    flavor = flavor_for(clf)
    assert flavor.name == "lightgbm"
    model = round_trip(flavor, clf, tmp_path / "c")
    assert_same(model.predict(frame), clf.predict(frame), clf.predict_proba(frame))
    assert set(model.classes) == {"low", "mid", "high"}
    binary = np.where(labels == "high", "yes", "no")
    bin_clf = lgb.LGBMClassifier(n_estimators=8, verbose=-1, n_jobs=1).fit(frame, binary)
    bin_model = round_trip(flavor, bin_clf, tmp_path / "b")
    assert_same(bin_model.predict(frame), bin_clf.predict(frame), bin_clf.predict_proba(frame))
    assert isinstance(bin_model, ArrayModel)
    assert_same(bin_model.predict_array(frame.to_numpy()), bin_clf.predict(frame))
    assert len(bin_model.predict(frame.head(0))) == 0
    reg = lgb.LGBMRegressor(n_estimators=8, verbose=-1, n_jobs=1).fit(frame, frame["f0"])
    reg_model = round_trip(flavor, reg, tmp_path / "r")
    np.testing.assert_allclose(reg_model.predict(frame).values, reg.predict(frame))  # type: ignore[arg-type]


def test_onnx_tensor_input_without_zipmap(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    frame, labels = numeric_frame()
    data = frame.to_numpy(np.float32)
    clf = LogisticRegression(max_iter=500).fit(data, labels)
    proto = skl2onnx.to_onnx(clf, data[:1], options={"zipmap": False})
    flavor = flavor_for(proto)
    assert flavor.name == "onnx"
    model = round_trip(flavor, proto, tmp_path / "m")
    assert model.task == "classification"
    assert model.classes == tuple(clf.classes_.tolist())
    assert_same(model.predict(frame), clf.predict(data), clf.predict_proba(data))
    assert isinstance(model, ArrayModel)
    assert_same(model.predict_array(frame.to_numpy()), clf.predict(data))
    assert model.predict(frame.head(0)).to_records() == []


def test_onnx_column_inputs_with_zipmap(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    frame, labels = mixed_frame()
    frame = frame.dropna()
    labels = labels[frame.index]
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    pipeline = make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, labels)
    proto = skl2onnx.convert_sklearn(
        pipeline,
        initial_types=[
            ("age", FloatTensorType([None, 1])),
            ("income", FloatTensorType([None, 1])),
            ("plan", StringTensorType([None, 1])),
        ],
    )
    model = round_trip(get_flavor("onnx"), proto.SerializeToString(), tmp_path / "m")
    assert model.classes == ("no", "yes")
    # Loaded models read the matrix before ZipMap; the dict form must decode the same.
    from mloop.flavors._onnx import OnnxModel, _session

    dicts = OnnxModel(
        _session(proto.SerializeToString()), task="classification", classes=model.classes
    )
    for got in (model.predict(frame), dicts.predict(frame)):
        assert_same(got, pipeline.predict(frame), None)
        assert got.probabilities is not None
        np.testing.assert_allclose(got.probabilities, pipeline.predict_proba(frame), atol=1e-4)


def test_onnx_regressor_from_path(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LinearRegression

    frame, _ = numeric_frame()
    data = frame.to_numpy(np.float32)
    reg = LinearRegression().fit(data, data[:, 0] * 3)
    path = tmp_path / "reg.onnx"
    path.write_bytes(skl2onnx.to_onnx(reg, data[:1]).SerializeToString())
    assert flavor_for(path).name == "onnx"
    model = round_trip(get_flavor("onnx"), path, tmp_path / "m")
    assert model.task == "regression"
    np.testing.assert_allclose(model.predict(frame).values, reg.predict(data), rtol=1e-4)  # type: ignore[arg-type]


class _Threshold:
    """A user's own model: not an sklearn estimator, labels 'yes'/'no'."""

    classes_ = np.array(["no", "yes"])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.where(frame["f0"].to_numpy() > 0, "yes", "no")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-frame["f0"].to_numpy()))
        return np.column_stack([1 - p, p])


def test_pyfunc_object_gets_named_columns(tmp_path: Path) -> None:
    frame, _ = numeric_frame()
    obj = _Threshold()
    flavor = flavor_for(obj)
    assert flavor.name == "pyfunc"
    model = round_trip(flavor, obj, tmp_path / "m")
    assert model.task == "classification" and model.classes == ("no", "yes")
    assert_same(model.predict(frame), obj.predict(frame), obj.predict_proba(frame))


def test_pyfunc_class_from_a_module_that_cannot_be_imported_by_name(tmp_path: Path) -> None:
    import importlib.util
    import sys

    source = tmp_path / "scratch_models.py"
    source.write_text(
        "import numpy as np\n"
        "class Sign:\n"
        "    def predict(self, frame):\n"
        "        return np.sign(frame['f0'].to_numpy())\n"
    )
    spec = importlib.util.spec_from_file_location("scratch_models", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scratch_models"] = module
    try:
        spec.loader.exec_module(module)
        folder = tmp_path / "m"
        folder.mkdir()
        meta = get_flavor("pyfunc").save(module.Sign(), folder)
    finally:
        del sys.modules["scratch_models"]
    source.unlink()  # the code travels inside the artifact, not on disk
    frame, _ = numeric_frame()
    model = get_flavor("pyfunc").load(folder, meta)
    assert model.task == "regression"
    np.testing.assert_array_equal(model.predict(frame).values, np.sign(frame["f0"]))  # type: ignore[arg-type]
