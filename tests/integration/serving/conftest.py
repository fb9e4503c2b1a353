"""A registry with two small models registered, shared by the serving integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from mloop.config import Settings, load_settings
from mloop.registry import Registry
from mloop.serving import create_app


def churn_data(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two numeric features and a category; label 'yes' when a + b is large."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "plan": rng.choice(["basic", "pro"], size=n),
        }
    )
    y = np.where(frame["a"] + frame["b"] > 0, "yes", "no")
    return frame, y


def numeric_data(n: int = 200, k: int = 4, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """``k`` numeric features f0..f{k-1}; label 1 when f0 > 0."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, k)), columns=[f"f{i}" for i in range(k)])
    return frame, (frame["f0"] > 0).astype(int).to_numpy()


def fit(frame: pd.DataFrame, y: np.ndarray, *, flip: bool = False) -> Any:
    """A pipeline over numeric columns (categoricals dropped) so flavors can save it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    numeric = [c for c in frame.columns if frame[c].dtype.kind == "f"]
    target = y[::-1] if flip else y
    pre = ColumnTransformer([("num", "passthrough", numeric)])
    return make_pipeline(pre, LogisticRegression()).fit(frame, target)


@pytest.fixture(scope="session")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with 'churn' v1 (production) and v2, and 'numeric' v1 (production)."""
    home = tmp_path_factory.mktemp("serving") / "home"
    settings = load_settings(env={}, config_file=None, home=home)
    reg = Registry(settings)
    frame, y = churn_data()
    reg.register(fit(frame, y), "churn", training_data=frame, target=y, alias="production")
    reg.register(fit(frame, y, flip=True), "churn", training_data=frame, target=y)
    nframe, ny = numeric_data()
    reg.register(fit(nframe, ny), "numeric", training_data=nframe, target=ny, alias="production")
    return home


@pytest.fixture
def serving_settings(served_home: Path, tmp_path: Path) -> Settings:
    """Settings on a private copy of the served home (tests may move aliases)."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(served_home, home)
    s = load_settings(env={}, config_file=None, home=home)
    return replace(s, serving=replace(s.serving, access_log=False, alias_poll_s=0.05))


@pytest.fixture
def client(serving_settings: Settings) -> Iterator[TestClient]:
    """An open (no auth) app driven in-process."""
    app = create_app(serving_settings, auth=False)
    with TestClient(app) as c:
        yield c
