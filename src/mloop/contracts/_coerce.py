"""Turn records, columns or a frame into the contract's frame, collecting every violation.

This is mloop's own validation routine and sits on the serving hot path (one to 64
rows per call). Columns of one kind are checked together: their values are gathered
into one ``(columns, rows)`` array with a single numpy call when every value already
has an acceptable Python type, and null, range and category checks run over the whole
block. Only when a block fails a check do we locate the cells; when a value has the
wrong type the group falls back to the thorough column-by-column path in ``_cells``.
The frame is then built from those blocks directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mloop.contracts import _cells as cells
from mloop.contracts._column import Column, Kind, Policy
from mloop.contracts._frame import Block, assemble_frame, restore_dtype
from mloop.contracts._source import Source, open_source
from mloop.contracts._violation import Violation, json_safe

__all__ = ["Plan", "coerce_with_plan", "make_plan"]

_REAL = (float, int)
# Past this many records the block path's fixed numpy cost is shared widely enough.
_SHORTCUT_ROWS = 4
_BLOCK_DTYPE: dict[Kind, str] = {
    "float": "float64",
    "integer": "int64",
    "boolean": "bool",
    "string": "object",
}
_ARRAY_KINDS: dict[Kind, str] = {"float": "fiu", "integer": "iu", "boolean": "b", "string": ""}
# Training dtypes a checked block already has, so the block goes into the frame as is.
# Anything else (pandas "str", nullable dtypes, object columns of numbers or flags,
# categoricals) is cast back column by column by ``restore_dtype``.
_SAME_AS_BLOCK: dict[Kind, frozenset[str | None]] = {
    "float": frozenset({None, "float64"}),
    "integer": frozenset({None, "int64"}),
    "boolean": frozenset({None, "bool"}),
    "string": frozenset({None, "object"}),
}


def _same_as_block(column: Column) -> bool:
    if column.kind == "datetime" or column.dtype not in _SAME_AS_BLOCK[column.kind]:
        return False
    # An object string block holds None for missing cells: right only if training did.
    return column.kind != "string" or column.missing in (None, "none")


@dataclass(frozen=True)
class Group:
    """Columns of one kind, checked as one block."""

    kind: Kind
    positions: tuple[int, ...]
    columns: tuple[Column, ...]
    names: tuple[str, ...]
    lo: np.ndarray
    hi: np.ndarray
    ranged: bool
    required: np.ndarray
    any_required: bool
    as_block: bool  # False: some column needs its own training dtype restored


@dataclass(frozen=True)
class Plan:
    """The contract's columns grouped by kind, with bounds laid out for block checks."""

    columns: tuple[Column, ...]
    names: tuple[str, ...]
    groups: tuple[Group, ...]
    position: dict[str, int]
    # (name, low, high) per column when every column is a float: small batches of clean
    # records then skip the block machinery (see ``_clean_float_rows``).
    float_bounds: tuple[tuple[str, float, float], ...] | None = None


def make_plan(columns: Sequence[Column]) -> Plan:
    """Group ``columns`` by kind once, so each call only runs the checks."""
    groups = []
    for kind in ("float", "integer", "boolean", "string", "datetime"):
        members = [(i, c) for i, c in enumerate(columns) if c.kind == kind]
        if not members:
            continue
        cols = tuple(c for _, c in members)
        lo = np.array([[-np.inf if c.min is None else c.min] for c in cols], dtype=np.float64)
        hi = np.array([[np.inf if c.max is None else c.max] for c in cols], dtype=np.float64)
        required = np.array([[not c.nullable] for c in cols])
        groups.append(
            Group(
                kind=kind,
                positions=tuple(i for i, _ in members),
                columns=cols,
                names=tuple(c.name for c in cols),
                lo=lo,
                hi=hi,
                ranged=bool(np.isfinite(lo).any() or np.isfinite(hi).any()),
                required=required,
                any_required=bool(required.any()),
                as_block=all(_same_as_block(c) for c in cols),
            )
        )
    all_float = bool(columns) and all(c.kind == "float" for c in columns)
    return Plan(
        columns=tuple(columns),
        names=tuple(c.name for c in columns),
        groups=tuple(groups),
        position={c.name: i for i, c in enumerate(columns)},
        float_bounds=tuple(
            (
                c.name,
                -np.inf if c.min is None else float(c.min),
                np.inf if c.max is None else float(c.max),
            )
            for c in columns
        )
        if all_float
        else None,
    )


