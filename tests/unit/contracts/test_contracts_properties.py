"""Property: coerce reports problems as violations and never crashes on JSON-like input."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.contracts import Column, Schema
from mloop.contracts._coerce import _clean_float_rows, coerce_with_plan
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


FLOATS = Schema(
    (
        Column("x", "float", min=-10.0, max=10.0),
        Column("y", "float", nullable=True),
        Column("z", "float", min=0.0),
    )
)
float_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=3)
)
in_range = st.floats(min_value=-10, max_value=10) | st.integers(min_value=-10, max_value=10)
clean_record = st.fixed_dictionaries(
    {"x": in_range, "y": in_range | st.none(), "z": st.floats(min_value=0, max_value=1e300)}
)
float_records = st.lists(
    st.dictionaries(st.sampled_from(["x", "y", "z", "w"]), float_values, max_size=4) | clean_record,
    min_size=1,
    max_size=5,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(float_records)
def test_small_float_batches_validate_exactly_like_the_block_path(data: list[Any]) -> None:
    """The shortcut for a few clean all-float records never changes the answer."""
    plan = FLOATS._plan
    kwargs = {"on_unknown_category": "flag", "on_out_of_range": "reject", "as_matrix": True}
    fast, fast_violations = coerce_with_plan(plan, data, **kwargs)  # type: ignore[arg-type]
    slow, slow_violations = coerce_with_plan(
        replace(plan, float_bounds=None),
        data,
        **kwargs,  # type: ignore[arg-type]
    )
    np.testing.assert_array_equal(fast, slow)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    assert fast_violations == slow_violations


def test_clean_float_records_take_the_shortcut() -> None:
    clean = [{"x": 1.0, "y": 2, "z": 0.5}]
    assert _clean_float_rows(FLOATS._plan.float_bounds or (), clean) is not None
    for dirty in ({"x": 11.0, "y": 2, "z": 0.5}, {"x": True, "y": 2, "z": 0.5}, {"x": 1.0}):
        assert _clean_float_rows(FLOATS._plan.float_bounds or (), [dirty]) is None
