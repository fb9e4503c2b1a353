"""Property: the frame a model is served is the frame it was trained on, cell for cell.

For generated training frames with missing values in every dtype pandas users meet
(floats, whole numbers with and without gaps, nullable integers and booleans, flags
in object columns, pandas 3 ``str``, ``string``, object text with ``None`` or ``NaN``,
categoricals, dates), validating the frame itself, or its rows as a JSON client
sends them, gives back the same dtypes, the same values and the same missing marker
(``None``, ``NaN`` and ``pd.NA`` are different inputs to an encoder).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frame_cells import cell_identity, json_cell
from mloop.contracts import infer_schema

WORDS = ["red", "green", "blue", "teal"]


def assert_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    for name in want.columns:
        assert str(got[name].dtype) == str(want[name].dtype), name
        got_cells = [cell_identity(v) for v in got[name].tolist()]
        want_cells = [cell_identity(v) for v in want[name].tolist()]
        assert got_cells == want_cells, name


def _column(kind: str, gaps: list[bool], picks: list[int]) -> Any:
    n = len(gaps)
    words = [WORDS[p % len(WORDS)] for p in picks]
    holes = np.array(gaps)
    if kind == "float64":
        return pd.Series(np.where(holes, np.nan, np.array(picks, dtype=float) / 3))
    if kind == "float32":
        return pd.Series(np.where(holes, np.nan, np.array(picks) / 4).astype("float32"))
    if kind == "int64":
        return pd.Series(np.array(picks, dtype=np.int64))
    if kind == "Int64":
        return pd.array([None if g else p for g, p in zip(gaps, picks, strict=True)], "Int64")
    if kind == "bool":
        return pd.Series(np.array(picks) % 2 == 0)
    if kind == "boolean":
        values = [None if g else p % 2 == 0 for g, p in zip(gaps, picks, strict=True)]
        return pd.array(values, dtype="boolean")
    if kind == "object-flag":
        return pd.Series(
            [np.nan if g else p % 2 == 0 for g, p in zip(gaps, picks, strict=True)], dtype=object
        )
    if kind == "str":
        return pd.Series(
            [np.nan if g else w for g, w in zip(gaps, words, strict=True)], dtype="str"
        )
    if kind == "string":
        return pd.array([None if g else w for g, w in zip(gaps, words, strict=True)], "string")
    if kind == "object-none":
        return pd.Series([None if g else w for g, w in zip(gaps, words, strict=True)], dtype=object)
    if kind == "object-nan":
        values = [np.nan if g else w for g, w in zip(gaps, words, strict=True)]
        return pd.Series(values, dtype=object)
    if kind == "category":
        return pd.Categorical(
            [None if g else w for g, w in zip(gaps, words, strict=True)], categories=WORDS
        )
    if kind == "datetime":
        stamps = pd.Timestamp("2024-03-01") + pd.to_timedelta(picks, unit="h")
        return pd.Series(stamps).mask(pd.Series(holes[:n]))
    raise AssertionError(kind)


KINDS = [
    "float64",
    "float32",
    "int64",
    "Int64",
    "bool",
    "boolean",
    "object-flag",
    "str",
    "string",
    "object-none",
    "object-nan",
    "category",
    "datetime",
]


@st.composite
def training_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=2, max_value=12))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    columns = {}
    for i, kind in enumerate(kinds):
        gaps = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        gaps[0] = kind not in ("int64", "bool") and gaps[0]
        picks = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
        columns[f"c{i}_{kind}"] = _column(kind, gaps, picks)
    return pd.DataFrame(columns)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(training_frames())
def test_the_training_frame_comes_back_unchanged(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    assert_identical(schema.check(frame), frame)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(training_frames())
def test_json_records_become_the_training_frame(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    records = [{k: json_cell(v) for k, v in row.items()} for row in frame.to_dict("records")]
    assert_identical(schema.check(records), frame)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(training_frames())
def test_one_row_at_a_time_matches_the_training_rows(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    for i in range(len(frame)):
        row = frame.iloc[[i]].reset_index(drop=True)
        record = {k: json_cell(v) for k, v in row.iloc[0].items()}
        served = schema.check([record])
        for name in frame.columns:
            assert cell_identity(served[name].iloc[0]) == cell_identity(frame[name].iloc[i]), (
                name,
                i,
            )
