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


def write_parquet(path: str, rows: int, seed: int, shifts: dict[str, tuple[str, float]]) -> None:
    """``rows`` rows of ``make_frame`` written in 1M-row pieces (pyarrow's default row groups)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    piece = 1_000_000
    writer = None
    try:
        for i, start in enumerate(range(0, rows, piece)):
            frame = make_frame(min(piece, rows - start), seed * 1_000 + i, shifts)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def make_wide(
    n: int, columns: int, seed: int, shifted: bool = False
) -> tuple[pd.DataFrame, list[str]]:
    """``columns`` columns (4 numeric : 1 categorical, as in ``make_frame``); when ``shifted``,
    every 100th numeric column moves by 0.2 sd and every 50th categorical one to 30%."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    moved = []
    n_cat = columns // 5
    for i in range(columns - n_cat):
        x = rng.standard_normal(n)
        if shifted and i % 100 == 0:
            x += 0.2
            moved.append(f"x{i}")
        data[f"x{i}"] = x
    for j in range(n_cat):
        p = np.full(5, 0.2)
        if shifted and j % 50 == 0:
            p = np.r_[0.3, np.full(4, 0.7 / 4)]
            moved.append(f"c{j}")
        data[f"c{j}"] = pd.Series(CATS[rng.choice(5, size=n, p=p)], dtype="str")
    return pd.DataFrame(data), moved
