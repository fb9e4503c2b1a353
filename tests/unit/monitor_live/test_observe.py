"""observe_rows: one window of logged rows to numbers, for a regressor with messy inputs."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd

from mloop.contracts import build_profile, infer_schema
from mloop.monitor._observe import observe_rows
from mloop.types import Predictions


def test_regression_window_with_missing_and_text_values() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 500), "z": rng.normal(5, 1, 500)})
    values = ref["x"].to_numpy() * 2
    schema = infer_schema(ref)
    profile = build_profile(ref, schema, predictions=Predictions("regression", values=values))
    inputs = [{"x": 0.1, "z": 5.0}, {"x": None, "z": 4.0}, {"x": "0.3", "z": 6.0}, {"z": 5.5}]
    rows = pd.DataFrame(
        {
            "version": [1, 1, 2, 2],
            "inputs": [orjson.dumps(i).decode() for i in inputs],
            "outputs": [orjson.dumps({"value": v}).decode() for v in (0.2, 0.0, 0.6, 0.1)],
            "prediction": [None] * 4,
            "value": [0.2, 0.0, 0.6, 0.1],
        }
    )
    labels = pd.Series([0.0, None, 1.0, None], dtype=object)
    window = observe_rows(
        "m", 0.0, 60.0, rows, labels, task="regression", classes=(), profile=profile, schema=schema
    )
    assert window.rows == 4 and window.versions == {1: 2, 2: 2}
    assert window.missing_rate == 2 / 8
    assert window.drift is not None and {c.column for c in window.drift.columns} == {"x", "z"}
    assert window.labelled == 2
    assert window.metric("mae") == (0.2 + 0.4) / 2
    assert window.metric("prediction_drift") is not None
    assert window.estimated == {}
    assert window.to_dict()["performance"]["mae"] == window.metric("mae")


def test_empty_window_has_no_metrics() -> None:
    rows = pd.DataFrame(columns=["version", "inputs", "outputs", "prediction", "value"])
    window = observe_rows("m", 0.0, 60.0, rows, None, task="classification", classes=("a", "b"))
    assert window.rows == 0 and window.metric("drift_share") is None and window.metric("rows") == 0
