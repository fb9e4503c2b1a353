"""Realized metrics agree with scikit-learn and never warn on degenerate windows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mloop.errors import InvalidInput
from mloop.monitor import classification_metrics, metrics_by_slice, regression_metrics


def _multiclass(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), n)
    y_true = np.array([rng.choice(k, p=p) for p in proba])
    return y_true, proba.argmax(axis=1), proba


@pytest.mark.parametrize("k", [2, 4])
def test_classification_metrics_match_scikit_learn(k: int) -> None:
    y, pred, proba = _multiclass(2_000, k, seed=k)
    got = classification_metrics(y, pred, proba, classes=list(range(k)))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert got["recall_macro"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=list(range(k))))
    expected_auc = (
        skm.roc_auc_score(y, proba[:, 1])
        if k == 2
        else skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    assert got["roc_auc"] == pytest.approx(expected_auc)
    if k == 2:
        assert got["f1"] == pytest.approx(skm.f1_score(y, pred))


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    p = y + rng.normal(0, 0.3, 500)
    got = regression_metrics(y, p)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert got["r2"] == pytest.approx(skm.r2_score(y, p))


def test_a_window_with_one_class_gives_nan_auc_instead_of_an_error() -> None:
    got = classification_metrics(
        ["a", "a"], ["a", "b"], np.array([[0.9, 0.1], [0.4, 0.6]]), ["a", "b"]
    )
    assert np.isnan(got["roc_auc"]) and got["accuracy"] == 0.5


def test_unknown_true_labels_are_refused_by_value() -> None:
    with pytest.raises(InvalidInput, match="'z'"):
        classification_metrics(["z"], ["a"], classes=["a", "b"])


def test_metrics_per_slice() -> None:
    out = metrics_by_slice(["eu", "eu", "us"], ["a", "b", "a"], ["a", "a", "a"])
    assert out["eu"]["accuracy"] == 0.5 and out["us"]["accuracy"] == 1.0
    reg = metrics_by_slice(["x", "y"], [1.0, 2.0], [1.5, 2.0], task="regression")
    assert reg["x"]["mae"] == 0.5 and reg["y"]["mae"] == 0.0
