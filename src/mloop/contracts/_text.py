"""Typed values from text cells (CSV), so a file is validated like the records it holds.

A CSV file carries only text; guessing types per file (as ``pandas.read_csv`` does) would
turn a category ``"7"`` into a number and a float column with one typo into text, and the
validator would then blame every cell. Instead each column is parsed by the contract's
kind: numbers and flags are converted where the text is one, and a cell that is not stays
text, so the validator reports exactly that cell with the value the file holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop.contracts._schema import Schema

__all__ = ["FALSE_TEXT", "TRUE_TEXT", "parse_text_columns"]

TRUE_TEXT = frozenset({"true", "True", "TRUE", "1"})
FALSE_TEXT = frozenset({"false", "False", "FALSE", "0"})


def parse_text_columns(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """``frame`` (text cells, missing as NA) with the contract's number and flag columns typed.

    String and datetime columns stay text; columns outside the contract are left alone.
    """
    out: dict[str, Any] = {}
    for name in frame.columns:
        text = frame[name]
        kind = schema[str(name)].kind if str(name) in schema.name_set else None
        if kind in ("float", "integer"):
            out[name] = _numbers(text)
        elif kind == "boolean":
            out[name] = _flags(text)
        else:
            out[name] = text.to_numpy(dtype=object, na_value=None)
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def _numbers(text: pd.Series) -> np.ndarray:
    missing = text.isna().to_numpy()
    parsed = pd.to_numeric(text.str.strip(), errors="coerce")
    values: np.ndarray = np.asarray(parsed, dtype=np.float64)
    # "nan" parses to NaN as pandas reads it; anything else that did not parse is kept.
    unparsed = np.isnan(values) & ~missing & ~text.str.strip().str.lower().eq("nan").to_numpy()
    if not unparsed.any():
        return values
    cells: np.ndarray = values.astype(object)
    raw = text.to_numpy(dtype=object, na_value=None)
    cells[unparsed] = raw[unparsed]
    cells[missing] = None
    return cells


def _flags(text: pd.Series) -> np.ndarray:
    raw = text.to_numpy(dtype=object, na_value=None)
    cells = np.empty(len(raw), dtype=object)
    for i, v in enumerate(raw):
        if v is None:
            cells[i] = None
        elif v.strip() in TRUE_TEXT:
            cells[i] = True
        elif v.strip() in FALSE_TEXT:
            cells[i] = False
        else:
            cells[i] = v
    return cells
