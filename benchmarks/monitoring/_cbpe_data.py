"""Covariate-shifted classification data for the CBPE benchmark (run in the mloop venv).

A gradient-boosted classifier is trained on one sample; a labelled reference sample
and 10 analysis chunks follow, the chunks increasingly shifted in the inputs only
(P(y | x) unchanged), which is the setting CBPE is meant for. Saved as .npz so each
tool's own environment reads identical arrays.
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

CHUNK = 5_000


def _draw(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 5))
    x[:, 0] += shift
    x[:, 1] *= 1.0 + shift / 2
    logit = 1.5 * x[:, 0] - x[:, 1] ** 2 + np.sin(2 * x[:, 2]) + 0.5 * x[:, 3] * x[:, 4]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return x, y


def make(path: str, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x_train, y_train = _draw(rng, 20_000, 0.0)
    model = HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(x_train, y_train)
    x_ref, y_ref = _draw(rng, 20_000, 0.0)
    chunks = [_draw(rng, CHUNK, shift) for shift in np.linspace(0.0, 1.2, 10)]
    x_ana = np.vstack([c[0] for c in chunks])
    y_ana = np.concatenate([c[1] for c in chunks])
    np.savez(
        path,
        ref_proba=model.predict_proba(x_ref)[:, 1],
        ref_y=y_ref,
        ana_proba=model.predict_proba(x_ana)[:, 1],
        ana_y=y_ana,
        chunk=np.array(CHUNK),
    )


if __name__ == "__main__":
    make(sys.argv[1])
