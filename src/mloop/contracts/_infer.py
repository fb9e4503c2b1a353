"""Infer a data contract from the frame (or array) a model was trained on."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.contracts._column import Column, Kind, Missing
from mloop.contracts._schema import Schema
from mloop.errors import InvalidInput

__all__ = ["MAX_CATEGORIES", "infer_schema"]

MAX_CATEGORIES = 1000  # above this many distinct strings a column is free text


def infer_schema(
    frame: pd.DataFrame | np.ndarray, feature_names: Sequence[str] | None = None
) -> Schema:
    """A :class:`Schema` whose columns follow ``frame``'s order, kinds and observed values.

    Array columns are named ``f0 … fn`` unless ``feature_names`` are given. Columns with
    missing values become nullable; numeric columns record their observed min and max;
    string columns record their categories when there are at most ``MAX_CATEGORIES``.
    """
    frame = _as_frame(frame, feature_names)
    columns = tuple(
        _infer_column(str(name), frame.iloc[:, i]) for i, name in enumerate(frame.columns)
    )
    return Schema(columns=columns)


def _as_frame(data: pd.DataFrame | np.ndarray, names: Sequence[str] | None) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        if names is not None:
            if len(names) != data.shape[1]:
                raise InvalidInput(
                    f"Got {len(names)} feature names for {data.shape[1]} columns; "
                    "pass one name per column."
                )
            data = data.set_axis(list(names), axis=1)
        return data
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise InvalidInput(
            f"Training data must be two-dimensional (rows x features); got shape {arr.shape}. "
            "Reshape a single feature with x.reshape(-1, 1)."
        )
    if names is None:
        names = [f"f{i}" for i in range(arr.shape[1])]
    elif len(names) != arr.shape[1]:
        raise InvalidInput(
            f"Got {len(names)} feature names for {arr.shape[1]} columns; pass one name per column."
        )
    return pd.DataFrame({str(n): arr[:, i] for i, n in enumerate(names)})


def _infer_column(name: str, s: pd.Series) -> Column:
    dtype = s.dtype
    nullable = bool(s.isna().any())
    kind = _kind_of(name, s)
    recorded = str(dtype)
    if isinstance(dtype, pd.CategoricalDtype) and kind != "string":
        recorded = str(dtype.categories.dtype)  # numeric categories validate as numbers
    if kind in ("float", "integer"):
        values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[np.isfinite(values)]
        lo = _plain(finite.min()) if finite.size else None
        hi = _plain(finite.max()) if finite.size else None
        if kind == "integer" and lo is not None and hi is not None:
            lo, hi = int(lo), int(hi)
        return Column(name, kind, nullable, lo, hi, dtype=recorded)
    missing = _missing_marker(s) if nullable and dtype == np.dtype(object) else None
    if kind == "string":
        cats = _categories(s)
        return Column(name, kind, nullable, categories=cats, dtype=recorded, missing=missing)
    return Column(name, kind, nullable, dtype=recorded, missing=missing)


def _missing_marker(s: pd.Series) -> Missing:
    """The value an object column holds where a cell is missing (the most common one)."""
    counts = {"none": 0, "nan": 0, "na": 0}
    for v in s[s.isna()].tolist():
        if v is None:
            counts["none"] += 1
        elif v is pd.NA:
            counts["na"] += 1
        else:  # float('nan'), np.nan, NaT: what pandas writes into object columns
            counts["nan"] += 1
    return max(("nan", "none", "na"), key=lambda k: counts[k])  # type: ignore[return-value]


def _kind_of(name: str, s: pd.Series) -> Kind:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        if pd.api.types.is_numeric_dtype(cats.dtype) and not pd.api.types.is_bool_dtype(cats):
            # numeric categories keep the category dtype but validate as numbers
            return "integer" if pd.api.types.is_integer_dtype(cats.dtype) else "float"
        return "string"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) and dtype != np.dtype(object):
        return "string"
    if dtype == np.dtype(object):
        return _kind_of_objects(name, s.dropna().tolist())
    raise InvalidInput(
        f"Column {name!r} has dtype {dtype}, which a contract cannot describe; convert it "
        "to numbers, booleans, strings or datetimes before registering."
    )


def _kind_of_objects(name: str, values: list[Any]) -> Kind:
    types = set(map(type, values))
    if not types or all(issubclass(t, str) for t in types):
        return "string"
    if all(issubclass(t, bool | np.bool_) for t in types):
        return "boolean"
    numeric = all(issubclass(t, int | float | np.number) and not issubclass(t, bool) for t in types)
    if numeric:
        whole = all(issubclass(t, int | np.integer) for t in types)
        return "integer" if whole else "float"
    if all(issubclass(t, dt.date | np.datetime64) for t in types):
        return "datetime"
    shown = sorted(t.__name__ for t in types)
    raise InvalidInput(
        f"Column {name!r} mixes value types {shown}; give it one type (e.g. "
        f"df[{name!r}].astype(str) for labels) before registering."
    )


def _categories(s: pd.Series) -> tuple[str, ...] | None:
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in s.dtype.categories]
        return tuple(cats) if len(cats) <= MAX_CATEGORIES else None
    uniques = pd.unique(s.dropna().to_numpy(dtype=object))
    if len(uniques) > MAX_CATEGORIES:
        return None
    return tuple(sorted(str(u) for u in uniques))


def _plain(x: Any) -> float | int:
    v = x.item() if isinstance(x, np.generic) else x
    return v if not isinstance(v, float) or math.isfinite(v) else float("nan")
