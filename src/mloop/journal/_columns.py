"""The log read column-wise: each logged input feature and class probability as its own column.

The log stores every predicted row's inputs and outputs as JSON text, which keeps any
value a client sent. Monitoring reads a week of it at a time, and decoding a million
JSON documents per read costs tens of seconds; so the store keeps, beside each part
file, its *monitoring table*: the same rows with one typed Arrow column per input
feature (``i:<name>``) and per class probability (``p:<class>``), built once when the
part is written (or on first read of an older part) and rebuilt when the part changes.

A feature column is typed from the values the clients sent, as a DataFrame built from
the records would be: numbers → float64 (int64 when all are whole and none is
missing), text → string, booleans → bool; anything else (a number in one row, text in
another; lists) is kept as JSON text and marked ``mixed``, decoded per read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

__all__ = [
    "FEATURE",
    "META_COLUMNS",
    "PROBABILITY",
    "feature_values",
    "monitoring_table",
    "probability_matrix",
    "unify_tables",
]

FEATURE = "i:"
PROBABILITY = "p:"
META_COLUMNS = ("request_id", "row", "ts", "version", "entity_key", "prediction", "value")
_MIXED = {b"mloop": b"mixed"}
_ABSENT = object()


def _typed(values: list[Any]) -> tuple[pa.Array, bool]:
    """One feature's values as an Arrow array; True when kept as JSON text (mixed)."""
    kinds: set[type] = set()
    has_null = False
    for v in values:
        if v is None or v is _ABSENT:
            has_null = True
        elif isinstance(v, bool):
            kinds.add(bool)
        elif isinstance(v, int | float):
            kinds.add(float if isinstance(v, float) else int)
        elif isinstance(v, str):
            kinds.add(str)
        else:
            kinds.add(object)
    plain = [None if v is _ABSENT else v for v in values]
    if not kinds:
        return pa.array(plain, pa.float64()), False
    if kinds <= {int, float}:
        whole = kinds == {int} and not has_null
        try:
            return pa.array(plain, pa.int64() if whole else pa.float64()), False
        except (pa.ArrowException, OverflowError):
            pass  # an integer beyond 64 bits: kept exactly, as text
    elif kinds == {str}:
        return pa.array(plain, pa.string()), False
    elif kinds == {bool}:
        return pa.array(plain, pa.bool_()), False
    text = [None if v is None else orjson.dumps(v).decode() for v in plain]
    return pa.array(text, pa.string()), True


_PLAIN = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string, pa.types.is_boolean)


def _inferred(rows: Sequence[Any]) -> list[tuple[str, pa.Array]] | None:
    """Columns of a list of dicts by Arrow's own type inference (C++, ~10x the Python
    loop); None when it cannot type them (a column of numbers and text, a row that is
    not a mapping), for ``_typed`` column by column."""
    if not rows or not all(type(r) is dict for r in rows):
        return None
    try:
        struct = pa.array(rows)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None
    if not pa.types.is_struct(struct.type):
        return None
    out = []
    for field, child in zip(struct.type, struct.flatten(), strict=True):
        if pa.types.is_null(child.type):
            out.append((field.name, child.cast(pa.float64())))
        elif any(check(child.type) for check in _PLAIN):
            out.append((field.name, child))
        else:  # lists and objects: kept as JSON text
            return None
    return out


def _feature_columns(inputs: Sequence[Any]) -> list[tuple[pa.Field, pa.Array]]:
    inferred = _inferred(inputs)
    if inferred is not None:
        return [(pa.field(FEATURE + name, a.type), a) for name, a in inferred]
    names: dict[str, None] = {}
    for row in inputs:
        if isinstance(row, Mapping):
            names.update(dict.fromkeys(str(k) for k in row))
    out = []
    for name in names:
        values = [row.get(name, _ABSENT) if isinstance(row, Mapping) else _ABSENT for row in inputs]
        array, mixed = _typed(values)
        out.append(
            (pa.field(FEATURE + name, array.type, metadata=_MIXED if mixed else None), array)
        )
    return out


