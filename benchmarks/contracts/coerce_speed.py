"""Time Schema.coerce on serving-sized inputs (1 and 64 rows, 20 columns).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/contracts/coerce_speed.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from mloop.contracts import infer_schema


def per_call_us(fn: Callable[[], object], repeat: int = 2000) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    data = {f"x{i}": rng.normal(size=n) for i in range(15)}
    data.update({f"c{i}": rng.choice(["red", "green", "blue", "grey"], size=n) for i in range(5)})
    train = pd.DataFrame(data)
    schema = infer_schema(train)
    records = train.head(64).to_dict("records")
    one = records[:1]
    columns = {k: [r[k] for r in records] for k in records[0]}
    numeric = infer_schema(train[[f"x{i}" for i in range(15)]])
    num_one = [{k: v for k, v in one[0].items() if k.startswith("x")}]
    rows = [
        ("1 record, 15 float + 5 category (str dtype)", lambda: schema.coerce(one)),
        ("64 records, same", lambda: schema.coerce(records)),
        ("64 rows as dict of lists", lambda: schema.coerce(columns)),
        ("1 record, 15 float only", lambda: numeric.coerce(num_one)),
        ("1 row DataFrame", lambda: schema.coerce(train.head(1))),
        ("pd.DataFrame(records) for comparison, 1 record", lambda: pd.DataFrame(one)),
    ]
    for label, fn in rows:
        print(f"{label:50s} {per_call_us(fn, 500 if 'DataFrame' in label else 2000):8.1f} us")


if __name__ == "__main__":
    main()
