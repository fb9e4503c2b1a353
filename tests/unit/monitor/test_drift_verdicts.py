"""The verdict users rely on: relevant shifts are found, noise and irrelevant shifts are not.

A smaller copy of the benchmark targets (10k vs 10k rows, 25 columns): 5k vs 5k rows,
10 columns, fixed seeds, rates over 20 runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mloop.monitor import WindowCounts, as_reference, drift, drift_from_counts

SEEDS = range(20)
CATS = np.array(["a", "b", "c", "d", "e"])


def _frame(n: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {}
    for i in range(8):
        x = rng.normal(size=n)
        if shifted and i == 0:
            x = x + 0.15  # mean shift
        if shifted and i == 1:
            x = x * np.sqrt(1.5)  # variance x1.5
        data[f"x{i}"] = x
    for j in range(2):
        p = [0.3, 0.175, 0.175, 0.175, 0.175] if shifted and j == 0 else [0.2] * 5
        data[f"c{j}"] = CATS[rng.choice(5, n, p=p)]
    return pd.DataFrame(data)


def test_relevant_shifts_are_found_and_untouched_columns_stay_quiet() -> None:
    found = {"x0": 0, "x1": 0, "c0": 0}
    false_alarms = tested = runs_with_alarm = 0
    for seed in SEEDS:
        reference = _frame(5_000, 100 + seed)
        shifted = drift(reference, _frame(5_000, 200 + seed, shifted=True))
        for name in found:
            found[name] += shifted[name].drifted
        untouched = [c for c in shifted.columns if c.column not in found]
        false_alarms += sum(c.drifted for c in untouched)
        tested += len(untouched)
        calm = drift(reference, _frame(5_000, 300 + seed))
        runs_with_alarm += calm.dataset_drift
        false_alarms += sum(c.drifted for c in calm.columns)
        tested += len(calm.columns)
    assert all(hits / len(SEEDS) >= 0.95 for hits in found.values()), found
    assert false_alarms / tested <= 0.01
    assert runs_with_alarm / len(SEEDS) <= 0.05


def test_many_rows_do_not_turn_an_irrelevant_shift_into_drift() -> None:
    rng = np.random.default_rng(7)
    n = 400_000
    reference = as_reference(pd.DataFrame({"x": rng.normal(size=n)}))
    for shift, expected in [(0.0, False), (0.02, False), (0.05, True), (0.1, True)]:
        window = WindowCounts(reference).update({"x": rng.normal(size=n) + shift})
        report = drift_from_counts(reference, window.counts)
        assert report["x"].drifted is expected, (shift, report["x"])


def test_small_windows_need_a_larger_effect_than_large_ones() -> None:
    reference = _frame(5_000, 1)
    small = drift(reference, _frame(200, 2))["x0"]
    large = drift(reference, _frame(5_000, 3))["x0"]
    assert small.threshold > large.threshold >= large.min_effect


def test_a_missing_value_surge_is_drift() -> None:
    reference = _frame(5_000, 4)
    current = _frame(5_000, 5)
    current.loc[current.index[:500], "x3"] = np.nan
    report = drift(reference, current)
    assert report.drifted_columns == ["x3"]
    assert report["x3"].metrics["missing_share"] == 0.1
