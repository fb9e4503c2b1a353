"""What mloop refuses to load without trust, and what it opens from disk."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from flavor_models import assert_same, numeric_frame, round_trip
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mloop.errors import IntegrityError, InvalidInput, NotFound
from mloop.flavors import flavor_for, get_flavor, load_artifact


def _double(x: np.ndarray) -> np.ndarray:
    return x * 2


def _custom_pipeline() -> tuple[object, pd.DataFrame]:
    frame, labels = numeric_frame()
    pipe = make_pipeline(FunctionTransformer(_double), LogisticRegression(max_iter=300))
    return pipe.fit(frame.to_numpy(), labels), frame


def test_skops_file_with_untrusted_type_is_refused(tmp_path: Path) -> None:
    pipe, frame = _custom_pipeline()
    path = tmp_path / "model.skops"
    skops.io.dump(pipe, path)
    with pytest.raises(InvalidInput, match=r"_double.*trust=True"):
        load_artifact(path)
    loaded = load_artifact(path, trust=True)
    assert loaded.predict(frame.to_numpy()).tolist() == pipe.predict(frame.to_numpy()).tolist()  # type: ignore[attr-defined]


def test_sklearn_flavor_needs_trust_for_custom_types_then_records_it(tmp_path: Path) -> None:
    pipe, frame = _custom_pipeline()
    # Auto-detection does not pick skops for an object that needs trust: cloudpickle instead.
    assert flavor_for(pipe).name == "pyfunc"
    flavor = get_flavor("sklearn")
    with pytest.raises(InvalidInput, match="trust=True"):
        flavor.save(pipe, tmp_path)
    meta = dict(flavor.save(pipe, tmp_path, trust=True))
    assert meta["trusted_types"] == [f"{__name__}._double"]
    model = flavor.load(tmp_path, meta)  # trusted at registration: no flag needed now
    assert_same(model.predict(frame), pipe.predict(frame.to_numpy()))  # type: ignore[attr-defined]
    # Metadata altered after registration: the stored types are no longer vouched for.
    with pytest.raises(IntegrityError, match="refusing to load"):
        flavor.load(tmp_path, {**meta, "trusted_types": []})


def test_pickle_needs_trust(tmp_path: Path) -> None:
    frame, labels = numeric_frame()
    clf = LogisticRegression(max_iter=300).fit(frame, labels)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(clf))
    with pytest.raises(InvalidInput, match=r"runs arbitrary code.*trust=True"):
        load_artifact(path)
    loaded = load_artifact(path, trust=True)
    model = round_trip(flavor_for(loaded), loaded, tmp_path / "m")
    assert_same(model.predict(frame), clf.predict(frame), clf.predict_proba(frame))


def test_load_artifact_native_files(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    frame, labels = numeric_frame()
    codes = pd.Series(labels).map({"low": 0, "mid": 1, "high": 2}).to_numpy()
    clf = xgb.XGBClassifier(n_estimators=4, n_jobs=1).fit(frame, codes)
    clf.save_model(tmp_path / "model.json")
    loaded = load_artifact(tmp_path / "model.json")
    assert isinstance(loaded, xgb.XGBClassifier)
    booster = lgb.LGBMRegressor(n_estimators=4, verbose=-1).fit(frame, frame["f0"]).booster_
    booster.save_model(tmp_path / "model.txt")
    assert isinstance(load_artifact(tmp_path / "model.txt"), lgb.Booster)
    (tmp_path / "model.onnx").write_bytes(b"not really onnx")
    assert load_artifact(tmp_path / "model.onnx") == b"not really onnx"
    (tmp_path / "notes.csv").write_text("a,b\n")
    with pytest.raises(InvalidInput, match=r"\.skops"):
        load_artifact(tmp_path / "notes.csv")
    with pytest.raises(NotFound):
        load_artifact(tmp_path / "missing.skops")
    with pytest.raises(InvalidInput, match="MLmodel"):
        load_artifact(tmp_path)  # a directory that is not an MLflow model


def test_corrupt_onnx_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(InvalidInput, match="onnxruntime cannot load"):
        get_flavor("onnx").save(b"garbage", tmp_path)
