"""Fast binning of one column onto reference slots (mloop's own counting kernel).

Numeric binning avoids a binary search per value: a uniform grid of ``_CELLS``
cells spans the interior edges; a lookup table maps each cell to its bin, and only
the few cells that contain an edge are resolved with ``np.searchsorted``. Because
``x * scale + offset`` is monotone in floating point, a value whose cell index is
below (above) the cell of edge ``e`` is certainly below (at or above) ``e``; only
values in an edge's own cell are ambiguous. Categorical columns are coded once per
distinct value (pandas categorical codes, Arrow dictionary encoding or
``pd.factorize``) and mapped to slots through a small lookup array.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput

__all__ = [
    "NumericBinner",
    "arrow_distinct_counts",
    "category_text",
    "count_arrow_categorical",
    "count_categorical",
    "distinct_counts",
    "float_values",
    "hashed_off_the_gil",
    "is_arrow_text",
    "scratch_floats",
    "slot_counts",
]

_CELLS = 8192
_CHUNK = 131_072  # values per pass of the counting kernel (two 1 MiB buffers)


class NumericBinner:
    """Counts float values into ``len(edges) + 1`` bins plus a missing slot."""

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = edges
        self.bins = len(edges) + 1
        lo, hi = (float(edges[0]), float(edges[-1])) if len(edges) else (0.0, 0.0)
        self.fast = len(edges) >= 2 and np.isfinite(hi - lo) and hi > lo
        if not self.fast:
            return
        # cells 1.._CELLS-2 span [lo, hi]; 0 and _CELLS-1 take what lies outside, so the
        # many values beyond the outer edges never need a search
        self.scale = (_CELLS - 3) / (hi - lo)
        self.offset = 1.0 - lo * self.scale
        edge_cells = self._cells(edges)
        cells = np.arange(_CELLS)
        # bin of an unambiguous cell = number of edges whose cell lies below it
        self.table = np.searchsorted(edge_cells, cells, side="left").astype(np.intp)
        self.ambiguous = np.zeros(_CELLS, dtype=bool)
        self.ambiguous[edge_cells] = True
        self.sure_cells = np.flatnonzero(~self.ambiguous)
        self.sure_bins = self.table[self.sure_cells]

    def _cells(self, x: np.ndarray) -> np.ndarray:
        t = np.multiply(x, self.scale)
        np.add(t, self.offset, out=t)
        np.clip(t, 0, _CELLS - 1, out=t)
        return np.asarray(t.astype(np.intp))

    def count(self, x: np.ndarray, *, may_have_nan: bool = True) -> np.ndarray:
        """Counts per bin, then missing (NaN), of float64 ``x``.

        ``may_have_nan=False`` skips the NaN scan for values already known finite.
        """
        counts = np.zeros(self.bins + 1, dtype=np.int64)
        if not self.fast:
            nan = np.isnan(x)
            counts[-1] = np.count_nonzero(nan)
            counts[:-1] = np.bincount(
                np.searchsorted(self.edges, x[~nan], side="right"), minlength=self.bins
            )
            return counts
        # Chunks small enough to stay in cache, written into two reused buffers: fresh
        # full-length temporaries cost more in page faults than the arithmetic itself.
        t_buf, cell_buf = _scratch()
        per_cell = np.zeros(_CELLS, dtype=np.int64)
        unsure: list[np.ndarray] = []
        for start in range(0, x.size, _CHUNK):
            chunk = x[start : start + _CHUNK]
            if may_have_nan:
                nan = np.isnan(chunk)
                n_missing = int(np.count_nonzero(nan))
                if n_missing:
                    counts[-1] += n_missing
                    chunk = chunk[~nan]
            t, cells = t_buf[: chunk.size], cell_buf[: chunk.size]
            np.multiply(chunk, self.scale, out=t)
            np.add(t, self.offset, out=t)
            np.clip(t, 0, _CELLS - 1, out=t)
            cells[...] = t  # truncation toward zero: t >= 0, so this is floor
            np.add.at(per_cell, cells, 1)  # numpy >= 1.25: faster than bincount here
            rows = np.flatnonzero(np.take(self.ambiguous, cells))
            if rows.size:
                unsure.append(chunk[rows])
        if unsure:
            counts[:-1] += np.bincount(
                np.searchsorted(self.edges, np.concatenate(unsure), side="right"),
                minlength=self.bins,
            )
        counts[:-1] += np.bincount(
            self.sure_bins, weights=per_cell[self.sure_cells], minlength=self.bins
        ).astype(np.int64)
        return counts

    def slots(self, x: np.ndarray) -> np.ndarray:
        """The slot of each float64 value of ``x`` (the missing slot for NaN): the
        slots ``count`` adds up, so ``bincount(slots(x)) == count(x)``."""
        out = np.searchsorted(self.edges, x, side="right")
        out[np.isnan(x)] = self.bins
        return out


_local = threading.local()


def scratch_floats() -> np.ndarray:
    """This thread's float64 scratch buffer (``_CHUNK`` values; do not keep a reference)."""
    return _scratch()[0]


