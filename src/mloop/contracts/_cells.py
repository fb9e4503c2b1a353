"""Validate one column at a time, locating every bad cell.

The slow, thorough path of :mod:`mloop.contracts._coerce`: used when a group of columns
fails its fast check, for datetimes, and for large frames. Each function returns the
column as a numpy array (bad cells missing) and reports violations into a ``Sink``.
"""

from __future__ import annotations

import datetime as dt
import numbers
from typing import Any

import numpy as np
import pandas as pd

from mloop.contracts._column import Column, Policy
from mloop.contracts._violation import Violation, ViolationKind, json_safe

__all__ = [
    "BOOL_TYPES",
    "FLOAT_TYPES",
    "INT_TYPES",
    "STR_TYPES",
    "Raw",
    "Sink",
    "boolean_column",
    "datetime_column",
    "float_column",
    "integer_column",
    "is_null",
    "string_column",
]

# A column as received: a list of Python values or a numpy array.
Raw = list[Any] | np.ndarray

NONE = type(None)
_NP_INTS = {np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64}
INT_TYPES = frozenset({int, *_NP_INTS})
FLOAT_TYPES = frozenset({int, float, NONE, np.float64, np.float32, np.float16, *_NP_INTS})
BOOL_TYPES = frozenset({bool, np.bool_})
STR_TYPES = frozenset({str, NONE})


class Sink:
    """Collects violations of one column with the column's defaults filled in."""

    __slots__ = ("column", "out")

    def __init__(self, column: Column, out: list[Violation]) -> None:
        self.column = column
        self.out = out

    def add(self, row: int | None, value: Any, kind: ViolationKind, expected: str) -> None:
        severity: Policy = "reject"
        self.out.append(
            Violation(row, self.column.name, json_safe(value), expected, kind, severity)
        )

    def add_policy(
        self, row: int, value: Any, kind: ViolationKind, expected: str, policy: Policy
    ) -> None:
        self.out.append(Violation(row, self.column.name, json_safe(value), expected, kind, policy))


def is_null(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float | np.floating) and v != v


def _as_list(raw: Raw) -> list[Any]:
    if isinstance(raw, list):
        return raw
    if raw.dtype.kind in "mM":
        return list(pd.Series(raw).astype(object))
    return raw.tolist()  # type: ignore[no-any-return]


# --- numbers -------------------------------------------------------------------------


