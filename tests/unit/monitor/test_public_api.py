"""The monitoring engine's public names stay importable from ``mloop.monitor``."""

from __future__ import annotations

import mloop.monitor

ENGINE = {
    "BinnedDriftDetector",
    "ColumnDrift",
    "Detector",
    "DriftReport",
    "PageHinkley",
    "WindowCounts",
    "classification_metrics",
    "domain_classifier_auc",
    "drift",
    "estimate_performance",
    "regression_metrics",
}


def test_engine_names_are_public_and_documented() -> None:
    assert set(mloop.monitor.__all__) >= ENGINE
    assert mloop.monitor.__all__ == sorted(mloop.monitor.__all__)
    for name in ENGINE:
        assert getattr(mloop.monitor, name).__doc__, name
