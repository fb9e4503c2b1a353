"""Label-free estimates (CBPE) track realized performance when probabilities are calibrated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.contracts import Calibration, Profile
from mloop.monitor import classification_metrics, domain_classifier_auc, estimate_performance


def _calibrated(
    n: int, k: int, seed: int, concentration: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, concentration), n)
    y = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1)
    return proba, y


@pytest.mark.parametrize("k", [2, 3])
def test_estimates_match_realized_metrics_for_calibrated_probabilities(k: int) -> None:
    proba, y = _calibrated(40_000, k, seed=k)
    classes = list(range(k))
    est = estimate_performance(proba, classes)
    real = classification_metrics(y, proba.argmax(axis=1), proba, classes)
    for name in ("accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc"):
        assert est[name] == pytest.approx(real[name], abs=0.01), name


def test_a_calibration_map_corrects_overconfident_probabilities() -> None:
    proba, y = _calibrated(20_000, 2, seed=5, concentration=0.7)
    # the model reports sharpened probabilities; calibration learned on labelled data undoes it
    sharp = proba**3 / (proba**3).sum(axis=1, keepdims=True)
    calibration = Calibration.fit(sharp[:10_000], y[:10_000], (0, 1))
    real = classification_metrics(y[10_000:], sharp[10_000:].argmax(axis=1), classes=[0, 1])
    naive = estimate_performance(sharp[10_000:], [0, 1])
    fixed = estimate_performance(sharp[10_000:], [0, 1], calibration=calibration)
    assert abs(fixed["accuracy"] - real["accuracy"]) < 0.01
    profile = Profile(n=10_000, features={}, calibration=calibration)
    assert estimate_performance(sharp[10_000:], [0, 1], reference=profile) == fixed
    assert abs(naive["accuracy"] - real["accuracy"]) > 0.03


def test_domain_classifier_separates_shifted_rows_only() -> None:
    rng = np.random.default_rng(8)

    def frame(shift: float) -> pd.DataFrame:
        a = rng.normal(size=800)
        # a joint shift: each marginal barely moves, the correlation flips
        b = (1 - 2 * shift) * a + rng.normal(0, 0.3, 800)
        return pd.DataFrame({"a": a, "b": b, "c": rng.choice(["u", "v"], 800)})

    reference = frame(0.0)
    assert domain_classifier_auc(reference, frame(0.0), sample=800) < 0.6
    assert domain_classifier_auc(reference, frame(1.0), sample=800) > 0.9
