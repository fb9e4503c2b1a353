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
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "METHODS",
    "Method",
    "bin_positions",
    "chi2_p_value",
    "dof",
    "holm",
    "inv_n",
    "js_distance",
    "ks_binned",
    "psi",
    "wasserstein_normed",
]

_PSEUDO = 0.5  # per-slot pseudo-count so empty slots do not make PSI infinite

# Every statistic takes the reference counts (slots,) and the current counts of one
# window (slots,) or of many (windows, slots): one formula either way, so a week of
# hourly windows is one array operation per statistic instead of 168 small ones.


def _windows(cur: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.asarray(cur))


def _shaped(values: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
    """A float for one window, an array for many."""
    return float(values[0]) if np.ndim(cur) == 1 else np.asarray(values)


def _used_sum(values: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Row sums over the slots either side used (the others are left out, not zero)."""
    return np.asarray(np.where(used, values, 0.0).sum(axis=1))


def _proportions(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    used = (ref + cur) > 0
    r = np.where(used, ref + _PSEUDO, 0.0)
    c = np.where(used, cur + _PSEUDO, 0.0)
    return used, r / r.sum(axis=1, keepdims=True), c / c.sum(axis=1, keepdims=True)


def dof(ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
    """Degrees of freedom of the slot comparison: slots either side used, minus one."""
    c = _windows(cur)
    return _shaped(np.maximum(((ref + c) > 0).sum(axis=1) - 1, 1).astype(np.float64), cur)


def inv_n(ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
    """``1/n_ref + 1/n_cur``, the scale of every statistic's null distribution."""
    c = _windows(cur)
    return _shaped(1.0 / max(int(ref.sum()), 1) + 1.0 / np.maximum(c.sum(axis=1), 1), cur)


def psi(ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
    """Population stability index (symmetric KL divergence, natural log)."""
    used, p, q = _proportions(ref, _windows(cur))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _shaped(_used_sum((q - p) * np.log(q / p), used), cur)


def js_distance(ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
    """Jensen-Shannon distance (square root of the divergence, natural log)."""
    used, p, q = _proportions(ref, _windows(cur))
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        jsd = 0.5 * _used_sum(p * np.log(p / m), used) + 0.5 * _used_sum(q * np.log(q / m), used)
    return _shaped(np.sqrt(np.maximum(jsd, 0.0)), cur)


def ks_binned(ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
    """Largest gap between the two CDFs over the slots (missing is the last slot)."""
    c = _windows(cur)
    nr, nc = int(ref.sum()), c.sum(axis=1)
    gap = np.abs(ref.cumsum() / max(nr, 1) - c.cumsum(axis=1) / np.maximum(nc, 1)[:, None])
    return _shaped(np.where((nr == 0) | (nc == 0), 0.0, gap.max(axis=1)), cur)


def chi2_p_value(ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
    """Pearson's chi-square test of homogeneity on the 2 x slots table (empty slots dropped)."""
    c = _windows(cur).astype(np.float64)
    used = (ref + c) > 0
    # a slot left out is empty on both sides, so the row sums are the totals
    n0, n1 = float(ref.sum()), c.sum(axis=1)
    column = ref + c
    with np.errstate(divide="ignore", invalid="ignore"):
        e0 = n0 * column / (n0 + n1)[:, None]
        e1 = n1[:, None] * column / (n0 + n1)[:, None]
        stat = _used_sum((ref - e0) ** 2 / e0, used) + _used_sum((c - e1) ** 2 / e1, used)
    slots = used.sum(axis=1)
    trivial = (slots < 2) | (n0 == 0) | (n1 == 0)
    p = special.chdtrc(np.maximum(slots - 1, 1), np.where(trivial, 0.0, stat))
    return _shaped(np.where(trivial, 1.0, p), cur)


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
) -> np.ndarray | float:
    """Earth mover's distance between the binned distributions, in reference std units.

    ``pos``: ``bin_positions(edges)``, when the caller keeps it for many windows."""
    r, c = ref[:-1], _windows(cur)[:, :-1]  # the missing slot has no position
    nr, nc = r.sum(), c.sum(axis=1)
    if nr == 0 or r.size < 2:
        return _shaped(np.zeros(len(c)), cur)
    if pos is None:
        pos = bin_positions(edges)
    gaps = pos[1:] - pos[:-1]
    cdf = np.abs(r.cumsum()[:-1] / nr - c.cumsum(axis=1)[:, :-1] / np.maximum(nc, 1)[:, None])
    dist = np.where(nc == 0, 0.0, (cdf * gaps).sum(axis=1))
    if not scale or not np.isfinite(scale) or scale <= 0:
        scale = float(pos[-1] - pos[0]) / 4.0 or 1.0
    return _shaped(dist / scale, cur)


@dataclass(frozen=True)
class Method:
    """A verdict statistic: its value, p-value and null quantile from counts (one window
    or many, like the statistics)."""

    name: str
    min_effect: float

    def statistic(self, ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
        """The effect size."""
        if self.name == "ks":
            return ks_binned(ref, cur)
        if self.name == "js":
            return js_distance(ref, cur)
        return psi(ref, cur)

    def p_value(self, value: Any, ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
        """Probability of an effect at least this large when nothing changed."""
        if self.name == "ks":
            return _shaped(np.atleast_1d(special.kolmogorov(value / np.sqrt(inv_n(ref, cur)))), cur)
        stat = value**2 * 8.0 if self.name == "js" else value
        return _shaped(np.atleast_1d(special.chdtrc(dof(ref, cur), stat / inv_n(ref, cur))), cur)

    def null_quantile(self, level: Any, ref: np.ndarray, cur: np.ndarray) -> np.ndarray | float:
        """The effect that chance alone exceeds with probability ``level``."""
        if self.name == "ks":
            return _shaped(np.atleast_1d(special.kolmogi(level) * np.sqrt(inv_n(ref, cur))), cur)
        q = special.chdtri(dof(ref, cur), level) * inv_n(ref, cur)
        return _shaped(np.atleast_1d(np.sqrt(q / 8.0) if self.name == "js" else q), cur)


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
