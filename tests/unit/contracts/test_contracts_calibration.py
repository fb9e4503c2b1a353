"""Calibration: fitted on reference labels, applied to new probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from mloop.contracts import Calibration
from mloop.errors import InvalidInput


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-15, 1)).mean())


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-class confidence."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == y
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(conf[mask].mean() - right[mask].mean())
    return total


def overconfident(probs: np.ndarray, power: float = 4.0) -> np.ndarray:
    sharp: np.ndarray = probs**power
    out: np.ndarray = sharp / sharp.sum(axis=1, keepdims=True)
    return out


@pytest.mark.parametrize("n_classes", [2, 3])
def test_calibration_repairs_a_miscalibrated_classifier(n_classes: int) -> None:
    x, y = make_classification(
        n_samples=6000,
        n_features=8,
        n_informative=5,
        n_classes=n_classes,
        flip_y=0.1,
        random_state=0,
    )
    model = LogisticRegression(max_iter=500).fit(x[:2000], y[:2000])
    probs = overconfident(model.predict_proba(x[2000:]))
    ref_p, ref_y = probs[:2000], y[2000:4000]
    new_p, new_y = probs[2000:], y[4000:]
    calibration = Calibration.fit(ref_p, ref_y, classes=list(range(n_classes)))
    fixed = calibration.apply(new_p)
    assert fixed.shape == new_p.shape
    np.testing.assert_allclose(fixed.sum(axis=1), 1.0)
    assert log_loss(fixed, new_y) < log_loss(new_p, new_y) - 0.05
    assert ece(fixed, new_y) < ece(new_p, new_y) / 2


def test_labels_match_classes_by_value_or_text() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    by_value = Calibration.fit(probs, np.array([0.0, 1.0, 0.0, 1.0]), classes=[0, 1])
    by_text = Calibration.fit(probs, ["0", "1", "0", "1"], classes=[0, 1])
    assert by_value == by_text
    assert by_value.classes == ("0", "1")
    with pytest.raises(InvalidInput, match="None of the target labels"):
        Calibration.fit(probs, ["a", "b", "a", "b"], classes=[0, 1])


def test_calibration_round_trips_through_json() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(200)
    probs = np.column_stack([1 - p, p])
    target = (rng.random(200) < p).astype(int)
    calibration = Calibration.fit(probs, target, classes=[0, 1])
    again = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    assert again == calibration
    np.testing.assert_array_equal(again.apply(probs), calibration.apply(probs))


def test_apply_checks_the_shape() -> None:
    calibration = Calibration(classes=("a", "b"), x=((0.0, 1.0),) * 2, y=((0.0, 1.0),) * 2)
    with pytest.raises(InvalidInput, match="2 classes"):
        calibration.apply(np.ones((3, 3)) / 3)
