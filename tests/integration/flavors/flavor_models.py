"""Small generated data sets and fitted models shared by the flavor tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mloop.flavors import Flavor, Model, Predictions


def mixed_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Numeric and string columns with missing values; labels 'yes'/'no'."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "pro", "team"], n).astype(object),
        }
    )
    score = (frame["age"] - 40) / 10 + (frame["plan"] == "pro") - 0.3
    labels = np.where(score + rng.normal(0, 0.5, n) > 0, "yes", "no")
    frame.loc[frame.index[::9], "age"] = np.nan
    frame.loc[frame.index[::11], "plan"] = None
    return frame, labels


def mixed_pipeline(frame: pd.DataFrame, labels: np.ndarray) -> Pipeline:
    """Imputation + scaling + one-hot (unknown categories ignored) + logistic regression."""
    columns = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                ["plan"],
            ),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, labels)


def numeric_frame(n: int = 300, seed: int = 1, width: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """All-numeric features; three classes 'low'/'mid'/'high'."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, width))
    frame = pd.DataFrame(data, columns=[f"f{i}" for i in range(width)])
    total = data[:, 0] + 0.5 * data[:, 1]
    labels = np.select([total < -0.5, total < 0.5], ["low", "mid"], "high")
    return frame, labels


def round_trip(flavor: Flavor, model: object, folder: Path, **kwargs: Any) -> Model:
    """Save into an empty folder and load back, the way the registry does."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(flavor.save(model, folder, **kwargs))
    return flavor.load(folder, meta)


def assert_same(got: Predictions, labels: Any, probabilities: Any = None) -> None:
    """Labels equal, probabilities close."""
    assert got.labels is not None
    assert [str(v) for v in got.labels.tolist()] == [str(v) for v in np.asarray(labels).tolist()]
    if probabilities is not None:
        assert got.probabilities is not None
        np.testing.assert_allclose(got.probabilities, probabilities, rtol=1e-5, atol=1e-6)
