"""Reference profiles: binned summaries of the data a model was validated on.

Numeric features get quantile bin edges (midpoints between values for discrete data);
categorical features keep their most frequent values plus one "other" bucket. The
monitor bins live windows on the same edges with :func:`bin_counts`, so drift is
computed from counts without the raw reference rows.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from mloop.contracts._calibration import Calibration
from mloop.contracts._performance import reference_metrics
from mloop.contracts._schema import Schema
from mloop.errors import InvalidInput
from mloop.types import Predictions

__all__ = ["FeatureProfile", "Profile", "bin_counts", "build_profile"]

PROFILE_FORMAT = 1
MAX_PROFILE_CATEGORIES = 50
FeatureKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureProfile:
    """The distribution of one feature (or prediction, score, target) on the reference data.

    Numeric: bin of ``x`` is ``np.searchsorted(edges, x, side="right")``, so ``counts`` has
    ``len(edges) + 1`` entries and the outer bins are open-ended. Categorical:
    ``category_counts`` has ``len(categories) + 1`` entries, the last for "other".
    """

    name: str
    kind: FeatureKind
    n: int
    missing: int
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()
    category_counts: tuple[int, ...] = ()
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (plain Python numbers only)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "n": self.n,
            "missing": self.missing,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "categories": list(self.categories),
            "category_counts": list(self.category_counts),
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            kind=cast(FeatureKind, data["kind"]),
            n=int(data["n"]),
            missing=int(data["missing"]),
            edges=tuple(float(v) for v in data.get("edges", ())),
            counts=tuple(int(v) for v in data.get("counts", ())),
            categories=tuple(str(v) for v in data.get("categories", ())),
            category_counts=tuple(int(v) for v in data.get("category_counts", ())),
            mean=_opt_float(data.get("mean")),
            std=_opt_float(data.get("std")),
            min=_opt_float(data.get("min")),
            max=_opt_float(data.get("max")),
        )


@dataclass(frozen=True)
class Profile:
    """Everything monitoring needs to know about the reference data of one model version."""

    n: int
    features: Mapping[str, FeatureProfile]
    prediction: FeatureProfile | None = None
    scores: FeatureProfile | None = None
    calibration: Calibration | None = None
    target: FeatureProfile | None = None
    performance: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (plain Python types only)."""

        def opt(fp: FeatureProfile | None) -> dict[str, Any] | None:
            return None if fp is None else fp.to_dict()

        return {
            "format": PROFILE_FORMAT,
            "n": self.n,
            "features": {name: fp.to_dict() for name, fp in self.features.items()},
            "prediction": opt(self.prediction),
            "scores": opt(self.scores),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "target": opt(self.target),
            "performance": {k: float(v) for k, v in self.performance.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Inverse of :meth:`to_dict`."""
        fmt = data.get("format", PROFILE_FORMAT)
        if fmt != PROFILE_FORMAT:
            raise InvalidInput(
                f"Profile format {fmt!r} is not supported (expected {PROFILE_FORMAT}); "
                "upgrade mloop to read it."
            )

        def opt(d: Mapping[str, Any] | None) -> FeatureProfile | None:
            return None if d is None else FeatureProfile.from_dict(d)

        cal = data.get("calibration")
        return cls(
            n=int(data["n"]),
            features={str(k): FeatureProfile.from_dict(v) for k, v in data["features"].items()},
            prediction=opt(data.get("prediction")),
            scores=opt(data.get("scores")),
            calibration=None if cal is None else Calibration.from_dict(cal),
            target=opt(data.get("target")),
            performance={str(k): float(v) for k, v in (data.get("performance") or {}).items()},
        )


# --- building ------------------------------------------------------------------------


def build_profile(
    frame: pd.DataFrame | np.ndarray,
    schema: Schema,
    predictions: Predictions | None = None,
    target: Sequence[Any] | np.ndarray | pd.Series | None = None,
    bins: int = 20,
) -> Profile:
    """Profile the reference ``frame`` (and the model's ``predictions`` and ``target`` on it).

    Datetime columns are not profiled (time always drifts). Calibration is fitted when
    the task is classification and both probabilities and target are given.
    """
    if bins < 2:
        raise InvalidInput(f"bins must be at least 2; got {bins}.")
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(np.asarray(frame), columns=list(schema.names))
    n = len(frame)
    positions = {str(c): i for i, c in enumerate(frame.columns)}
    features: dict[str, FeatureProfile] = {}
    for col in schema.columns:
        if col.name not in positions:
            raise InvalidInput(
                f"Reference data has no column {col.name!r}; profile the frame the schema "
                "was inferred from."
            )
        values = frame.iloc[:, positions[col.name]]
        if col.kind in ("float", "integer"):
            features[col.name] = numeric_profile(col.name, values, bins)
        elif col.kind in ("string", "boolean"):
            features[col.name] = categorical_profile(col.name, values)
    for name, other in (("predictions", predictions), ("target", target)):
        if other is not None and len(other) != n:
            raise InvalidInput(f"Got {len(other)} {name} for {n} reference rows; pass one per row.")

    prediction = scores = calibration = target_profile = None
    performance: dict[str, float] = {}
    classes = tuple(str(c) for c in predictions.classes) if predictions is not None else ()
    if predictions is not None:
        if predictions.task == "classification":
            assert predictions.labels is not None
            prediction = categorical_profile("prediction", predictions.labels, classes)
            if predictions.probabilities is not None:
                top = np.asarray(predictions.probabilities, dtype=np.float64).max(axis=1)
                scores = numeric_profile("score", top, bins)
        else:
            assert predictions.values is not None
            prediction = numeric_profile("prediction", predictions.values, bins)
    if target is not None:
        classify = (
            predictions.task == "classification"
            if predictions is not None
            else not pd.api.types.is_float_dtype(np.asarray(target).dtype)
        )
        if classify:
            target_profile = categorical_profile("target", target, classes)
        else:
            target_profile = numeric_profile("target", target, bins)
        if predictions is not None:
            performance = reference_metrics(predictions, np.asarray(target, dtype=object))
            if predictions.task == "classification" and predictions.probabilities is not None:
                calibration = Calibration.fit(
                    predictions.probabilities, np.asarray(target, dtype=object), predictions.classes
                )
    return Profile(
        n=n,
        features=features,
        prediction=prediction,
        scores=scores,
        calibration=calibration,
        target=target_profile,
        performance=performance,
    )


def numeric_profile(name: str, values: Any, bins: int = 20) -> FeatureProfile:
    """Quantile-binned profile of numeric ``values`` (NaN and None count as missing)."""
    x = _as_float(values)
    present = x[~np.isnan(x)]
    finite = present[np.isfinite(present)]
    distinct = np.unique(finite)
    if distinct.size <= bins:
        edges = (distinct[:-1] + distinct[1:]) / 2.0
    else:
        edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    stats = (
        (float(finite.mean()), float(finite.std()), float(finite.min()), float(finite.max()))
        if finite.size
        else (None, None, None, None)
    )
    return FeatureProfile(
        name=name,
        kind="numeric",
        n=int(x.size),
        missing=int(x.size - present.size),
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        mean=stats[0],
        std=stats[1],
        min=stats[2],
        max=stats[3],
    )


def categorical_profile(
    name: str, values: Any, always: Sequence[str] = (), limit: int = MAX_PROFILE_CATEGORIES
) -> FeatureProfile:
    """Most frequent values (as text) plus "other"; ``always`` lists values kept even if unseen."""
    text, missing = _as_text(values)
    counted = pd.Series(text, dtype=object).value_counts(sort=False)
    pairs = sorted(zip(counted.index.tolist(), counted.tolist(), strict=True), key=_by_count)
    seen = dict(pairs)
    keep = [str(v) for v in always if str(v)][:limit]
    for value, _ in pairs:
        if len(keep) >= limit:
            break
        if value not in keep:
            keep.append(value)
    keep.sort(key=lambda v: (-seen.get(v, 0), v))
    counts = [int(seen.get(v, 0)) for v in keep]
    other = len(text) - sum(counts)
    return FeatureProfile(
        name=name,
        kind="categorical",
        n=len(text) + missing,
        missing=missing,
        categories=tuple(keep),
        category_counts=(*counts, other),
    )


def _by_count(pair: tuple[str, int]) -> tuple[int, str]:
    return (-pair[1], pair[0])


# --- binning live windows ------------------------------------------------------------


def bin_counts(profile: FeatureProfile, values: Any) -> tuple[np.ndarray, int]:
    """Counts of ``values`` on ``profile``'s bins, and how many values were missing.

    Numeric: one count per bin (``len(edges) + 1``). Categorical: one per category plus
    "other" for values the reference never saw (``len(categories) + 1``).
    """
    if profile.kind == "numeric":
        x = _as_float(values)
        present = x[~np.isnan(x)]
        edges = np.asarray(profile.edges, dtype=np.float64)
        idx = np.searchsorted(edges, present, side="right")
        return np.bincount(idx, minlength=edges.size + 1), int(x.size - present.size)
    text, missing = _as_text(values)
    other = len(profile.categories)
    # Factorize first: looking up a few distinct values beats hashing every row twice.
    codes, uniques = pd.factorize(text)
    where = _category_index(profile.categories).get_indexer(uniques)
    where = np.where(where < 0, other, where)
    per_unique = np.bincount(codes, minlength=len(uniques)) if len(uniques) else np.zeros(0)
    counts = np.bincount(where, weights=per_unique, minlength=other + 1).astype(np.int64)
    return counts, missing


@lru_cache(maxsize=1024)
def _category_index(categories: tuple[str, ...]) -> pd.Index:
    return pd.Index(list(categories), dtype=object)


def _as_float(values: Any) -> np.ndarray:
    """float64 array; None, NaN and values that are not numbers become NaN."""
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy(dtype=object, na_value=None) if values.dtype == object else values
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64).ravel()
    flat = arr.astype(object).ravel()
    inferred = pd.api.types.infer_dtype(flat, skipna=True)
    if inferred in ("floating", "integer", "mixed-integer-float", "empty"):
        series = pd.Series(flat, dtype=object)
    else:
        # Booleans count as 0/1; text and other objects are not numbers here.
        series = pd.Series(flat, dtype=object).map(
            lambda v: float(v) if isinstance(v, numbers.Real) else None
        )
    out: np.ndarray = pd.to_numeric(series, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return out


def _as_text(values: Any) -> tuple[np.ndarray, int]:
    """Non-missing values as ``str`` (as ``str(v)`` would write them), and the missing count."""
    if isinstance(values, pd.Series | pd.Index):
        arr = values.to_numpy(dtype=object, na_value=None)
    else:
        arr = np.asarray(values)
        if arr.dtype.kind in "biuU":
            return arr.astype(str).astype(object).ravel(), 0
        arr = arr.astype(object).ravel()
    missing = pd.isna(arr)
    kept = arr[~missing] if missing.any() else arr
    if pd.api.types.infer_dtype(kept, skipna=False) not in ("string", "empty"):
        kept = np.array([str(v) for v in kept.tolist()], dtype=object)
    return kept, int(missing.sum())


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)
