"""Uniform access to the three input shapes: records, a mapping of columns, a DataFrame."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from mloop.contracts._cells import Raw
from mloop.errors import InvalidInput

__all__ = ["Source", "open_source"]


class Source:
    """Rows of some input shape; columns are fetched one at a time or as a group."""

    n: int
    index: pd.Index | None = None

    def has(self, name: str) -> bool:
        """True when the input carries field ``name``."""
        raise NotImplementedError

    def column(self, name: str) -> Raw:
        """All values of one present field, as a list or 1-D array."""
        raise NotImplementedError

    def group(self, names: Sequence[str], kinds: str) -> tuple[Any, bool]:
        """Values of several present fields: ``(flat list, row_major)`` or a ``(k, n)`` array.

        An array is returned (with ``row_major`` False) only when every column already
        has a numpy dtype whose kind is in ``kinds``.
        """
        raise NotImplementedError

    def extra(self, names: Sequence[str], all_present: bool) -> list[str]:
        """Fields the input carries that are not in ``names``."""
        raise NotImplementedError


class _Records(Source):
    def __init__(self, records: Sequence[Any]) -> None:
        for i, r in enumerate(records):
            if not isinstance(r, Mapping):
                raise InvalidInput(
                    f"Record {i} is a {type(r).__name__}, not an object; send each row as "
                    "{field: value}."
                )
        self.records = records
        self.n = len(records)
        self.keys: Any = records[0].keys() if self.n == 1 else set().union(*records)

    def has(self, name: str) -> bool:
        return self.n == 0 or name in self.keys  # no records: nothing is missing

    def column(self, name: str) -> Raw:
        return [r.get(name) for r in self.records]

    def group(self, names: Sequence[str], kinds: str) -> tuple[Any, bool]:
        if self.n == 1:
            one = self.records[0]
            return [one[k] for k in names], True
        return [r.get(k) for r in self.records for k in names], True

    def extra(self, names: Sequence[str], all_present: bool) -> list[str]:
        if all_present and len(self.keys) == len(names):
            return []  # every contract field is present, so nothing else can be
        wanted = set(names)
        return sorted(str(k) for k in self.keys if k not in wanted)


class _Columns(Source):
    def __init__(self, data: Mapping[Any, Any]) -> None:
        lengths: set[int] = set()
        self.data: dict[str, Raw] = {}
        for key, v in data.items():
            col: Raw = v if isinstance(v, np.ndarray) else list(v)
            if isinstance(col, np.ndarray) and col.ndim != 1:
                raise InvalidInput(
                    f"Column {key!r} must be one-dimensional; got shape {col.shape}."
                )
            lengths.add(len(col))
            self.data[str(key)] = col
        if len(lengths) > 1:
            raise InvalidInput(
                f"Columns have different lengths {sorted(lengths)}; every column must have "
                "one value per row."
            )
        self.n = lengths.pop() if lengths else 0

    def has(self, name: str) -> bool:
        return name in self.data

    def column(self, name: str) -> Raw:
        return self.data[name]

    def group(self, names: Sequence[str], kinds: str) -> tuple[Any, bool]:
        cols = [self.data[k] for k in names]
        if all(isinstance(c, np.ndarray) and c.dtype.kind in kinds for c in cols):
            return np.stack(cols), False
        return list(chain.from_iterable(cols)), False

    def extra(self, names: Sequence[str], all_present: bool) -> list[str]:
        wanted = set(names)
        return sorted(k for k in self.data if k not in wanted)


class _Frame(Source):
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.n = len(frame)
        self.index = frame.index
        self.positions: dict[str, int] = {}
        for i, c in enumerate(frame.columns):
            self.positions.setdefault(str(c), i)

    def has(self, name: str) -> bool:
        return name in self.positions

    def column(self, name: str) -> Raw:
        s = self.frame.iloc[:, self.positions[name]]
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "fiubM":
            arr: np.ndarray = s.to_numpy()
        else:
            arr = s.to_numpy(dtype=object, na_value=None)
        return arr

    def group(self, names: Sequence[str], kinds: str) -> tuple[Any, bool]:
        cols = [self.column(k) for k in names]
        if all(isinstance(c, np.ndarray) and c.dtype.kind in kinds for c in cols):
            return np.stack(cols), False
        return list(
            chain.from_iterable(c if isinstance(c, list) else c.tolist() for c in cols)
        ), False

    def extra(self, names: Sequence[str], all_present: bool) -> list[str]:
        wanted = set(names)
        return sorted(c for c in self.positions if c not in wanted)


def open_source(data: Any, names: Sequence[str]) -> Source:
    """Wrap records, a mapping of columns (or one record) or a DataFrame."""
    if isinstance(data, pd.DataFrame):
        return _Frame(data)
    if isinstance(data, Mapping):
        columnar = [isinstance(v, list | tuple | np.ndarray | pd.Series) for v in data.values()]
        if not any(columnar):
            return _Records([data])  # one record given as a plain object
        if not all(columnar):
            raise InvalidInput(
                "Mix of lists and single values in a column mapping; send every field as a "
                "list of the same length, or send a list of records."
            )
        return _Columns(data)
    if isinstance(data, list | tuple):
        return _Records(data)
    example = names[0] if names else "x"
    raise InvalidInput(
        f"Expected a list of records, a mapping of columns or a DataFrame; got "
        f"{type(data).__name__}. Send JSON like [{{{example!r}: ...}}]."
    )