def _probability_columns(outputs: Sequence[Any]) -> list[tuple[pa.Field, pa.Array]]:
    rows = [o.get("probabilities") if isinstance(o, Mapping) else None for o in outputs]
    present = [r for r in rows if r is not None]
    if present and len(present) == len(rows):
        inferred = _inferred(present)
        if inferred is not None and all(
            pa.types.is_integer(a.type) or pa.types.is_floating(a.type) for _, a in inferred
        ):
            try:
                return [
                    (pa.field(PROBABILITY + name, pa.float64()), a.cast(pa.float64()))
                    for name, a in inferred
                ]
            except pa.ArrowInvalid:
                pass  # an integer with no exact double (2**60): converted one by one below
    classes: dict[str, None] = {}
    for probs in rows:
        if isinstance(probs, Mapping):
            classes.update(dict.fromkeys(str(k) for k in probs))
    out = []
    for name in classes:
        values = []
        for probs in rows:
            v = probs.get(name) if isinstance(probs, Mapping) else None
            values.append(float(v) if isinstance(v, int | float) and type(v) is not bool else None)
        out.append((pa.field(PROBABILITY + name, pa.float64()), pa.array(values, pa.float64())))
    return out


def monitoring_table(stored: pa.Table) -> pa.Table:
    """The monitoring table of stored prediction rows (their JSON ``inputs``/``outputs``)."""
    inputs = [None if x is None else orjson.loads(x) for x in stored.column("inputs").to_pylist()]
    outputs = [None if x is None else orjson.loads(x) for x in stored.column("outputs").to_pylist()]
    fields = [stored.schema.field(c) for c in META_COLUMNS]
    arrays = [stored.column(c) for c in META_COLUMNS]
    for field, array in [*_feature_columns(inputs), *_probability_columns(outputs)]:
        fields.append(field)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _as_mixed(column: pa.ChunkedArray, mixed: bool) -> pa.Array:
    if mixed:
        return column.combine_chunks()
    values = column.to_pylist()
    return pa.array([None if v is None else orjson.dumps(v).decode() for v in values], pa.string())


def unify_tables(tables: Iterable[pa.Table]) -> pa.Table | None:
    """One table of monitoring tables written at different times (None for none).

    A column missing from a table is null there; a feature typed differently in two
    tables (numbers in one, text in another) becomes JSON text (mixed) in all of them.
    """
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return None
    types: dict[str, set[tuple[pa.DataType, bool]]] = {}
    for t in tables:
        for field in t.schema:
            types.setdefault(field.name, set()).add((field.type, field.metadata == _MIXED))
    clash = {
        name
        for name, seen in types.items()
        if name.startswith(FEATURE) and len({(ty, m) for ty, m in seen if ty != pa.null()}) > 1
    }
    if clash:
        # whole numbers in one part and fractions in another are one float column
        numeric = {
            name
            for name in clash
            if all(
                not m and (pa.types.is_integer(ty) or pa.types.is_floating(ty))
                for ty, m in types[name]
            )
        }
        fixed = []
        for t in tables:
            for name in clash & set(t.column_names):
                i = t.schema.get_field_index(name)
                mixed = t.schema.field(name).metadata == _MIXED
                if name in numeric:
                    t = t.set_column(
                        i, pa.field(name, pa.float64()), t.column(name).cast(pa.float64())
                    )
                else:
                    array = _as_mixed(t.column(name), mixed)
                    t = t.set_column(i, pa.field(name, pa.string(), metadata=_MIXED), array)
            fixed.append(t)
        tables = fixed
    return pa.concat_tables(tables, promote_options="permissive")


def feature_values(table: pa.Table, name: str) -> pa.ChunkedArray | pd.Series:
    """Feature ``name`` of a monitoring table: Arrow, or decoded values when mixed;
    all-missing when no row sent it."""
    column = FEATURE + name
    if column not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, pa.float64())])
    if table.schema.field(column).metadata != _MIXED:
        return table.column(column)
    values = [None if x is None else orjson.loads(x) for x in table.column(column).to_pylist()]
    return pd.Series(values, dtype=object)


def probability_matrix(table: pa.Table, classes: Sequence[str]) -> np.ndarray | None:
    """Rows x classes probabilities, or None unless every row has every class's."""
    names = [PROBABILITY + c for c in classes]
    if len(names) < 2 or table.num_rows == 0 or any(n not in table.column_names for n in names):
        return None
    columns = [table.column(n) for n in names]
    if any(c.null_count for c in columns):
        return None
    return np.column_stack([c.to_numpy() for c in columns]).astype(np.float64, copy=False)
