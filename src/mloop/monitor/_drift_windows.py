"""Drift of many windows against one reference at once (a week of hourly windows).

``drift_from_counts`` spends ~20 small numpy calls per window and column; over 168
windows of ten columns that overhead is most of a dashboard's page. Here every
statistic is computed for all windows of a column in one array operation. The
numbers are ``drift_from_counts``'s (the same formulas; sums may differ in the last
bit), with its defaults: automatic method per column kind and its minimum effects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import special

from mloop.monitor._drift import ColumnDrift, DriftReport, _method_for
from mloop.monitor._reference import ColumnReference, Reference
from mloop.monitor._stats import METHODS, holm

__all__ = ["drift_over_windows"]

_PSEUDO = 0.5  # as ``_stats``: per used slot, so empty slots do not make PSI infinite


def _rows(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.asarray(np.where(mask, values, 0.0).sum(axis=1))


def _column_stats(col: ColumnReference, ref: np.ndarray, cur: np.ndarray) -> dict[str, np.ndarray]:
    """Every statistic ``drift_from_counts`` reports, for each window (row) of ``cur``."""
    nr, nc = int(ref.sum()), cur.sum(axis=1)
    used = (ref[None, :] + cur) > 0
    r = np.where(used, ref + _PSEUDO, 0.0)
    c = np.where(used, cur + _PSEUDO, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = r / r.sum(axis=1, keepdims=True)
        q = c / c.sum(axis=1, keepdims=True)
        m = (p + q) / 2.0
        psi = _rows((q - p) * np.log(q / p), used)
        jsd = 0.5 * _rows(p * np.log(p / m), used) + 0.5 * _rows(q * np.log(q / m), used)
        gap = np.abs(ref.cumsum() / max(nr, 1) - cur.cumsum(axis=1) / np.maximum(nc, 1)[:, None])
        ks = np.where((nr == 0) | (nc == 0), 0.0, gap.max(axis=1))
        # a slot left out (unused) is empty in both, so the used sums are the totals
        ref_used, cur_used = np.full(len(cur), float(nr)), nc.astype(np.float64)
        total = (ref_used + cur_used)[:, None]
        column_sums = ref[None, :] + cur
        e0 = ref_used[:, None] * column_sums / total
        e1 = cur_used[:, None] * column_sums / total
        chi = _rows((ref[None, :] - e0) ** 2 / e0, used) + _rows((cur - e1) ** 2 / e1, used)
    slots = used.sum(axis=1)
    chi2_p = np.where(
        (slots < 2) | (ref_used == 0) | (cur_used == 0),
        1.0,
        special.chdtrc(np.maximum(slots - 1, 1), np.nan_to_num(chi)),
    )
    out = {
        "psi": psi,
        "js_distance": np.sqrt(np.maximum(jsd, 0.0)),
        "missing_share": np.where(nc > 0, cur[:, -1] / np.maximum(nc, 1), 0.0),
        "chi2_p_value": chi2_p,
        "ks": ks,
        "dof": np.maximum(slots - 1, 1).astype(np.float64),
        "inv_n": 1.0 / max(nr, 1) + 1.0 / np.maximum(nc, 1),
    }
    if col.kind == "numeric":
        out["wasserstein"] = _wasserstein(col, ref, cur)
    return out


def _wasserstein(col: ColumnReference, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    r, c = ref[:-1], cur[:, :-1]  # the missing slot has no position
    nr, nc = r.sum(), c.sum(axis=1)
    if nr == 0 or r.size < 2:
        return np.zeros(len(cur))
    pos = col.positions
    gaps = pos[1:] - pos[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        cdf = np.abs(r.cumsum()[:-1] / nr - c.cumsum(axis=1)[:, :-1] / nc[:, None])
    dist = np.where(nc == 0, 0.0, (np.nan_to_num(cdf) * gaps).sum(axis=1))
    scale = col.std
    if not scale or not np.isfinite(scale) or scale <= 0:
        scale = float(pos[-1] - pos[0]) / 4.0 or 1.0
    return np.asarray(dist / scale)


def _p_values(name: str, effect: np.ndarray, stats: Mapping[str, np.ndarray]) -> np.ndarray:
    if name == "ks":
        return np.asarray(special.kolmogorov(effect / np.sqrt(stats["inv_n"])))
    value = effect**2 * 8.0 if name == "js" else effect
    return np.asarray(special.chdtrc(stats["dof"], value / stats["inv_n"]))


def _null_quantiles(name: str, levels: np.ndarray, stats: Mapping[str, np.ndarray]) -> np.ndarray:
    if name == "ks":
        return np.asarray(special.kolmogi(levels) * np.sqrt(stats["inv_n"]))
    q = special.chdtri(stats["dof"], levels) * stats["inv_n"]
    return np.asarray(np.sqrt(q / 8.0) if name == "js" else q)


def drift_over_windows(
    reference: Reference, windows: Sequence[Mapping[str, np.ndarray]], *, alpha: float = 0.05
) -> list[DriftReport]:
    """``drift_from_counts(reference, counts)`` for each window's ``counts``."""
    if not windows:
        return []
    names = list(windows[0])
    n = len(windows)
    columns = []
    for name in names:
        col = reference[name]
        ref = np.asarray(col.counts, dtype=np.int64)
        cur = np.stack([np.asarray(w[name], dtype=np.int64) for w in windows])
        method = METHODS[_method_for(col.kind, "auto")]
        stats = _column_stats(col, ref, cur)
        effect = stats["js_distance" if method.name == "js" else method.name]
        empty = (ref.sum() == 0) | (cur.sum(axis=1) == 0)
        p = np.where(empty, 1.0, _p_values(method.name, effect, stats))
        columns.append((col, ref, cur, method, stats, effect, p, empty))
    levels = np.zeros((n, len(names)))
    rejects = np.zeros((n, len(names)), dtype=bool)
    for w in range(n):
        lv, rj = holm([float(col[6][w]) for col in columns], alpha)
        levels[w], rejects[w] = lv, rj
    per_window: list[list[ColumnDrift]] = [[] for _ in range(n)]
    for j, (col, ref, cur, method, stats, effect, p, empty) in enumerate(columns):
        null_q = np.where(empty, np.inf, _null_quantiles(method.name, levels[:, j], stats))
        threshold = np.maximum(method.min_effect, null_q)
        drifted = rejects[:, j] & (effect >= threshold)
        labels = col.slot_labels
        ref_list = ref.tolist()
        missing_ref = float(ref[-1] / ref.sum()) if ref.sum() else 0.0
        for w in range(n):
            metrics = {
                "psi": float(stats["psi"][w]),
                "js_distance": float(stats["js_distance"][w]),
                "missing_share": float(stats["missing_share"][w]),
                "missing_share_reference": missing_ref,
                "chi2_p_value": float(stats["chi2_p_value"][w]),
            }
            if col.kind == "numeric":
                metrics["ks"] = float(stats["ks"][w])
                metrics["wasserstein"] = float(stats["wasserstein"][w])
            per_window[w].append(
                ColumnDrift(
                    column=col.name,
                    kind=col.kind,
                    role=col.role,
                    method=method.name,
                    effect=float(effect[w]),
                    threshold=float(threshold[w]),
                    min_effect=method.min_effect,
                    p_value=float(p[w]),
                    level=float(levels[w, j]),
                    drifted=bool(drifted[w]),
                    n_reference=int(ref.sum()),
                    n_current=int(cur[w].sum()),
                    metrics=metrics,
                    labels=labels,
                    reference_counts=ref_list,
                    current_counts=cur[w].tolist(),
                )
            )
    return [DriftReport(columns=cols, alpha=alpha, drift_share=0.0) for cols in per_window]
