"""The rows a converted model is checked on: reference data, plus rows with a value missing.

When no reference rows are at hand (a version registered from a notebook keeps only its
binned profile), rows are drawn from the profile: each column independently, bins and
categories in their reference proportions, missing at the reference rate. Independent
columns lose correlations, which is fine here: the question is whether two models
answer the same on inputs like these, not how accurate either is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop.contracts import Column, FeatureProfile, Profile, Schema

__all__ = ["rows_from_profile", "with_missing_probes"]

# Profiles keep one bin per value up to 20 distinct values, else 20 quantile bins (19
# edges): fewer edges than that means the column is discrete.
_QUANTILE_EDGES = 19


def rows_from_profile(schema: Schema, profile: Profile, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` raw records (as a frame) drawn column by column from the reference profile."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for col in schema.columns:
        fp = profile.features.get(col.name)
        values = _draw(col, fp, n, rng)
        if col.nullable and fp is not None and fp.n:
            gone = rng.random(n) < fp.missing / fp.n
            values = values.astype(object)
            values[gone] = None
        data[col.name] = values
    return pd.DataFrame(data)


def with_missing_probes(
    rows: pd.DataFrame, schema: Schema, per_column: int = 200, seed: int = 0
) -> pd.DataFrame:
    """``rows`` plus, for each nullable column, up to ``per_column`` copies with it missing.

    The contract lets these through to the model, so the converted model must answer them
    as the original does even if the reference data had few such rows.
    """
    rng = np.random.default_rng(seed)
    probes = [rows]
    for col in schema.columns:
        if not col.nullable or col.name not in rows.columns or rows.empty:
            continue
        take = rng.choice(len(rows), size=min(per_column, len(rows)), replace=False)
        probe = rows.iloc[np.sort(take)].copy()
        probe[col.name] = pd.Series([None] * len(probe), index=probe.index, dtype=object)
        probes.append(probe)
    return pd.concat(probes, ignore_index=True)


def _draw(col: Column, fp: FeatureProfile | None, n: int, rng: np.random.Generator) -> np.ndarray:
    if fp is None:
        return _fallback(col, n, rng)
    if fp.kind == "categorical":
        if not fp.categories or not sum(fp.category_counts[: len(fp.categories)]):
            return _fallback(col, n, rng)
        weights = np.asarray(fp.category_counts[: len(fp.categories)], np.float64)
        text = rng.choice(
            np.asarray(fp.categories, dtype=object), size=n, p=weights / weights.sum()
        )
        if col.kind == "boolean":
            return np.asarray([t == "True" for t in text], dtype=object)
        if col.kind in ("float", "integer"):
            numbers: np.ndarray = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy()
            return numbers
        return np.asarray(text, dtype=object)
    if fp.min is None or fp.max is None or not sum(fp.counts):
        return _fallback(col, n, rng)
    edges = np.asarray(fp.edges, np.float64)
    counts = np.asarray(fp.counts, np.float64)
    bins = rng.choice(len(counts), size=n, p=counts / counts.sum())
    lower = np.concatenate([[fp.min], edges])
    upper = np.concatenate([edges, [fp.max]])
    if len(edges) < _QUANTILE_EDGES:  # one bin per distinct value: use (about) the value
        values = np.where(bins == 0, fp.min, np.where(bins == len(edges), fp.max, 0.0))
        middle = (bins > 0) & (bins < len(edges))
        values[middle] = (lower[bins[middle]] + upper[bins[middle]]) / 2.0
    else:
        values = lower[bins] + rng.random(n) * (upper[bins] - lower[bins])
    if col.kind == "integer":
        return np.round(values).astype(np.int64)
    if col.kind == "boolean":
        return values >= 0.5
    return values


def _fallback(col: Column, n: int, rng: np.random.Generator) -> np.ndarray:
    """Values from the contract alone (a column the profile does not describe)."""
    if col.kind == "string":
        cats = col.categories or ("",)
        return np.asarray(rng.choice(np.asarray(cats, dtype=object), size=n), dtype=object)
    if col.kind == "boolean":
        return rng.random(n) < 0.5
    low = 0.0 if col.min is None else col.min
    high = low + 1.0 if col.max is None else col.max
    values = low + rng.random(n) * (high - low)
    return np.round(values).astype(np.int64) if col.kind == "integer" else values