def coerce_with_plan(
    plan: Plan,
    data: Any,
    *,
    on_unknown_category: Policy,
    on_out_of_range: Policy,
    as_matrix: bool = False,
) -> tuple[Any, list[Violation]]:
    """Validate ``data``; the frame (or float matrix) has exactly the plan's columns, in order."""
    if (
        as_matrix
        and plan.float_bounds is not None
        and type(data) is list
        and len(data) <= _SHORTCUT_ROWS
    ):
        clean = _clean_float_rows(plan.float_bounds, data)
        if clean is not None:
            return clean, []
    source = open_source(data, plan.names)
    n = source.n
    out: list[Violation] = []
    blocks: list[Block] = []
    all_present = True
    for group in plan.groups:
        present = all(source.has(name) for name in group.names)
        all_present = all_present and present
        block = None
        if present and group.kind != "datetime":
            flat, row_major = source.group(group.names, _ARRAY_KINDS[group.kind])
            block = _fast_block(
                group, flat, row_major, n, out, on_unknown_category, on_out_of_range
            )
        if block is not None and group.as_block:
            blocks.append((block, group.positions))
            continue
        for j, (pos, col) in enumerate(zip(group.positions, group.columns, strict=True)):
            if block is not None:
                arr = block[j]
            else:
                arr = _slow_column(col, source, n, out, on_unknown_category, on_out_of_range)
            blocks.append((arr if as_matrix else restore_dtype(col, arr), (pos,)))
    for name in source.extra(plan.names, all_present):
        out.append(Violation(None, name, None, "no such column", "unknown_column", "flag"))
    if len(out) > 1:
        last = len(plan.names)
        out.sort(key=lambda v: (plan.position.get(v.field, last), -1 if v.row is None else v.row))
    if as_matrix:
        return _matrix(blocks, len(plan.names), n), out
    return assemble_frame(plan.names, blocks, n, source.index), out


def _clean_float_rows(
    bounds: tuple[tuple[str, float, float], ...], records: list[Any]
) -> np.ndarray | None:
    """Up to a few records as a float matrix when nothing in them can violate the contract.

    Every record must be a dict holding exactly the contract's fields, each a real
    number (``bool`` is not) within the column's bounds (NaN never is). Anything
    else returns None and the full path finds and reports the violations; for one
    row this check costs a few microseconds against ~25 for the block path.
    """
    k = len(bounds)
    rows = []
    for record in records:
        if type(record) is not dict or len(record) != k:
            return None
        row: list[float] = []
        for name, low, high in bounds:
            value = record.get(name)
            if type(value) not in _REAL or not low <= value <= high:  # type: ignore[operator]
                return None
            row.append(value)  # type: ignore[arg-type]
        rows.append(row)
    try:
        return np.array(rows, dtype=np.float64).reshape(len(records), k)
    except OverflowError:  # an int beyond float64: the full path says which
        return None


def _matrix(blocks: list[Block], k: int, n: int) -> np.ndarray:
    """Rows x columns float64 matrix of numeric blocks (missing cells are NaN)."""
    out = np.empty((k, n), dtype=np.float64)
    for arr, positions in blocks:
        values = np.asarray(arr, dtype=np.float64)
        out[list(positions)] = values.reshape(len(positions), n)
    return out.T


