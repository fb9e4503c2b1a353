"""Window counts: each column of a window counted on the reference's slots, mergeable.

This is mloop's own counting engine. A window is reduced to one small count array
per column (O(bins) memory) and windows merge by addition, so drift over an hour,
a day or a rolling span never re-reads raw rows.

The per-column kernels live in ``_binning``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

import numpy as np
import pandas as pd

from mloop.contracts import Profile
from mloop.errors import InvalidInput
from mloop.monitor._binning import count_categorical
from mloop.monitor._reference import ColumnReference, Reference, as_reference

__all__ = ["WindowCounts", "count_column"]


def count_column(col: ColumnReference, values: pd.Series | np.ndarray) -> np.ndarray:
    """Counts of ``values`` on ``col``'s slots."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if col.kind == "categorical":
        return count_categorical(col.categories, series)
    try:
        x = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"Column {col.name!r} is numeric in the reference but holds non-numeric values "
            f"(dtype {series.dtype}); convert it or profile it as categorical."
        ) from exc
    return col.binner.count(x)


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

    def update(self, frame: pd.DataFrame | Mapping[str, Any]) -> Self:
        """Add the rows of ``frame`` (a DataFrame or a mapping of column arrays)."""
        present = frame.columns if isinstance(frame, pd.DataFrame) else frame.keys()
        missing = [name for name in self.counts if name not in present]
        if missing:
            raise InvalidInput(
                f"The window lacks reference column(s) {missing}; pass them or choose "
                "columns=... to monitor a subset."
            )
        for name, col in self.reference.items():
            self.counts[name] += count_column(col, frame[name])
        first = next(iter(present), None)
        self.n += (
            len(frame)
            if isinstance(frame, pd.DataFrame)
            else len(frame[first])
            if first is not None
            else 0
        )
        return self

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
