"""Reference profiles: binning, JSON round trips, predictions, target and metrics."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.contracts import FeatureProfile, Profile, bin_counts, build_profile, infer_schema
from mloop.errors import InvalidInput
from mloop.types import Predictions


def reference(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(8, 1, size=n)
    income[::50] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "kids": rng.integers(0, 4, size=n),
            "member": rng.random(n) < 0.3,
            "city": rng.choice(["oslo", "paris", "lima"], size=n, p=[0.5, 0.3, 0.2]),
            "seen": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
        }
    )


def assert_plain_json(value: Any) -> None:
    """No numpy scalars or arrays anywhere: exactly what json would give back."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            assert_plain_json(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain_json(v)
    else:
        assert value is None or type(value) in (bool, int, float, str), type(value)


def test_feature_profiles_count_every_row() -> None:
    frame = reference()
    profile = build_profile(frame, infer_schema(frame))
    assert profile.n == len(frame)
    assert set(profile.features) == {"income", "kids", "member", "city"}  # no datetimes
    for fp in profile.features.values():
        total = sum(fp.counts) if fp.kind == "numeric" else sum(fp.category_counts)
        assert total + fp.missing == fp.n == len(frame)
    income = profile.features["income"]
    assert income.missing == 40 and len(income.counts) == len(income.edges) + 1 == 20
    assert list(income.edges) == sorted(set(income.edges))
    assert income.min is not None and income.max is not None and income.min < income.max


def test_discrete_numbers_bin_on_midpoints() -> None:
    frame = reference()
    kids = build_profile(frame, infer_schema(frame)).features["kids"]
    assert kids.edges == (0.5, 1.5, 2.5)
    assert list(kids.counts) == np.bincount(frame["kids"], minlength=4).tolist()


def test_categorical_profile_keeps_frequent_first_and_other() -> None:
    frame = reference()
    profile = build_profile(frame, infer_schema(frame))
    city = profile.features["city"]
    assert city.kind == "categorical"
    assert city.categories == ("oslo", "paris", "lima")
    assert len(city.category_counts) == 4 and city.category_counts[-1] == 0
    member = profile.features["member"]
    assert set(member.categories) == {"True", "False"}


def test_many_categories_fold_into_other() -> None:
    frame = pd.DataFrame({"word": [f"w{i % 80}" for i in range(800)]})
    word = build_profile(frame, infer_schema(frame)).features["word"]
    assert len(word.categories) == 50
    assert word.category_counts[-1] == 300


def test_bin_counts_reproduce_the_reference_counts() -> None:
    frame = reference()
    profile = build_profile(frame, infer_schema(frame))
    for name, fp in profile.features.items():
        counts, missing = bin_counts(fp, frame[name])
        expected = fp.counts if fp.kind == "numeric" else fp.category_counts
        assert counts.tolist() == list(expected), name
        assert missing == fp.missing
        assert counts.sum() + missing == len(frame)


def test_bin_counts_on_live_values() -> None:
    fp = FeatureProfile("x", "numeric", n=4, missing=0, edges=(1.0, 2.0), counts=(1, 2, 1))
    counts, missing = bin_counts(fp, [0.0, 1.0, 1.5, 2.0, 9.0, None, float("nan"), "abc"])
    assert counts.tolist() == [1, 2, 2] and missing == 3
    cat = FeatureProfile(
        "c", "categorical", n=3, missing=0, categories=("a", "b"), category_counts=(2, 1, 0)
    )
    counts, missing = bin_counts(cat, np.array(["a", "z", None, "b", "a"], dtype=object))
    assert counts.tolist() == [2, 1, 1] and missing == 1
    flags = FeatureProfile(
        "f", "categorical", n=2, missing=0, categories=("True",), category_counts=(1, 1)
    )
    assert bin_counts(flags, np.array([True, False, True]))[0].tolist() == [2, 1]


def classifier_predictions(n: int, seed: int = 1) -> tuple[Predictions, np.ndarray]:
    rng = np.random.default_rng(seed)
    p1 = rng.random(n)
    target = np.where(rng.random(n) < p1, "yes", "no")
    probs = np.column_stack([1 - p1, p1])
    labels = np.where(p1 > 0.5, "yes", "no")
    return (
        Predictions("classification", labels=labels, probabilities=probs, classes=("no", "yes")),
        target,
    )


def test_classifier_profile_has_predictions_scores_calibration_and_metrics() -> None:
    frame = reference(1000)
    predictions, target = classifier_predictions(1000)
    profile = build_profile(frame, infer_schema(frame), predictions=predictions, target=target)
    assert profile.prediction is not None and profile.prediction.kind == "categorical"
    assert set(profile.prediction.categories) == {"no", "yes"}
    assert profile.scores is not None and profile.scores.kind == "numeric"
    assert profile.scores.min is not None and profile.scores.min >= 0.5
    assert profile.target is not None and set(profile.target.categories) == {"no", "yes"}
    assert profile.calibration is not None and profile.calibration.classes == ("no", "yes")
    assert set(profile.performance) == {"accuracy", "log_loss", "roc_auc"}
    assert 0.6 < profile.performance["accuracy"] < 0.9
    assert 0.7 < profile.performance["roc_auc"] < 0.95


def test_unpredicted_classes_still_have_a_bucket() -> None:
    frame = reference(10)
    labels = np.array(["no"] * 10)
    predictions = Predictions("classification", labels=labels, classes=("no", "yes"))
    profile = build_profile(frame, infer_schema(frame), predictions=predictions)
    assert profile.prediction is not None
    assert profile.prediction.categories == ("no", "yes")
    assert profile.prediction.category_counts == (10, 0, 0)
    assert profile.calibration is None and profile.performance == {}


def test_regressor_profile_and_metrics() -> None:
    frame = reference(500)
    rng = np.random.default_rng(3)
    target = rng.normal(size=500)
    values = target + rng.normal(scale=0.1, size=500)
    predictions = Predictions("regression", values=values)
    profile = build_profile(frame, infer_schema(frame), predictions=predictions, target=target)
    assert profile.prediction is not None and profile.prediction.kind == "numeric"
    assert profile.scores is None and profile.calibration is None
    assert profile.target is not None and profile.target.kind == "numeric"
    assert set(profile.performance) == {"mae", "rmse", "r2"}
    assert profile.performance["r2"] > 0.9
    assert profile.performance["mae"] < profile.performance["rmse"] < 0.2


def test_profile_json_round_trip_has_no_numpy_types() -> None:
    frame = reference(800)
    predictions, target = classifier_predictions(800)
    profile = build_profile(frame, infer_schema(frame), predictions=predictions, target=target)
    data = profile.to_dict()
    assert_plain_json(data)
    again = Profile.from_dict(json.loads(json.dumps(data)))
    assert again == profile


def test_profile_input_mistakes_are_explained() -> None:
    frame = reference(20)
    schema = infer_schema(frame)
    with pytest.raises(InvalidInput, match="no column 'city'"):
        build_profile(frame.drop(columns="city"), schema)
    with pytest.raises(InvalidInput, match="5 predictions for 20"):
        build_profile(frame, schema, predictions=Predictions("regression", values=np.zeros(5)))


def test_ndarray_reference_uses_schema_names() -> None:
    x = np.random.default_rng(0).normal(size=(300, 2))
    profile = build_profile(x, infer_schema(x))
    assert set(profile.features) == {"f0", "f1"}
    assert sum(profile.features["f1"].counts) == 300
