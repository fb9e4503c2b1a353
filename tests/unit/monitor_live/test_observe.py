"""observe_table: one window of logged rows to numbers, for a regressor with messy inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from mloop.contracts import build_profile, infer_schema
from mloop.journal._columns import monitoring_table
from mloop.journal._logstore import PREDICTION_SCHEMA
from mloop.monitor._observe import contract_violations, observe_table
from mloop.types import Predictions


def logged(inputs: list[Any], outputs: list[Any], **columns: list[Any]) -> pa.Table:
    """The monitoring table of stored rows with these JSON inputs and outputs."""
    n = len(inputs)
    rows = {name: [None] * n for name in PREDICTION_SCHEMA.names}
    rows.update({"request_id": [f"r{i}" for i in range(n)], "row": [0] * n, "ts": [1.0] * n})
    rows.update(columns)
    rows["inputs"] = [orjson.dumps(i).decode() for i in inputs]
    rows["outputs"] = [orjson.dumps(o).decode() for o in outputs]
    return monitoring_table(pa.Table.from_pydict(rows, schema=PREDICTION_SCHEMA))


def test_regression_window_with_missing_and_text_values() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 500), "z": rng.normal(5, 1, 500)})
    values = ref["x"].to_numpy() * 2
    schema = infer_schema(ref)
    profile = build_profile(ref, schema, predictions=Predictions("regression", values=values))
    inputs = [{"x": 0.1, "z": 5.0}, {"x": None, "z": 4.0}, {"x": "0.3", "z": 6.0}, {"z": 5.5}]
    values = [0.2, 0.0, 0.6, 0.1]
    rows = logged(inputs, [{"value": v} for v in values], version=[1, 1, 2, 2], value=values)
    labels = np.array([0.0, None, 1.0, None], dtype=object)
    window = observe_table(
        "m",
        0.0,
        60.0,
        rows,
        labels,
        task="regression",
        classes=(),
        profile=profile,
        violations=contract_violations(schema, rows),
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
    window = observe_table(
        "m", 0.0, 60.0, logged([], []), None, task="classification", classes=("a", "b")
    )
    assert window.rows == 0 and window.metric("drift_share") is None and window.metric("rows") == 0
