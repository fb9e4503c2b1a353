"""``drift(reference, current)``: the engine on its own, one call from data to a report."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.contracts import Profile
from mloop.errors import InvalidInput
from mloop.monitor._catalog import ModelCatalog
from mloop.monitor._counting import WindowCounts, count_column
from mloop.monitor._drift import DriftReport, MultivariateDrift, drift_from_counts
from mloop.monitor._reference import (
    DEFAULT_BINS,
    ColumnReference,
    Reference,
    as_reference,
    column_from_values,
    is_categorical,
)
from mloop.monitor._stream import open_stream
from mloop.types import Predictions

__all__ = ["drift"]


def resolve_reference(
    reference: Profile | pd.DataFrame | Reference | str,
    catalog: ModelCatalog | None = None,
) -> Profile | pd.DataFrame | Reference:
    """Turn what the caller passed into a Profile, DataFrame or Reference.

    A ``"name@alias"`` / ``"name:3"`` string is the stored reference profile of that
    model version in ``catalog`` (a ``Registry``; ``mloop.drift`` passes the default one).
    """
    if isinstance(reference, str):
        if catalog is None:
            raise InvalidInput(
                f"reference={reference!r} names a registered model version: call "
                "mloop.drift(...), which looks it up in the default registry, or pass "
                "catalog=mloop.get_registry()."
            )
        version = catalog.get(reference)
        if version.profile is None:
            raise InvalidInput(
                f"{reference} has no reference profile: it was registered without "
                "training data. Pass a DataFrame as the reference instead."
            )
        return version.profile
    return reference


def _prediction_columns(predictions: Predictions | Any) -> dict[str, pd.Series]:
    """``prediction`` (labels or values) and, for classifiers with probabilities, ``score``."""
    if isinstance(predictions, Predictions):
        if predictions.task == "regression":
            return {"prediction": pd.Series(np.asarray(predictions.values, dtype=np.float64))}
        out = {"prediction": pd.Series(np.asarray(predictions.labels).astype(str))}
        if predictions.probabilities is not None:
            out["score"] = pd.Series(np.asarray(predictions.probabilities).max(axis=1))
        return out
    return {"prediction": pd.Series(np.asarray(predictions))}


def drift(
    reference: Profile | pd.DataFrame | Reference | str,
    current: pd.DataFrame | WindowCounts | Iterable[pd.DataFrame] | str | os.PathLike[str] | Any,
    *,
    columns: Sequence[str] | None = None,
    predictions: Predictions | np.ndarray | pd.Series | None = None,
    reference_predictions: Predictions | np.ndarray | pd.Series | None = None,
    method: str | Mapping[str, str] = "auto",
    alpha: float = 0.05,
    min_effect: float | Mapping[str, float] | None = None,
    drift_share: float = 0.0,
    bins: int = DEFAULT_BINS,
    categorical: Sequence[str] = (),
    multivariate: bool = False,
    catalog: ModelCatalog | None = None,
) -> DriftReport:
    """Compare ``current`` rows (or counts) with a reference ``Profile`` or DataFrame.

    Per column: ``method`` "auto" (KS on binned CDFs for numeric, PSI for categorical),
    "psi", "js" or "ks"; a column drifts when its effect exceeds both ``min_effect`` and
    chance at family-wise level ``alpha`` (Holm over all columns). The dataset drifts
    when at least ``drift_share`` of the columns (and at least one) drift, or, with
    ``multivariate=True``, when a domain classifier separates the two frames.
    Prediction drift is included when ``predictions`` are given (reference side from
    the profile or ``reference_predictions``).

    ``current`` may also be too large for memory: an iterable of DataFrames (or Arrow
    tables), a Parquet file, folder or glob, or a ``pyarrow.dataset.Dataset``. It is
    then counted chunk by chunk, with the same result as the whole frame in memory.
    """
    source = resolve_reference(reference, catalog)
    raw_reference = source if isinstance(source, pd.DataFrame) else None
    stream = None
    if not isinstance(current, pd.DataFrame | WindowCounts):
        stream = open_stream(current, categorical=_categorical_names(source, categorical))
    current_names = (
        [str(c) for c in current.columns]
        if isinstance(current, pd.DataFrame)
        else stream.columns
        if stream is not None
        else None
    )
    if raw_reference is not None and columns is None and current_names is not None:
        present = set(current_names)
        columns = [str(c) for c in raw_reference.columns if c in present]
    ref = as_reference(source, columns=columns, bins=bins, categorical=categorical)
    feature_names = [name for name, col in ref.items() if col.role == "feature"]
    features = ref.select(feature_names)

    if isinstance(current, WindowCounts):
        window = current
    elif isinstance(current, pd.DataFrame):
        window = WindowCounts(features).update(current)
    else:
        assert stream is not None
        window = stream.count(features)
    counts: dict[str, np.ndarray] = {
        name: window.counts[name] for name in feature_names if name in window.counts
    }
    used: list[ColumnReference] = [ref[name] for name in counts]

    if predictions is not None:
        for name, values in _prediction_columns(predictions).items():
            col = _prediction_reference(ref, name, raw_reference, reference_predictions, bins)
            if col is None:
                continue
            used.append(col)
            counts[name] = count_column(col, values)

    multi: MultivariateDrift | None = None
    if multivariate:
        if raw_reference is None or not isinstance(current, pd.DataFrame):
            raise InvalidInput(
                "multivariate=True needs raw rows on both sides: pass DataFrames as "
                "reference and current (a profile keeps only per-column counts)."
            )
        from mloop.monitor._domain import multivariate_drift

        multi = multivariate_drift(raw_reference, current, columns=feature_names, alpha=alpha)
    return drift_from_counts(
        Reference(used),
        counts,
        alpha=alpha,
        method=method,
        min_effect=min_effect,
        drift_share=drift_share,
        multivariate=multi,
        meta={"n_current": window.n},
    )


def _categorical_names(source: object, categorical: Sequence[str]) -> list[str]:
    """Columns the reference treats as categories (read as dictionaries from Parquet)."""
    if isinstance(source, pd.DataFrame):
        return [str(c) for c in source.columns if c in categorical or is_categorical(source[c])]
    if isinstance(source, Reference):
        return [name for name, col in source.items() if col.kind == "categorical"]
    features = getattr(source, "features", {})
    return [name for name, fp in features.items() if getattr(fp, "kind", "") == "categorical"]


def _prediction_reference(
    ref: Reference,
    name: str,
    raw_reference: pd.DataFrame | None,
    reference_predictions: Any,
    bins: int,
) -> ColumnReference | None:
    if name in ref:
        return ref[name]
    if reference_predictions is None:
        if raw_reference is None:
            return None  # the profile has no such column: nothing to compare against
        raise InvalidInput(
            "predictions were given but reference_predictions were not; pass the model's "
            "predictions on the reference rows too."
        )
    values = _prediction_columns(reference_predictions).get(name)
    if values is None:
        return None
    return column_from_values(name, values, bins=bins, role=name)
