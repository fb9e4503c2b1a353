"""Property: coerce reports problems as violations and never crashes on JSON-like input."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.contracts import Column, Schema
from mloop.errors import InvalidInput

SCHEMA = Schema(
    (
        Column("x", "float", min=-10.0, max=10.0),
        Column("n", "integer", nullable=True, min=0, max=5),
        Column("b", "boolean"),
        Column("s", "string", nullable=True, categories=("a", "b")),
        Column("t", "string"),
        Column("d", "datetime", nullable=True),
    )
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["a", "b", "2024-01-01", "3.5", "NaN"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)
keys = st.sampled_from(["x", "n", "b", "s", "t", "d", "extra"])
records = st.lists(st.dictionaries(keys, values, max_size=7), max_size=6)


def check(data: Any) -> None:
    try:
        frame, violations = SCHEMA.coerce(data)
    except InvalidInput:
        return
    assert list(frame.columns) == list(SCHEMA.names)
    assert isinstance(frame, pd.DataFrame)
    for v in violations:
        v.to_dict()
        assert v.severity in ("reject", "flag")
        assert v.row is None or 0 <= v.row < len(frame)
    rejects = [v for v in violations if v.severity == "reject"]
    try:
        SCHEMA.check(data)
    except InvalidInput as error:
        assert rejects and error.to_dict()["error"]["violation_count"] == len(rejects)
    else:
        assert not rejects


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_coerce_records_never_crashes(data: list[dict[str, Any]]) -> None:
    check(data)


@settings(max_examples=75, deadline=None)
@given(st.dictionaries(keys, st.lists(scalars, min_size=2, max_size=2), max_size=7))
def test_coerce_columns_never_crashes(data: dict[str, list[Any]]) -> None:
    check(data)


@settings(max_examples=50, deadline=None)
@given(st.one_of(scalars, st.lists(scalars, max_size=3)))
def test_non_tabular_input_raises_only_invalid_input(data: Any) -> None:
    check(data)