def _floats(raw: Raw, sink: Sink) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 values (NaN for null or bad) and a mask of wrong-typed cells (or None)."""
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "fiu":
        return raw.astype(np.float64, copy=False), None
    seq = _as_list(raw)
    if set(map(type, seq)) <= FLOAT_TYPES:
        try:
            return np.array(seq, dtype=np.float64), None
        except (OverflowError, TypeError, ValueError):
            pass  # e.g. an int beyond float range: locate it below
    out = np.full(len(seq), np.nan)
    bad = np.zeros(len(seq), dtype=bool)
    expects = sink.column.expects
    for i, v in enumerate(seq):
        if is_null(v):
            continue
        if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_):
            try:
                out[i] = float(v)
                continue
            except (OverflowError, TypeError, ValueError):
                pass
        bad[i] = True
        sink.add(i, v, "wrong_type", expects)
    return out, bad


def _check_numeric(
    arr: np.ndarray, bad: np.ndarray | None, sink: Sink, out_of_range: Policy
) -> np.ndarray:
    """Null and range checks over float64 values; returns the mask of missing cells."""
    col = sink.column
    missing: np.ndarray = np.isnan(arr)
    if not col.nullable and missing.any():
        nulls = missing if bad is None else missing & ~bad
        for i in np.flatnonzero(nulls).tolist():
            sink.add(i, None, "null_not_allowed", col.expects)
    if col.min is not None or col.max is not None:
        lo = -np.inf if col.min is None else col.min
        hi = np.inf if col.max is None else col.max
        with np.errstate(invalid="ignore"):
            outside = (arr < lo) | (arr > hi)
        if outside.any():
            expected = col.describe_range()
            whole = col.kind == "integer"
            for i in np.flatnonzero(outside).tolist():
                value = int(arr[i]) if whole and np.isfinite(arr[i]) else arr[i]
                sink.add_policy(i, value, "out_of_range", expected, out_of_range)
    return missing


def float_column(raw: Raw, sink: Sink, out_of_range: Policy) -> np.ndarray:
    arr, bad = _floats(raw, sink)
    _check_numeric(arr, bad, sink, out_of_range)
    return arr


def integer_column(raw: Raw, sink: Sink, out_of_range: Policy) -> np.ndarray:
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "iu":
        ints = raw.astype(np.int64, copy=False)
        _check_numeric(ints.astype(np.float64), None, sink, out_of_range)
        return ints
    if isinstance(raw, list) and set(map(type, raw)) <= INT_TYPES:
        try:
            ints = np.array(raw, dtype=np.int64)
        except OverflowError:
            pass  # a value beyond int64: the float path reports it
        else:
            _check_numeric(ints.astype(np.float64), None, sink, out_of_range)
            return ints
    arr, bad = _floats(raw, sink)
    finite = np.isfinite(arr)
    fraction = finite & (arr != np.floor(np.where(finite, arr, 0.0)))
    infinite = ~finite & ~np.isnan(arr)
    too_big = finite & (np.abs(arr) >= 2.0**63)
    wrong = fraction | infinite | too_big
    if wrong.any():
        for i in np.flatnonzero(wrong).tolist():
            sink.add(i, arr[i], "wrong_type", sink.column.expects)
        arr = np.where(wrong, np.nan, arr)
        bad = wrong if bad is None else bad | wrong
    missing = _check_numeric(arr, bad, sink, out_of_range)
    # A whole-number column stays int64 unless it holds gaps, which need NaN.
    return arr if missing.any() else arr.astype(np.int64)


def boolean_column(raw: Raw, sink: Sink) -> np.ndarray:
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "b":
        return raw
    seq = _as_list(raw)
    if set(map(type, seq)) <= BOOL_TYPES:
        return np.array(seq, dtype=bool)
    out = np.full(len(seq), np.nan)
    col = sink.column
    for i, v in enumerate(seq):
        if is_null(v):
            if not col.nullable:
                sink.add(i, None, "null_not_allowed", col.expects)
        elif isinstance(v, bool | np.bool_):
            out[i] = float(v)
        elif isinstance(v, numbers.Real) and v in (0, 1):
            out[i] = float(v)  # JSON clients often send 0/1 for flags
        else:
            sink.add(i, v, "wrong_type", col.expects)
    missing = np.isnan(out)
    return out if missing.any() else out.astype(bool)


# --- text and time -------------------------------------------------------------------


def string_column(raw: Raw, sink: Sink, unknown_category: Policy) -> np.ndarray:
    col = sink.column
    seq = _as_list(raw)
    types = set(map(type, seq))
    if types <= STR_TYPES:
        values = seq
        if NONE in types and not col.nullable:
            for i, v in enumerate(values):
                if v is None:
                    sink.add(i, None, "null_not_allowed", col.expects)
    else:
        values = [None] * len(seq)
        for i, v in enumerate(seq):
            if isinstance(v, str):
                values[i] = str(v)
            elif is_null(v):
                if not col.nullable:
                    sink.add(i, None, "null_not_allowed", col.expects)
            else:
                sink.add(i, v, "wrong_type", col.expects)
    if col.categories is not None:
        seen = set(values)
        seen.discard(None)
        unknown = seen - col.category_set
        if unknown:
            expected = col.describe_categories()
            for i, v in enumerate(values):
                if v in unknown:
                    sink.add_policy(i, v, "unknown_category", expected, unknown_category)
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def datetime_column(raw: Raw, sink: Sink) -> np.ndarray:
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "M":
        arr = raw.astype("datetime64[ns]")
        missing = np.isnat(arr)
    else:
        seq = _as_list(raw)
        stamps = np.full(len(seq), np.datetime64("NaT"), dtype="datetime64[ns]")
        missing = np.ones(len(seq), dtype=bool)
        for i, v in enumerate(seq):
            if is_null(v):
                continue
            if isinstance(v, str | dt.date | np.datetime64):
                try:
                    ts = pd.Timestamp(v)
                    if ts is pd.NaT:
                        raise ValueError("text that parses to no time")  # "", "NaT", "nan"
                    if ts.tzinfo is not None:
                        ts = ts.tz_convert("UTC").tz_localize(None)
                    stamps[i] = ts.to_datetime64()
                    missing[i] = False
                    continue
                except (ValueError, TypeError, OverflowError):
                    pass
            missing[i] = False  # wrong, not null: reported once, as a type problem
            sink.add(i, v, "wrong_type", sink.column.expects)
        arr = stamps
    if not sink.column.nullable and missing.any():
        for i in np.flatnonzero(missing).tolist():
            sink.add(i, None, "null_not_allowed", sink.column.expects)
    return arr
