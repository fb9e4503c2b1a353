"""Synthetic monitoring data shared by every benchmark worker (numpy + pandas only).

25 columns: ``x0..x19`` standard normal, ``c0..c4`` five categories at 20% each.
Columns are generated one at a time so the generator's own peak memory stays small.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CATS = np.array(["alpha", "beta", "gamma", "delta", "epsilon"], dtype=object)
NUMERIC = [f"x{i}" for i in range(20)]
CATEGORICAL = [f"c{j}" for j in range(5)]

# the shifts of the detection benchmark: column -> (kind, size)
SHIFTS = {
    "x0": ("mean", 0.1),
    "x1": ("mean", 0.2),
    "x2": ("var", 1.5),
    "c0": ("share", 0.3),
}


def make_frame(
    n: int, seed: int, shifts: dict[str, tuple[str, float]] | None = None
) -> pd.DataFrame:
    """``n`` rows; ``shifts`` moves some columns (mean +d sd, variance xf, first category share p)."""
    shifts = shifts or {}
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for name in NUMERIC:
        x = rng.standard_normal(n)
        kind, size = shifts.get(name, ("", 0.0))
        if kind == "mean":
            x += size
        elif kind == "var":
            x *= np.sqrt(size)
        data[name] = x
    for name in CATEGORICAL:
        kind, size = shifts.get(name, ("", 0.0))
        p = np.full(5, 0.2)
        if kind == "share":
            p = np.r_[size, np.full(4, (1 - size) / 4)]
        codes = rng.choice(5, size=n, p=p)
        data[name] = CATS[codes]
    return pd.DataFrame(data)
