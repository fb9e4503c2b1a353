"""Drift statistics computed from two count arrays on the same slots (mloop's own engine).

Every function takes reference and current counts (slot layout of ``_reference``)
and costs O(slots). Null quantiles are analytic so that a threshold adapts to the
sample sizes and the bin count at no cost:

* PSI: for two samples from one distribution, ``PSI / (1/n_ref + 1/n_cur)`` is
  asymptotically chi-square with ``slots - 1`` degrees of freedom (PSI is a symmetric
  KL divergence; to second order it equals Pearson's statistic divided by the
  effective sample size). Jensen-Shannon divergence is PSI / 8 to the same order.
* KS on binned CDFs: binning can only shrink the supremum, so the continuous
  two-sample Kolmogorov distribution is a conservative null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "METHODS",
    "Method",
    "chi2_p_value",
    "holm",
    "js_distance",
    "ks_binned",
    "psi",
    "wasserstein_normed",
]

_PSEUDO = 0.5  # per-slot pseudo-count so empty slots do not make PSI infinite


def _proportions(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used = (ref + cur) > 0
    r = ref[used] + _PSEUDO
    c = cur[used] + _PSEUDO
    return r / r.sum(), c / c.sum()


def _dof(ref: np.ndarray, cur: np.ndarray) -> int:
    return max(int(np.count_nonzero((ref + cur) > 0)) - 1, 1)


def _inv_n(ref: np.ndarray, cur: np.ndarray) -> float:
    nr, nc = max(int(ref.sum()), 1), max(int(cur.sum()), 1)
    return 1.0 / nr + 1.0 / nc


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index (symmetric KL divergence, natural log)."""
    p, q = _proportions(ref, cur)
    return float(((q - p) * np.log(q / p)).sum())


def js_distance(ref: np.ndarray, cur: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, natural log)."""
    p, q = _proportions(ref, cur)
    m = (p + q) / 2.0
    jsd = 0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum()
    return float(np.sqrt(max(jsd, 0.0)))


def ks_binned(ref: np.ndarray, cur: np.ndarray) -> float:
    """Largest gap between the two CDFs over the slots (missing is the last slot)."""
    nr, nc = ref.sum(), cur.sum()
    if nr == 0 or nc == 0:
        return 0.0
    return float(np.abs(ref.cumsum() / nr - cur.cumsum() / nc).max())


def chi2_p_value(ref: np.ndarray, cur: np.ndarray) -> float:
    """Pearson's chi-square test of homogeneity on the 2 x slots table (empty slots dropped)."""
    used = (ref + cur) > 0
    table = np.vstack([ref[used], cur[used]]).astype(np.float64)
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return float(special.chdtrc(table.shape[1] - 1, stat))


def bin_positions(edges: np.ndarray) -> np.ndarray:
    """A representative value per numeric bin: midpoints, outer bins half a gap outside."""
    if edges.size == 0:
        return np.zeros(1)
    if edges.size == 1:
        return np.array([edges[0] - 0.5, edges[0] + 0.5])
    mids = (edges[:-1] + edges[1:]) / 2.0
    first = edges[0] - (edges[1] - edges[0]) / 2.0
    last = edges[-1] + (edges[-1] - edges[-2]) / 2.0
    return np.concatenate([[first], mids, [last]])


def wasserstein_normed(
    ref: np.ndarray,
    cur: np.ndarray,
    edges: np.ndarray,
    scale: float | None,
    pos: np.ndarray | None = None,
) -> float:
    """Earth mover's distance between the binned distributions, in reference std units.

    ``pos``: ``bin_positions(edges)``, when the caller keeps it for many windows."""
    r, c = ref[:-1], cur[:-1]  # the missing slot has no position
    nr, nc = r.sum(), c.sum()
    if nr == 0 or nc == 0 or r.size < 2:
        return 0.0
    if pos is None:
        pos = bin_positions(edges)
    gaps = pos[1:] - pos[:-1]
    dist = float((np.abs(r.cumsum()[:-1] / nr - c.cumsum()[:-1] / nc) * gaps).sum())
    if not scale or not np.isfinite(scale) or scale <= 0:
        scale = float(pos[-1] - pos[0]) / 4.0 or 1.0
    return dist / scale


@dataclass(frozen=True)
class Method:
    """A verdict statistic: its value, p-value and null quantile from counts."""

    name: str
    min_effect: float

    def statistic(self, ref: np.ndarray, cur: np.ndarray) -> float:
        """The effect size."""
        if self.name == "ks":
            return ks_binned(ref, cur)
        if self.name == "js":
            return js_distance(ref, cur)
        return psi(ref, cur)

    def _chi2_scale(self, ref: np.ndarray, cur: np.ndarray) -> float:
        # statistic -> chi-square variable
        return 1.0 / _inv_n(ref, cur)

    def p_value(self, value: float, ref: np.ndarray, cur: np.ndarray) -> float:
        """Probability of an effect at least this large when nothing changed."""
        if self.name == "ks":
            return float(special.kolmogorov(value / np.sqrt(_inv_n(ref, cur))))
        stat = value**2 * 8.0 if self.name == "js" else value
        return float(special.chdtrc(_dof(ref, cur), stat / _inv_n(ref, cur)))

    def null_quantile(self, level: float, ref: np.ndarray, cur: np.ndarray) -> float:
        """The effect that chance alone exceeds with probability ``level``."""
        if self.name == "ks":
            return float(special.kolmogi(level) * np.sqrt(_inv_n(ref, cur)))
        q = float(special.chdtri(_dof(ref, cur), level) * _inv_n(ref, cur))
        return float(np.sqrt(q / 8.0)) if self.name == "js" else q


# Minimum relevant effects: about a 0.03 sd mean shift of a normal column (KS 0.012,
# PSI 0.0009); smaller changes are not worth an alert however many rows confirm them.
METHODS: dict[str, Method] = {
    "ks": Method("ks", 0.0125),
    "psi": Method("psi", 0.001),
    "js": Method("js", float(np.sqrt(0.001 / 8.0))),
}


def holm(p_values: Sequence[float], alpha: float) -> tuple[list[float], list[bool]]:
    """Holm's step-down: the level each test is held to, and whether it rejects."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    levels = [0.0] * m
    rejects = [False] * m
    still = True
    for rank, i in enumerate(order):
        levels[i] = alpha / (m - rank)
        still = still and p_values[i] <= levels[i]
        rejects[i] = still
    return levels, rejects
