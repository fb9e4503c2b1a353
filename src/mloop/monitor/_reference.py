"""The reference side of drift: per-column bins and counts, from a ``Profile`` or a DataFrame.

A ``Reference`` holds, per column, the bin edges (numeric) or known categories
(categorical) and the reference counts on those slots. Slot layout, used by every
count array in the monitor:

* numeric: ``len(edges) + 1`` bins (``np.searchsorted(edges, x, side="right")``), then
  one slot for missing values;
* categorical: one slot per known category, one "other" slot, one missing slot.

A ``Profile`` (from ``mloop.contracts``) is read by attribute (duck-typed), so this
module does not depend on the contracts package; a DataFrame is binned here with the
same semantics the contracts spec describes (quantile edges, midpoints for discrete
integers, the most frequent categories plus "other").
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput
from mloop.monitor._binning import (
    NumericBinner,
    category_text,
    distinct_counts,
    float_values,
    hashed_off_the_gil,
    scratch_floats,
    slot_counts,
)
from mloop.monitor._stats import bin_positions

__all__ = ["ColumnReference", "Reference", "as_reference"]

Kind = Literal["numeric", "categorical"]

DEFAULT_BINS = 20
MAX_CATEGORIES = 50
# Edges come from a sample: bins need not be exact quantiles, and sorting 1M values per
# column would dominate the cost of building a reference.
_EDGE_SAMPLE = 50_000


class FeatureProfileLike(Protocol):
    """The attributes of ``mloop.contracts.FeatureProfile`` this module reads."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def missing(self) -> int: ...
    @property
    def edges(self) -> Sequence[float]: ...
    @property
    def counts(self) -> Sequence[int]: ...
    @property
    def categories(self) -> Sequence[str]: ...
    @property
    def category_counts(self) -> Sequence[int]: ...
    @property
    def mean(self) -> float | None: ...
    @property
    def std(self) -> float | None: ...


@dataclass(frozen=True, eq=False)
class ColumnReference:
    """One column's reference bins and counts (numeric edges or categorical values)."""

    name: str
    kind: Kind
    counts: np.ndarray  # int64, slot layout in the module docstring
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    categories: tuple[str, ...] = ()
    mean: float | None = None
    std: float | None = None
    role: str = "feature"  # "feature", "prediction" or "score"

    @cached_property
    def binner(self) -> NumericBinner:
        """The fast binner for this column's edges (built once)."""
        return NumericBinner(self.edges)

    @cached_property
    def positions(self) -> np.ndarray:
        """A representative value per numeric bin (``bin_positions``; built once)."""
        return bin_positions(self.edges)

    @property
    def n(self) -> int:
        """Rows counted, missing included."""
        return int(self.counts.sum())

    @property
    def slot_labels(self) -> list[str]:
        """A short human label per count slot (for tables and plots)."""
        if self.kind == "categorical":
            return [*self.categories, "(other)", "(missing)"]
        e = [f"{v:.4g}" for v in self.edges.tolist()]
        if not e:
            return ["(all)", "(missing)"]
        inner = [f"[{a}, {b})" for a, b in itertools.pairwise(e)]
        return [f"< {e[0]}", *inner, f">= {e[-1]}", "(missing)"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "counts": self.counts.tolist(),
            "edges": self.edges.tolist(),
            "categories": list(self.categories),
            "mean": self.mean,
            "std": self.std,
            "role": self.role,
        }


