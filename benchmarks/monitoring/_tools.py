"""One function per tool: run a full drift computation and return the flagged columns.

Imported inside each tool's own virtual environment, so every import is local.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from _data import CATEGORICAL, NUMERIC


def mloop_frames(ref: pd.DataFrame, cur: pd.DataFrame, prepared: Any = None) -> set[str]:
    """mloop from two DataFrames (bins the reference, then the window)."""
    from mloop.monitor import drift

    return set(drift(ref, cur).drifted_columns)


def mloop_profile_prepare(ref: pd.DataFrame) -> Any:
    """The reference profile, built once (as at model registration)."""
    from mloop.monitor import as_reference

    return as_reference(ref)


def mloop_profile(ref: pd.DataFrame, cur: pd.DataFrame, prepared: Any = None) -> set[str]:
    """mloop against a stored profile: only the window is counted."""
    from mloop.monitor import drift

    return set(drift(prepared, cur).drifted_columns)


def evidently(ref: pd.DataFrame, cur: pd.DataFrame, prepared: Any = None) -> set[str]:
    """Evidently's DataDriftPreset with its defaults."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    r = Dataset.from_pandas(ref, data_definition=definition)
    c = Dataset.from_pandas(cur, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(c, r)
    flagged = set()
    for metric in snapshot.dict()["metrics"]:
        name = metric.get("metric_name", "")
        if name.startswith("ValueDrift(") and _evidently_drifted(metric):
            flagged.add(metric["config"]["column"])
    return flagged


def _evidently_drifted(metric: dict[str, Any]) -> bool:
    value = metric["value"]
    threshold = metric["config"].get("threshold")
    method = metric["config"].get("method", "")
    # p-value tests drift below the threshold, distances above it
    if "p_value" in method or method in ("K-S p_value", "chi-square p_value", "Z-test p_value"):
        return bool(value <= threshold)
    return bool(value >= threshold)


def nannyml(ref: pd.DataFrame, cur: pd.DataFrame, prepared: Any = None) -> set[str]:
    """NannyML's UnivariateDriftCalculator with its defaults (10 chunks; any alerting chunk)."""
    import warnings

    import nannyml as nml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = nml.UnivariateDriftCalculator(
            column_names=NUMERIC + CATEGORICAL, treat_as_categorical=CATEGORICAL
        )
        calc.fit(ref)
        result = calc.calculate(cur).filter(period="analysis").to_df()
    flagged = set()
    for column in NUMERIC + CATEGORICAL:
        alerts = [c for c in result.columns if c[0] == column and c[2] == "alert"]
        if any(bool(result[a].any()) for a in alerts):
            flagged.add(column)
    return flagged


def scipy_loop(ref: pd.DataFrame, cur: pd.DataFrame, prepared: Any = None) -> set[str]:
    """The simplest thing a user could write: KS per numeric column, chi-square per categorical.

    Bonferroni over the columns so that it, too, controls false alarms across 25 tests.
    """
    import numpy as np
    from scipy import stats

    alpha = 0.05 / len(ref.columns)
    flagged = set()
    for name in ref.columns:
        a, b = ref[name], cur[name]
        if pd.api.types.is_numeric_dtype(a.dtype):
            p = stats.ks_2samp(a.dropna().to_numpy(), b.dropna().to_numpy()).pvalue
        else:
            table = pd.concat([a.value_counts(), b.value_counts()], axis=1).fillna(0)
            p = stats.chi2_contingency(np.asarray(table, dtype=np.float64).T)[1]
        if p < alpha:
            flagged.add(str(name))
    return flagged


TOOLS = {
    "scipy": scipy_loop,
    "mloop": mloop_frames,
    "mloop-profile": mloop_profile,
    "evidently": evidently,
    "nannyml": nannyml,
}
PREPARE = {"mloop-profile": mloop_profile_prepare}