def _scratch() -> tuple[np.ndarray, np.ndarray]:
    """This thread's kernel buffers, allocated once: a fresh megabyte per call costs
    page faults that dominate counting a 100k-row column."""
    buffers: tuple[np.ndarray, np.ndarray] | None = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = (np.empty(_CHUNK, dtype=np.float64), np.empty(_CHUNK, dtype=np.intp))
        _local.buffers = buffers
    return buffers


def float_values(name: str, series: pd.Series) -> np.ndarray:
    """The column as float64 with NaN for missing (no copy when it already is)."""
    if series.dtype == np.float64:
        return np.asarray(series.to_numpy())
    try:
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"Column {name!r} is numeric in the reference but holds non-numeric values "
            f"(dtype {series.dtype}); convert it or profile it as categorical."
        ) from exc


def distinct_counts(values: pd.Series) -> tuple[list[Any], np.ndarray, int]:
    """(distinct values, count of each, missing count) in one hashing pass."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        per_code = np.bincount(codes + 1, minlength=len(dtype.categories) + 1)
        return list(dtype.categories), per_code[1:], int(per_code[0])
    if getattr(dtype, "storage", None) == "pyarrow" or isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        return arrow_distinct_counts(pa.array(values))
    codes, found = pd.factorize(values.to_numpy(), use_na_sentinel=True)
    per_code = np.bincount(codes + 1, minlength=len(found) + 1)
    return list(found), per_code[1:], int(per_code[0])


def arrow_distinct_counts(arr: Any) -> tuple[list[Any], np.ndarray, int]:
    """``distinct_counts`` of one Arrow array: dictionary indices counted, or values hashed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        # Parquet's dictionary-encoded strings: count small integer indices, then look up
        # the few dictionary values, instead of hashing every string
        size = len(arr.dictionary)
        indices = pc.fill_null(arr.indices, size).to_numpy(zero_copy_only=False)
        per_index = np.bincount(indices, minlength=size + 1)
        uniques = arr.dictionary.to_pylist()
        missing = int(per_index[size]) + sum(
            int(per_index[i]) for i, u in enumerate(uniques) if u is None
        )
        kept = [i for i, u in enumerate(uniques) if u is not None]
        return [uniques[i] for i in kept], per_index[kept], missing
    table = pc.value_counts(arr.drop_null())
    uniques = table.field("values").to_pylist()
    return uniques, table.field("counts").to_numpy(), int(arr.null_count)


def hashed_off_the_gil(values: Any) -> bool:
    """True for text columns that Arrow counts without holding the GIL (worth a thread)."""
    dtype = getattr(values, "dtype", None)
    if dtype is not None and (
        getattr(dtype, "storage", None) == "pyarrow" or isinstance(dtype, pd.ArrowDtype)
    ):
        return not pd.api.types.is_numeric_dtype(dtype)
    if type(values).__module__.startswith("pyarrow"):
        import pyarrow as pa

        t = values.type
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t))
    return False


def is_arrow_text(arr: Any) -> bool:
    """True for Arrow string and dictionary arrays (counted by Arrow's own kernels)."""
    import pyarrow as pa

    t = arr.type
    return bool(
        pa.types.is_dictionary(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
    )


def count_categorical(categories: Sequence[str], values: pd.Series) -> np.ndarray:
    """Counts per category, then "other", then missing."""
    dtype = values.dtype
    if getattr(dtype, "storage", None) == "pyarrow" or isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        arr = pa.array(values)
        if is_arrow_text(arr):
            return count_arrow_categorical(categories, arr)
    return slot_counts(categories, *distinct_counts(values))


def count_arrow_categorical(categories: Sequence[str], arr: Any) -> np.ndarray:
    """``count_categorical`` of an Arrow string or dictionary array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        return slot_counts(categories, *arrow_distinct_counts(arr))
    # A string's text is its category text, so the known categories are looked up
    # directly: a probe per row into a table of <= 50 values, cheaper than hashing
    # every distinct value into counts first.
    k = len(categories)
    found = pc.index_in(arr, value_set=pa.array(list(categories), type=arr.type))
    codes = pc.fill_null(found, k).to_numpy(zero_copy_only=False)
    counts = np.zeros(k + 2, dtype=np.int64)
    np.add.at(counts, codes, 1)  # int32 codes: bincount would first copy them to int64
    missing = int(arr.null_count)
    counts[k] -= missing  # index_in gives null for missing values and unknown ones alike
    counts[k + 1] = missing
    return counts


def slot_counts(
    categories: Sequence[str], uniques: Sequence[Any], per_value: np.ndarray, missing: int
) -> np.ndarray:
    """Per-distinct-value counts folded onto category slots, "other" and missing."""
    k = len(categories)
    slots = {c: i for i, c in enumerate(categories)}
    # aggregate per distinct value, not per row: O(distinct values)
    target = np.array([slots.get(category_text(u), k) for u in uniques], dtype=np.intp)
    counts = np.zeros(k + 2, dtype=np.int64)
    np.add.at(counts, target, per_value.astype(np.int64))
    counts[k + 1] = missing
    return counts


def category_text(value: Any) -> str:
    """The text form under which a category value is stored in a reference."""
    if isinstance(value, float) and value.is_integer():
        # 3.0 in a float column is the category "3" of an integer reference
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)
