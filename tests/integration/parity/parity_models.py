"""Models fitted on the parity data sets, the way a data scientist would fit them."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
from parity_data import DataSet
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder


def feature_kinds(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric columns (imputed) and categorical ones (one-hot, missing as its own level)."""
    numeric, categorical = [], []
    for name in X.columns:
        dtype = X[name].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            numeric.append(name)
        else:
            categorical.append(name)
    return numeric, categorical


def sklearn_pipeline(data: DataSet) -> Pipeline:
    """Imputer on numbers, one-hot on strings (NaN learned as a category), then HGB."""
    numeric, categorical = feature_kinds(data.X)
    columns = ColumnTransformer(
        [
            ("num", SimpleImputer(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    if data.task == "classification":
        head: Any = HistGradientBoostingClassifier(max_iter=40, random_state=0)
    else:
        head = HistGradientBoostingRegressor(max_iter=40, random_state=0)
    return make_pipeline(columns, head).fit(data.X, data.y)


class FrameProbe:
    """A python-function model whose answer changes with anything the model is handed.

    Each row's prediction is a hash of every column's dtype and the row's values
    (``None``, ``NaN`` and ``pd.NA`` hash differently), so equal predictions mean the
    served frame equals the training-style frame cell for cell, dtype for dtype.
    """

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """One float per row."""
        dtypes = "|".join(f"{c}:{X[c].dtype}" for c in X.columns)
        out = np.empty(len(X))
        for i, row in enumerate(X.itertuples(index=False)):
            text = dtypes + "|" + "|".join(_cell(v) for v in row)
            digest = hashlib.sha256(text.encode()).digest()
            out[i] = int.from_bytes(digest[:6], "big")
        return out


def _cell(value: Any) -> str:
    # Like tests/frame_cells.cell_identity, but here: the probe is served from a pickle
    # by value, and a helper module next to it would not travel with it.
    if value is None:
        return "None"
    if value is pd.NA:
        return "NA"
    if value is pd.NaT:
        return "NaT"
    return f"{type(value).__name__}:{value!r}"
