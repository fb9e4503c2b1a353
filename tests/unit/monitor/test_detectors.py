"""Detectors: River's protocol, built-in binned and Page-Hinkley detectors, user detectors."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from mloop.monitor import BinnedDriftDetector, Detector, PageHinkley, WindowCounts, as_reference


def _window(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n) + shift, "y": rng.normal(size=n)})


def test_builtin_detectors_satisfy_the_protocol() -> None:
    assert isinstance(PageHinkley(), Detector)
    assert isinstance(BinnedDriftDetector(_window(10, 0)), Detector)


def test_a_user_detector_satisfies_the_protocol() -> None:
    class Threshold:
        def __init__(self) -> None:
            self.drift_detected = False

        def update(self, observation: float) -> Self:
            self.drift_detected = observation > 1.0
            return self

    assert isinstance(Threshold(), Detector)


def test_binned_detector_flags_a_shifted_window_and_not_a_stable_one() -> None:
    detector = BinnedDriftDetector(_window(5_000, 1))
    assert not detector.update(_window(2_000, 2)).drift_detected
    assert detector.update(_window(2_000, 3, shift=0.5)).drift_detected
    assert detector.report_ is not None and detector.report_.drifted_columns == ["x"]
    assert detector.n_windows_ == 2


def test_binned_detector_accepts_window_counts() -> None:
    reference = as_reference(_window(5_000, 4))
    counts = WindowCounts(reference).update(_window(3_000, 5, shift=0.5))
    assert BinnedDriftDetector(reference).update(counts).drift_detected


def test_page_hinkley_finds_a_jump_in_the_mean_soon_after_it_happens() -> None:
    rng = np.random.default_rng(6)
    stream = np.r_[rng.normal(0.9, 0.02, 300), rng.normal(0.6, 0.02, 100)]
    detector = PageHinkley(threshold=2.0, mode="down")
    fired = [i for i, v in enumerate(stream) if detector.update(v).drift_detected]
    assert fired and 300 <= fired[0] < 320


def test_page_hinkley_stays_quiet_on_a_stationary_stream() -> None:
    rng = np.random.default_rng(7)
    detector = PageHinkley(threshold=2.0)
    assert not any(detector.update(v).drift_detected for v in rng.normal(0.9, 0.02, 2_000))
