"""Multivariate drift: how well a classifier tells current rows from reference rows.

If no single column moved but their joint distribution did, a gradient-boosted
classifier trained to separate the two samples finds it; its cross-validated ROC
AUC is 0.5 when nothing changed. Costly (it trains ``folds`` models), so it runs on
demand and on a sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mloop.errors import InvalidInput
from mloop.monitor._drift import MultivariateDrift
from mloop.monitor._metrics import roc_auc_binary
from mloop.monitor._reference import is_categorical

__all__ = ["domain_classifier_auc", "multivariate_drift"]

MIN_RELEVANT_AUC = 0.55


def _design(
    frames: Sequence[pd.DataFrame], columns: Sequence[str]
) -> tuple[np.ndarray, list[bool]]:
    both = pd.concat([f[list(columns)] for f in frames], ignore_index=True)
    parts, categorical = [], []
    for name in columns:
        values = both[name]
        if is_categorical(values):
            codes = pd.Series(pd.factorize(values.astype(str).where(values.notna()))[0])
            col = codes.where(codes >= 0).to_numpy(dtype=np.float64)
            # histogram gradient boosting takes at most 255 categories natively
            categorical.append(int(np.nanmax(col, initial=0)) < 255)
        else:
            col = values.to_numpy(dtype=np.float64, na_value=np.nan)
            categorical.append(False)
        parts.append(col)
    return np.column_stack(parts), categorical


def domain_classifier_auc(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    sample: int = 5000,
    folds: int = 3,
    random_state: int = 0,
) -> float:
    """Cross-validated ROC AUC of a HistGradientBoosting classifier separating the two frames."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    names = list(columns) if columns is not None else [str(c) for c in reference.columns]
    absent = [c for c in names if c not in current.columns]
    if absent:
        raise InvalidInput(f"The current frame lacks column(s) {absent}.")
    if min(len(reference), len(current)) < folds * 2:
        raise InvalidInput(
            f"Need at least {folds * 2} rows on each side for a {folds}-fold domain classifier; "
            f"got {len(reference)} reference and {len(current)} current rows."
        )
    rng = np.random.default_rng(random_state)
    ref = reference.iloc[rng.permutation(len(reference))[:sample]]
    cur = current.iloc[rng.permutation(len(current))[:sample]]
    x, categorical = _design([ref, cur], names)
    y = np.r_[np.zeros(len(ref), dtype=np.int64), np.ones(len(cur), dtype=np.int64)]
    model = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        categorical_features=np.asarray(categorical, dtype=bool),
        early_stopping=False,
        random_state=random_state,
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    proba = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    return roc_auc_binary(y, proba)


def multivariate_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    alpha: float = 0.05,
    sample: int = 5000,
    random_state: int = 0,
) -> MultivariateDrift:
    """Domain-classifier AUC with a threshold: the larger of 0.55 and chance at level ``alpha``."""
    auc = domain_classifier_auc(
        reference, current, columns=columns, sample=sample, random_state=random_state
    )
    n1, n2 = min(len(reference), sample), min(len(current), sample)
    # out-of-fold scores under no drift: AUC behaves like a Mann-Whitney statistic
    sd = float(np.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2)))
    threshold = max(MIN_RELEVANT_AUC, 0.5 + float(stats.norm.isf(alpha)) * sd)
    return MultivariateDrift(
        auc=auc, threshold=threshold, drifted=auc >= threshold, n_reference=n1, n_current=n2
    )
