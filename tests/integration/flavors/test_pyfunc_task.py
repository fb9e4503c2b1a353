"""A python-function model learns its task from the target it was registered with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mloop.config import load_settings
from mloop.registry import Registry


class Rule:
    """A user's rule that answers class names and says nothing of its task."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.where(X["a"] > 0, "yes", "no")


class Score:
    """A user's rule that answers numbers."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X["a"].to_numpy() * 2


class DeclaredRegressor(Rule):
    task = "regression"


def _registry(tmp_path: Path) -> Registry:
    return Registry(load_settings(env={}, config_file=None, home=tmp_path / "home"))


X = pd.DataFrame({"a": np.linspace(-1, 1, 40)})


def test_text_target_makes_a_classifier_with_the_targets_classes(tmp_path: Path) -> None:
    y = np.where(X["a"] > 0, "yes", "no")
    registry = _registry(tmp_path)
    mv = registry.register(Rule(), "rule", training_data=X, target=y)
    assert mv.task == "classification"
    assert tuple(mv.classes) == ("no", "yes")
    got = registry.load("rule").predict([{"a": 0.5}, {"a": -0.5}])
    assert got.labels is not None and got.labels.tolist() == ["yes", "no"]


def test_numeric_target_keeps_a_regressor(tmp_path: Path) -> None:
    mv = _registry(tmp_path).register(Score(), "score", training_data=X, target=X["a"] * 2)
    assert mv.task == "regression"


def test_a_declared_task_wins_over_the_target(tmp_path: Path) -> None:
    import pytest

    from mloop.errors import MloopError

    y = np.where(X["a"] > 0, "yes", "no")
    with pytest.raises(MloopError, match="non-numeric"):
        _registry(tmp_path).register(DeclaredRegressor(), "declared", training_data=X, target=y)