def _slow_column(
    col: Column,
    source: Source,
    n: int,
    out: list[Violation],
    on_unknown_category: Policy,
    on_out_of_range: Policy,
) -> np.ndarray:
    sink = cells.Sink(col, out)
    if source.has(col.name):
        raw = source.column(col.name)
    else:
        sink.add(None, None, "missing_column", col.expects)
        raw = [None] * n
        sink = cells.Sink(col, [])  # one report per missing column, not one per row
    if col.kind == "float":
        return cells.float_column(raw, sink, on_out_of_range)
    if col.kind == "integer":
        return cells.integer_column(raw, sink, on_out_of_range)
    if col.kind == "boolean":
        return cells.boolean_column(raw, sink)
    if col.kind == "string":
        return cells.string_column(raw, sink, on_unknown_category)
    return cells.datetime_column(raw, sink)


# --- the fast path -------------------------------------------------------------------


def _fast_block(
    group: Group,
    flat: Any,
    row_major: bool,
    n: int,
    out: list[Violation],
    on_unknown_category: Policy,
    on_out_of_range: Policy,
) -> np.ndarray | None:
    """The group's ``(k, n)`` block after its checks, or None to take the slow path."""
    k = len(group.names)
    kind = group.kind
    if isinstance(flat, np.ndarray):
        block = flat.astype(_BLOCK_DTYPE[kind], copy=False)
        types: set[type] = set()
    else:
        types = set(map(type, flat))
        if kind == "string":
            if not types <= cells.STR_TYPES:
                return None
            block = np.empty(len(flat), dtype=object)
            block[:] = flat
        else:
            allowed = {"float": cells.FLOAT_TYPES, "integer": cells.INT_TYPES}.get(
                kind, cells.BOOL_TYPES
            )
            if not types <= allowed:
                return None
            try:
                block = np.array(flat, dtype=_BLOCK_DTYPE[kind])
            except (OverflowError, TypeError, ValueError):
                return None  # e.g. an int beyond int64: the slow path says which
        block = block.reshape(n, k).T if row_major else block.reshape(k, n)
    if kind == "float" and group.any_required:
        nulls = np.isnan(block) & group.required
        if nulls.any():
            _report(group, nulls, block, "null_not_allowed", "reject", out)
    if group.ranged and kind in ("float", "integer"):
        with np.errstate(invalid="ignore"):
            outside = (block < group.lo) | (block > group.hi)
        if outside.any():
            _report(group, outside, block, "out_of_range", on_out_of_range, out)
    if kind == "string":
        _check_strings(group, block, type(None) in types, on_unknown_category, out)
    return block


def _check_strings(
    group: Group, block: np.ndarray, has_none: bool, policy: Policy, out: list[Violation]
) -> None:
    for j, col in enumerate(group.columns):
        if col.categories is None and not (has_none and not col.nullable):
            continue
        values = block[j].tolist()
        if has_none and not col.nullable and None in values:
            for i, v in enumerate(values):
                if v is None:
                    out.append(
                        Violation(i, col.name, None, col.expects, "null_not_allowed", "reject")
                    )
        if col.categories is not None:
            unknown = set(values) - col.category_set
            unknown.discard(None)
            if unknown:
                expected = col.describe_categories()
                for i, v in enumerate(values):
                    if v in unknown:
                        out.append(Violation(i, col.name, v, expected, "unknown_category", policy))


def _report(
    group: Group,
    mask: np.ndarray,
    block: np.ndarray,
    kind: Any,
    severity: Policy,
    out: list[Violation],
) -> None:
    described: dict[int, str] = {}  # one description per column, not per bad cell
    for j, i in np.argwhere(mask).tolist():
        col = group.columns[j]
        if kind == "null_not_allowed":
            out.append(Violation(i, col.name, None, col.expects, kind, severity))
        else:
            if j not in described:
                described[j] = col.describe_range()
            value = json_safe(block[j, i])
            out.append(Violation(i, col.name, value, described[j], kind, severity))
