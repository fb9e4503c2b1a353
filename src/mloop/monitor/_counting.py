"""Window counts: each column of a window counted on the reference's slots, mergeable.

This is mloop's own counting engine. A window is reduced to one small count array
per column (O(bins) memory) and windows merge by addition, so drift over an hour,
a day or a rolling span never re-reads raw rows.

The per-column kernels live in ``_binning``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from mloop.contracts import Profile
from mloop.errors import InvalidInput
from mloop.monitor._binning import (
    count_arrow_categorical,
    count_categorical,
    float_values,
    hashed_off_the_gil,
    is_arrow_text,
)
from mloop.monitor._parallel import map_columns
from mloop.monitor._reference import ColumnReference, Reference, as_reference

__all__ = ["WindowCounts", "count_column", "count_windows"]


def count_column(col: ColumnReference, values: Any) -> np.ndarray:
    """Counts of ``values`` (a Series, numpy array or Arrow array) on ``col``'s slots."""
    if _is_arrow(values):
        return _count_arrow(col, values)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if col.kind == "categorical":
        return count_categorical(col.categories, series)
    return col.binner.count(float_values(col.name, series))


def _is_arrow(values: object) -> bool:
    module = type(values).__module__
    return module.startswith("pyarrow")


def _count_arrow(col: ColumnReference, values: Any) -> np.ndarray:
    """Arrow arrays (Parquet batches) counted without going through pandas where possible."""
    import pyarrow as pa

    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    total = np.zeros(len(col.counts), dtype=np.int64)
    for arr in chunks:
        if col.kind == "categorical" and is_arrow_text(arr):
            total += count_arrow_categorical(col.categories, arr)
        elif col.kind == "numeric" and (
            pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)
        ):
            # nulls become NaN; float64 without nulls is read in place
            x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
            total += col.binner.count(x)
        else:
            # everything else goes through pandas, so it counts as the in-memory path does
            total += count_column(col, arr.to_pandas())
    return total


