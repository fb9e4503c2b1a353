"""Drift of many windows at once equals drift_from_counts window by window (each window
is tested on its own, whatever windows stand beside it)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mloop.monitor._counting import WindowCounts
from mloop.monitor._drift import drift_from_counts, drift_over_windows
from mloop.monitor._reference import as_reference


def _windows() -> tuple[object, list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(7)
    train = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 3000),
            "y": rng.exponential(2, 3000),
            "plan": rng.choice(["a", "b", "c", "d"], 3000, p=[0.5, 0.3, 0.15, 0.05]),
        }
    )
    train.loc[::50, "y"] = np.nan
    ref = as_reference(train, categorical=["plan"])
    windows = []
    for i in range(40):
        n = [0, 1, 3, 20, 400][i % 5]  # empty, tiny and ordinary windows
        shift = 0.0 if i < 20 else 0.8
        frame = pd.DataFrame(
            {
                "x": rng.normal(shift, 1, n),
                "y": rng.exponential(2 + shift, n),
                "plan": rng.choice(["a", "b", "e"] if i % 7 == 0 else ["a", "b", "c", "d"], n),
            }
        )
        if i % 3 == 0:
            frame.loc[:, "y"] = np.nan  # a window that lost a feature
        windows.append(WindowCounts(ref).update(frame).counts)
    return ref, windows


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_every_window_equals_drift_from_counts(alpha: float) -> None:
    ref, windows = _windows()
    together = drift_over_windows(ref, windows, alpha=alpha)  # type: ignore[arg-type]
    assert len(together) == len(windows)
    drifted = 0
    for counts, report in zip(windows, together, strict=True):
        alone = drift_from_counts(ref, counts, alpha=alpha)  # type: ignore[arg-type]
        assert _close(report.to_dict(), alone.to_dict()), (report.to_dict(), alone.to_dict())
        drifted += len(report.drifted_columns)
    assert drifted > 0  # the shifted windows drift, so verdicts were compared both ways


def test_no_windows_no_reports() -> None:
    ref, _ = _windows()
    assert drift_over_windows(ref, []) == []  # type: ignore[arg-type]
