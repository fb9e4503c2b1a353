"""The Palmer penguins: the demo's data, its model and its retraining pipeline.

The data ships inside the ``palmerpenguins`` package (the ``demo`` extra); nothing is
downloaded. Traffic is resampled from it with a little numeric jitter; ``dream_share``
sets how much comes from Dream island, where the Chinstraps live that a model trained
on Biscoe and Torgersen has never seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mloop._deps import require

if TYPE_CHECKING:
    from mloop.pipelines import Pipeline, TrainingData

__all__ = [
    "FEATURES",
    "MODEL",
    "TARGET",
    "broken_pipeline",
    "fit_classifier",
    "flip_labels",
    "penguins",
    "pipeline",
    "records",
    "traffic",
    "train",
    "train_on_shuffled_labels",
]

MODEL = "penguins"
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
TARGET = "species"
_NUMERIC = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


def penguins() -> pd.DataFrame:
    """Features and ``species`` of the 344 penguins (gaps included)."""
    frame = require("palmerpenguins", "the demo data").load_penguins()
    frame = frame[[*FEATURES, TARGET]].copy()
    frame[TARGET] = frame[TARGET].astype(str)
    return frame.reset_index(drop=True)


def traffic(rows: int, *, dream_share: float, seed: int) -> pd.DataFrame:
    """``rows`` penguins resampled with numeric jitter; ``dream_share`` of them from Dream."""
    rng = np.random.default_rng(seed)
    data = penguins()
    data = data[data[["bill_length_mm", "body_mass_g"]].notna().all(axis=1)]
    dream = data[data["island"] == "Dream"]
    other = data[data["island"] != "Dream"]
    n_dream = round(rows * dream_share)
    picked = pd.concat(
        [
            other.iloc[rng.integers(0, len(other), rows - n_dream)],
            dream.iloc[rng.integers(0, len(dream), n_dream)],
        ]
    ).sample(frac=1.0, random_state=int(rng.integers(0, 2**31)))
    picked = picked.reset_index(drop=True)
    for column in _NUMERIC:
        scale = float(data[column].std()) * 0.03
        picked[column] = (picked[column] + rng.normal(0.0, scale, len(picked))).round(2)
    return picked


def flip_labels(labels: pd.Series, share: float, *, seed: int = 0) -> pd.Series:
    """A copy where ``share`` of the labels name another class (label-flipping poison)."""
    rng = np.random.default_rng(seed)
    values = labels.astype(str).to_numpy(dtype=object).copy()
    classes = sorted(set(values))
    for i in rng.choice(len(values), round(share * len(values)), replace=False):
        others = [c for c in classes if c != values[i]]
        values[i] = others[int(rng.integers(0, len(others)))]
    return pd.Series(values, index=labels.index, name=labels.name)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows of the feature columns (a gap is ``null``)."""
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame[FEATURES].to_dict(orient="records")
    ]


def fit_classifier(X: pd.DataFrame, y: Any) -> Any:
    """Impute, scale and one-hot, then a logistic regression (a scikit-learn Pipeline)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline as SkPipeline
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if X[c].dtype.kind == "f"]
    categorical = [c for c in X.columns if c not in numeric]
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )
    model = SkPipeline([("prep", prep), ("clf", LogisticRegression(max_iter=2000, C=0.5))])
    return model.fit(X, np.asarray(y).astype(str))


def train(data: TrainingData) -> Any:
    """The retraining step: the same classifier on the run's fresh, validated rows."""
    return fit_classifier(data.X, data.y)


def train_on_shuffled_labels(data: TrainingData) -> Any:
    """A broken retraining step (labels shuffled): what a bug in a feature job looks like."""
    rng = np.random.default_rng(0)
    return fit_classifier(data.X, rng.permutation(data.y.astype(str).to_numpy()))


def pipeline() -> Pipeline:
    """Retrain ``penguins`` on its own logged traffic joined with the labels fed back."""
    from mloop.pipelines import Pipeline

    return Pipeline(
        name="penguins-retrain",
        model=MODEL,
        train=train,
        target="label",
        features=tuple(FEATURES),
        window=3600.0,
    )


def broken_pipeline() -> Pipeline:
    """The same pipeline with a bug in training: its challenger is worse than the champion."""
    return pipeline().with_options(name="penguins-retrain-broken", train=train_on_shuffled_labels)