def _slots(col: ColumnReference, values: Any) -> np.ndarray | None:
    """The slot of every row, for the kinds of values that have a vectorised kernel."""
    import pyarrow as pa

    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not _is_arrow(arr):
        return None
    if col.kind == "numeric" and (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
        return col.binner.slots(x)
    if col.kind == "categorical" and is_arrow_text(arr) and not pa.types.is_dictionary(arr.type):
        import pyarrow.compute as pc

        k = len(col.categories)
        found = pc.index_in(arr, value_set=pa.array(list(col.categories), type=arr.type))
        codes = np.asarray(pc.fill_null(found, k).to_numpy(zero_copy_only=False), dtype=np.intp)
        codes[np.asarray(arr.is_null().to_numpy(zero_copy_only=False))] = k + 1
        return codes
    return None


def count_windows(
    reference: Reference, columns: Mapping[str, Any], bounds: Sequence[tuple[int, int]]
) -> list[dict[str, np.ndarray]]:
    """Counts of many windows at once: ``columns`` hold rows sorted by time and window
    ``i`` is rows ``bounds[i][0]:bounds[i][1]`` (consecutive, in order).

    Each row's slot is found once and ``bincount`` sums every window in one pass, so a
    week of hourly windows costs one pass over the rows, not 168 calls per column;
    equal to ``WindowCounts(reference).update(window)`` per window.
    """
    out: list[dict[str, np.ndarray]] = [{} for _ in bounds]
    if not bounds:
        return out
    first, last = bounds[0][0], bounds[-1][1]
    sizes = np.array([hi - lo for lo, hi in bounds], dtype=np.intp)
    window_of = np.repeat(np.arange(len(bounds), dtype=np.intp), sizes)
    for name, col in reference.items():
        values = columns[name]
        rows = values.iloc[first:last] if isinstance(values, pd.Series) else values[first:last]
        slots = _slots(col, rows)
        width = len(col.counts)
        if slots is None:  # other kinds of values: counted window by window
            for i, (lo, hi) in enumerate(bounds):
                part = values.iloc[lo:hi] if isinstance(values, pd.Series) else values[lo:hi]
                out[i][name] = count_column(col, part)
            continue
        table = np.bincount(window_of * width + slots, minlength=len(bounds) * width)
        for i, row in enumerate(table.reshape(len(bounds), width)):
            out[i][name] = row.astype(np.int64)
    return out


class WindowCounts:
    """Counts of one window per column on the reference's slots; ``update`` and ``merge``."""

    def __init__(
        self, reference: Profile | pd.DataFrame | Reference, columns: Iterable[str] | None = None
    ) -> None:
        ref = as_reference(reference)
        self.reference: Reference = ref.select(list(columns)) if columns is not None else ref
        self.n = 0
        self.counts: dict[str, np.ndarray] = {
            name: np.zeros(len(col.counts), dtype=np.int64) for name, col in self.reference.items()
        }

    def update(self, frame: pd.DataFrame | Mapping[str, Any] | Any) -> Self:
        """Add the rows of ``frame``: a DataFrame, an Arrow table or record batch, or a
        mapping of column arrays."""
        present = set(_column_names(frame))
        missing = [name for name in self.counts if name not in present]
        if missing:
            raise InvalidInput(
                f"The window lacks reference column(s) {missing}; pass them or choose "
                "columns=... to monitor a subset."
            )
        rows = _row_count(frame)
        cols = list(self.reference.values())
        counted = map_columns(
            lambda col: count_column(col, frame[col.name]),
            cols,
            values=rows * len(cols),
            background=lambda col: (
                col.kind == "categorical" and hashed_off_the_gil(frame[col.name])
            ),
        )
        for col, counts in zip(cols, counted, strict=True):
            self.counts[col.name] += counts
        self.n += rows
        return self

    @classmethod
    def from_source(
        cls, reference: Profile | pd.DataFrame | Reference, source: Any
    ) -> WindowCounts:
        """Count a window too large for memory, chunk by chunk: an iterable of frames or
        Arrow tables, a Parquet file, folder or glob, or a ``pyarrow.dataset.Dataset``.

        Equal to ``WindowCounts(reference).update(whole_frame)``; windows counted from
        separate shards (one per worker) ``merge`` into the counts of all of them.
        """
        from mloop.monitor._stream import open_stream

        ref = as_reference(reference)
        categorical = [name for name, col in ref.items() if col.kind == "categorical"]
        return open_stream(source, categorical=categorical).count(ref)

    def merge(self, other: WindowCounts) -> WindowCounts:
        """A new window holding the rows of both (same reference bins required)."""
        if list(self.counts) != list(other.counts):
            raise InvalidInput("Cannot merge windows counted over different columns.")
        out = WindowCounts(self.reference)
        for name in self.counts:
            a, b = self.counts[name], other.counts[name]
            if a.shape != b.shape:
                raise InvalidInput(
                    f"Cannot merge windows: column {name!r} has {a.size} slots in one and "
                    f"{b.size} in the other (different references)."
                )
            out.counts[name] = a + b
        out.n = self.n + other.n
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts (the reference is not included)."""
        return {"n": self.n, "counts": {k: v.tolist() for k, v in self.counts.items()}}

    @classmethod
    def from_dict(
        cls, reference: Profile | pd.DataFrame | Reference, data: Mapping[str, Any]
    ) -> WindowCounts:
        """Rebuild counts saved with ``to_dict`` against the same reference."""
        out = cls(reference, columns=list(data["counts"]))
        for name, values in data["counts"].items():
            arr = np.asarray(values, dtype=np.int64)
            if arr.shape != out.counts[name].shape:
                raise InvalidInput(f"Saved counts for {name!r} do not match the reference bins.")
            out.counts[name] = arr
        out.n = int(data["n"])
        return out


def _column_names(frame: Any) -> Sequence[Any]:
    if isinstance(frame, pd.DataFrame):
        return list(frame.columns)
    if _is_arrow(frame):  # pyarrow Table or RecordBatch
        return list(frame.schema.names)
    return list(frame.keys())


def _row_count(frame: Any) -> int:
    if isinstance(frame, pd.DataFrame) or _is_arrow(frame):
        return len(frame)
    first = next(iter(frame.keys()), None)
    return len(frame[first]) if first is not None else 0