class Reference(Mapping[str, ColumnReference]):
    """The reference columns by name; what windows are counted against."""

    def __init__(self, columns: Sequence[ColumnReference]) -> None:
        self._columns = {c.name: c for c in columns}

    def __getitem__(self, name: str) -> ColumnReference:
        try:
            return self._columns[name]
        except KeyError:
            known = ", ".join(sorted(self._columns)) or "(none)"
            raise InvalidInput(
                f"Column {name!r} is not in the reference; known columns: {known}."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def select(self, names: Sequence[str]) -> Reference:
        """A reference restricted to ``names`` (in that order)."""
        return Reference([self[n] for n in names])


def as_reference(
    source: object,
    *,
    columns: Sequence[str] | None = None,
    bins: int = DEFAULT_BINS,
    categorical: Sequence[str] = (),
) -> Reference:
    """A ``Reference`` from a ``Reference``, a ``Profile`` (duck-typed) or a DataFrame."""
    if isinstance(source, Reference):
        ref = source
    elif isinstance(source, pd.DataFrame):
        from mloop.monitor._parallel import map_columns

        names = list(columns) if columns is not None else [str(c) for c in source.columns]
        chosen = set(categorical)
        return Reference(
            map_columns(
                lambda n: column_from_values(n, source[n], bins=bins, categorical=n in chosen),
                names,
                values=len(source) * len(names),
                background=lambda n: hashed_off_the_gil(source[n]),
            )
        )
    elif hasattr(source, "features"):
        ref = _from_profile(source)
    else:
        raise InvalidInput(
            f"Cannot use a {type(source).__name__} as a drift reference; pass a pandas "
            "DataFrame or a Profile (mloop.contracts.build_profile)."
        )
    return ref.select(list(columns)) if columns is not None else ref


def column_from_profile(
    fp: FeatureProfileLike, role: str = "feature", name: str | None = None
) -> ColumnReference:
    """Convert one ``FeatureProfile`` to a ``ColumnReference`` (optionally renamed)."""
    name = name or fp.name
    missing = int(fp.missing)
    if fp.kind == "categorical":
        counts = np.array([*fp.category_counts, missing], dtype=np.int64)
        if len(counts) != len(fp.categories) + 2:
            raise InvalidInput(
                f"Profile feature {fp.name!r} has {len(fp.categories)} categories but "
                f"{len(fp.category_counts)} category counts; expected one more (for 'other')."
            )
        return ColumnReference(
            name, "categorical", counts, categories=tuple(map(str, fp.categories)), role=role
        )
    edges = np.asarray(fp.edges, dtype=np.float64)
    counts = np.array([*fp.counts, missing], dtype=np.int64)
    if len(counts) != len(edges) + 2:
        raise InvalidInput(
            f"Profile feature {fp.name!r} has {len(edges)} edges but {len(fp.counts)} counts; "
            "expected len(edges) + 1."
        )
    return ColumnReference(
        name, "numeric", counts, edges=edges, mean=fp.mean, std=fp.std, role=role
    )


def _from_profile(profile: Any) -> Reference:
    cols = [column_from_profile(fp) for fp in profile.features.values()]
    for attr, name in (("prediction", "prediction"), ("scores", "score")):
        fp = getattr(profile, attr, None)
        if fp is not None:
            cols.append(column_from_profile(fp, role=name, name=name))
    return Reference(cols)


def is_categorical(values: pd.Series) -> bool:
    """Strings, booleans, categories and objects are categorical; numbers are numeric."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return True
    return not pd.api.types.is_numeric_dtype(dtype)


def column_from_values(
    name: str,
    values: pd.Series,
    *,
    bins: int = DEFAULT_BINS,
    categorical: bool = False,
    role: str = "feature",
) -> ColumnReference:
    """Bin one reference column: quantile edges (numeric) or top categories (categorical)."""
    if categorical or is_categorical(values):
        # one hashing pass gives both the top categories and their counts
        uniques, per_value, missing = distinct_counts(values)
        categories = top_categories(uniques, per_value)
        counts = slot_counts(categories, uniques, per_value, missing)
        return ColumnReference(name, "categorical", counts, categories=categories, role=role)
    all_values = float_values(name, values)
    x = all_values
    total = float(x.sum())
    finite = bool(np.isfinite(total))
    if not finite:  # one cheap pass; the filter copies only when needed
        x = x[np.isfinite(x)]
        total = float(x.sum())
    edges = numeric_edges(x, bins)
    mean = total / x.size if x.size else None  # what x.mean() computes, without a second pass
    std = _std(x, mean) if mean is not None else None
    binner = NumericBinner(edges)
    col = ColumnReference(
        name,
        "numeric",
        binner.count(all_values, may_have_nan=not finite),
        edges=edges,
        mean=mean,
        std=std,
        role=role,
    )
    col.__dict__["binner"] = binner  # seed the cached property: the window reuses it
    return col


def _std(x: np.ndarray, mean: float) -> float:
    """``x.std()`` in cache-sized chunks (numpy's version allocates a full-size temporary)."""
    buf = scratch_floats()
    squares = 0.0
    for start in range(0, x.size, buf.size):
        part = x[start : start + buf.size]
        d = buf[: part.size]
        np.subtract(part, mean, out=d)
        np.multiply(d, d, out=d)
        squares += float(d.sum())
    return float(np.sqrt(squares / x.size))


def top_categories(
    uniques: Sequence[Any], per_value: np.ndarray, limit: int = MAX_CATEGORIES
) -> tuple[str, ...]:
    """The ``limit`` most frequent values as text, most frequent first."""
    totals: dict[str, int] = {}
    for value, count in zip(uniques, per_value.tolist(), strict=True):
        text = category_text(value)
        totals[text] = totals.get(text, 0) + count
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(text for text, count in ranked[:limit] if count > 0)


@functools.lru_cache(maxsize=8)
def _sample_rows(n: int) -> np.ndarray:
    """The rows an edge sample reads from ``n`` values (the same for every column of a frame)."""
    rows = np.random.default_rng(0).integers(0, n, _EDGE_SAMPLE)
    rows.setflags(write=False)
    return rows


def numeric_edges(x: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Interior edges: midpoints for few distinct values, else deduplicated quantiles."""
    if x.size == 0:
        return np.empty(0)
    if x.size > _EDGE_SAMPLE:
        x = x[_sample_rows(x.size)]
    s = np.sort(x)
    changes = s[1:] != s[:-1]
    if np.count_nonzero(changes) < bins:  # at most ``bins`` distinct values
        distinct = s[np.r_[True, changes]]
        return np.asarray((distinct[:-1] + distinct[1:]) / 2.0, dtype=np.float64)
    # linear-interpolated quantiles (numpy's default) read off the sorted sample
    pos = np.linspace(0.0, 1.0, bins + 1)[1:-1] * (s.size - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, s.size - 1)
    q = s[lo] + (pos - lo) * (s[hi] - s[lo])
    return np.asarray(np.unique(q), dtype=np.float64)
