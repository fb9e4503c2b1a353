"""Data validation before training: the contract, label shift, duplicates, outliers,
rows outside the reference support, and signs of label flipping.

The label-flip test is mloop's own: on rows where the champion is confident and the
data looks like its reference, labels should contradict it about as often as the
champion's calibrated error rate predicts. A one-sided binomial test against that
rate, plus a minimum ratio, separates poisoning from honest noise. Pure functions: the
caller computes the champion's predictions (I/O) and passes them in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput
from mloop.pipelines._checks import Check, Report
from mloop.types import Predictions

if TYPE_CHECKING:
    from mloop.contracts import FeatureProfile, Profile, Schema

__all__ = ["ValidationConfig", "validate_data"]


@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds of the data checks (rates are shares of rows, 0..1)."""

    min_rows: int = 50
    max_contract_violation_rate: float = 0.01
    max_label_shift: float = 0.3  # Jensen-Shannon distance (base 2) over the known labels
    max_new_label_rate: float = 0.5  # labels the champion never saw (a new class may appear)
    max_duplicate_rate: float = 0.05
    max_outlier_rate: float = 0.02
    outlier_z: float = 6.0  # |x - reference mean| / reference std
    max_out_of_support_rate: float = 0.02
    support_margin: float = 0.1  # reference [min, max] widened by this share of its range
    confidence: float = 0.9  # champion top probability that counts as confident
    min_confident_rows: int = 20
    flip_alpha: float = 1e-4
    flip_ratio: float = 3.0  # observed disagreement must also exceed ratio x expected
    min_expected_error: float = 0.01

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationConfig:
        """Build from a ``[pipelines.validation]`` table."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(
                f"Unknown validation setting(s) {sorted(unknown)}; known: {sorted(known)}."
            )
        return cls(**dict(data))


def validate_data(
    frame: pd.DataFrame,
    *,
    features: Sequence[str],
    target: str,
    config: ValidationConfig | None = None,
    schema: Schema | None = None,
    profile: Profile | None = None,
    champion: Predictions | None = None,
) -> Report:
    """Check ``frame`` (features + target) before training; ``champion`` predicts its rows."""
    cfg = config or ValidationConfig()
    n = len(frame)
    checks = [
        Check(
            "rows",
            n >= cfg.min_rows,
            float(n),
            float(cfg.min_rows),
            f"{n} rows" + ("" if n >= cfg.min_rows else f"; need at least {cfg.min_rows}"),
        )
    ]
    if n == 0:
        return Report("validation", tuple(checks), {"rows": 0})
    X = frame[list(features)]
    y = frame[target]
    checks.append(_contract(X, schema, cfg))
    checks.append(_duplicates(frame, cfg))
    supported = np.ones(n, dtype=bool)
    if profile is not None:
        shift, new_labels = _label_shift(y, profile.target, cfg)
        checks += [shift, new_labels]
        outliers, support, supported = _numeric_checks(X, profile, cfg)
        checks += [outliers, support]
    else:
        checks.append(_skipped("label_shift", "no champion profile to compare against"))
    checks.append(_label_flips(y, champion, profile, supported, cfg))
    metrics = {c.name: c.value for c in checks}
    return Report("validation", tuple(checks), metrics)


def _skipped(name: str, why: str) -> Check:
    return Check(name, True, None, None, f"skipped: {why}")


def _contract(X: pd.DataFrame, schema: Schema | None, cfg: ValidationConfig) -> Check:
    limit = cfg.max_contract_violation_rate
    if schema is None:
        return _skipped("contract", "the champion has no contract")
    violations = schema.validate(X)
    rejects = [v for v in violations if v.severity == "reject"]
    if any(v.row is None for v in rejects):
        first = next(v for v in rejects if v.row is None)
        return Check(
            "contract", False, 1.0, limit, f"the data breaks the contract: {first.message}"
        )
    rows = {v.row for v in rejects}
    rate = len(rows) / len(X)
    message = f"{len(rows)} of {len(X)} rows break the champion's contract"
    if rejects:
        message += f" (first: {rejects[0].message})"
    return Check("contract", rate <= limit, rate, limit, message)


def _duplicates(frame: pd.DataFrame, cfg: ValidationConfig) -> Check:
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False)
    rate = float(hashed.duplicated().mean())
    limit = cfg.max_duplicate_rate
    return Check(
        "duplicates",
        rate <= limit,
        rate,
        limit,
        f"{rate:.1%} of rows repeat an earlier row exactly",
    )


def _distribution(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(np.float64)


def _label_shift(
    y: pd.Series, reference: FeatureProfile | None, cfg: ValidationConfig
) -> tuple[Check, Check]:
    from scipy.spatial.distance import jensenshannon

    from mloop.contracts import bin_counts

    if reference is None:
        why = "the champion's profile has no label distribution"
        return _skipped("label_shift", why), _skipped("new_labels", why)
    counts, _ = bin_counts(reference, y)
    ref = np.asarray(
        reference.category_counts if reference.kind == "categorical" else reference.counts,
        dtype=np.float64,
    )
    new_rate = 0.0
    if reference.kind == "categorical":
        # Labels the champion never saw land in "other": a new class is reported on its own
        # and the shift is measured over the known labels.
        present = max(int(counts.sum()), 1)
        new_rate = float(counts[-1]) / present if ref[-1] == 0 else 0.0
        if ref[-1] == 0:
            counts, ref = counts[:-1], ref[:-1]
    p, q = _distribution(ref), _distribution(counts.astype(np.float64))
    distance = float(jensenshannon(p, q, base=2)) if q.sum() > 0 and p.sum() > 0 else 0.0
    distance = 0.0 if not np.isfinite(distance) else distance
    shift = Check(
        "label_shift",
        distance <= cfg.max_label_shift,
        distance,
        cfg.max_label_shift,
        f"label distribution moved by Jensen-Shannon distance {distance:.3f} from the champion's reference",
    )
    new = Check(
        "new_labels",
        new_rate <= cfg.max_new_label_rate,
        new_rate,
        cfg.max_new_label_rate,
        f"{new_rate:.1%} of labels are values the champion never saw",
    )
    return shift, new


def _numeric_checks(
    X: pd.DataFrame, profile: Profile, cfg: ValidationConfig
) -> tuple[Check, Check, np.ndarray]:
    n = len(X)
    outlier = np.zeros(n, dtype=bool)
    outside = np.zeros(n, dtype=bool)
    worst: dict[str, int] = {}
    for name, fp in profile.features.items():
        if fp.kind != "numeric" or name not in X.columns or fp.min is None or fp.max is None:
            continue
        x = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float64)
        present = ~np.isnan(x)
        if fp.std and fp.mean is not None and fp.std > 0:
            outlier |= present & (np.abs(x - fp.mean) / fp.std > cfg.outlier_z)
        span = max(fp.max - fp.min, abs(fp.max) * 1e-9, 1e-12)
        low, high = fp.min - cfg.support_margin * span, fp.max + cfg.support_margin * span
        out = present & ((x < low) | (x > high))
        if out.any():
            worst[name] = int(out.sum())
        outside |= out
    out_rate = float(outlier.mean()) if n else 0.0
    sup_rate = float(outside.mean()) if n else 0.0
    where = ", ".join(f"{k} ({v})" for k, v in sorted(worst.items(), key=lambda kv: -kv[1])[:3])
    outliers = Check(
        "outliers",
        out_rate <= cfg.max_outlier_rate,
        out_rate,
        cfg.max_outlier_rate,
        f"{out_rate:.1%} of rows have a value more than {cfg.outlier_z:g} reference std from the mean",
    )
    support = Check(
        "support",
        sup_rate <= cfg.max_out_of_support_rate,
        sup_rate,
        cfg.max_out_of_support_rate,
        f"{sup_rate:.1%} of rows fall outside the reference range"
        + (f" (columns: {where})" if where else ""),
    )
    return outliers, support, ~outside


def _expected_error(
    probs: np.ndarray, profile: Profile | None, cfg: ValidationConfig
) -> tuple[float, str]:
    if profile is not None and profile.calibration is not None:
        try:
            calibrated = profile.calibration.apply(probs)
        except InvalidInput:
            calibrated = None
        if calibrated is not None:
            top = calibrated[np.arange(len(probs)), probs.argmax(axis=1)]
            return max(float(np.mean(1.0 - top)), cfg.min_expected_error), "calibrated confidence"
    if profile is not None and "accuracy" in profile.performance:
        rate = 1.0 - float(profile.performance["accuracy"])
        return max(rate, cfg.min_expected_error), "reference accuracy"
    return max(float(np.mean(1.0 - probs.max(axis=1))), cfg.min_expected_error), "raw confidence"


def _label_flips(
    y: pd.Series,
    champion: Predictions | None,
    profile: Profile | None,
    supported: np.ndarray,
    cfg: ValidationConfig,
) -> Check:
    from scipy.stats import binomtest

    if champion is None:
        return _skipped("label_flips", "no champion to compare labels against")
    if champion.task != "classification" or champion.probabilities is None:
        return _skipped("label_flips", "the champion gives no class probabilities")
    assert champion.labels is not None
    probs = np.asarray(champion.probabilities, dtype=np.float64)
    known = {str(c) for c in champion.classes}
    truth = np.array([str(v) for v in y.to_numpy(dtype=object)], dtype=object)
    guess = np.array([str(v) for v in champion.labels], dtype=object)
    labeled = ~pd.isna(y.to_numpy(dtype=object))
    confident = (
        (probs.max(axis=1) >= cfg.confidence) & np.isin(truth, list(known)) & supported & labeled
    )
    n = int(confident.sum())
    if n < cfg.min_confident_rows:
        return _skipped(
            "label_flips",
            f"only {n} confident rows in the reference's range (need {cfg.min_confident_rows})",
        )
    disagree = int((truth[confident] != guess[confident]).sum())
    expected, source = _expected_error(probs[confident], profile, cfg)
    observed = disagree / n
    p_value = float(binomtest(disagree, n, expected, alternative="greater").pvalue)
    threshold = cfg.flip_ratio * expected
    flipped = p_value < cfg.flip_alpha and observed > threshold
    message = (
        f"labels contradict the confident champion on {disagree} of {n} rows ({observed:.1%}); "
        f"expected about {expected:.1%} from its {source} (binomial p={p_value:.2g})"
    )
    if flipped:
        message += "; labels look flipped"
    return Check("label_flips", not flipped, observed, threshold, message)
