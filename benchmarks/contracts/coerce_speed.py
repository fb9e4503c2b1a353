"""Time Schema.coerce on serving-sized inputs (1 and 64 rows, 20 columns).

Baseline: what a typical model server does instead — a pydantic model per record
(strict types, enum for categories), then ``pd.DataFrame(records)``.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/contracts/coerce_speed.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from mloop.contracts import infer_schema


def per_call_us(fn: Callable[[], object], repeat: int = 2000) -> float:
    """Best of five runs, in CPU microseconds per call (steadier than wall time on a busy box)."""
    fn()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - start) / repeat)
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
    fields: dict[str, object] = {f"x{i}": (float, ...) for i in range(15)}
    fields.update({f"c{i}": (Literal["red", "green", "blue", "grey"], ...) for i in range(5)})
    Row = create_model("Row", __config__=ConfigDict(strict=True), **fields)  # type: ignore[call-overload]
    rows_adapter = TypeAdapter(list[Row])

    def pydantic_then_frame(batch: list[dict[str, object]]) -> pd.DataFrame:
        models: list[BaseModel] = rows_adapter.validate_python(batch)
        return pd.DataFrame([m.model_dump() for m in models])

    numeric_64 = [{k: v for k, v in r.items() if k.startswith("x")} for r in records]
    rows = [
        ("1 record, 15 float + 5 category (str dtype)", lambda: schema.coerce(one)),
        ("64 records, same", lambda: schema.coerce(records)),
        ("64 rows as dict of lists", lambda: schema.coerce(columns)),
        ("1 record, 15 float only", lambda: numeric.coerce(num_one)),
        ("1 row DataFrame", lambda: schema.coerce(train.head(1))),
        ("1 record, 15 float -> float matrix", lambda: numeric.coerce_matrix(num_one)),
        ("64 records, 15 float -> float matrix", lambda: numeric.coerce_matrix(numeric_64)),
        ("baseline: pydantic + pd.DataFrame, 1 record", lambda: pydantic_then_frame(one)),
        ("baseline: pydantic + pd.DataFrame, 64 records", lambda: pydantic_then_frame(records)),
        ("baseline: pd.DataFrame(records) alone, 1 record", lambda: pd.DataFrame(one)),
    ]
    for label, fn in rows:
        print(f"{label:50s} {per_call_us(fn, 300 if 'DataFrame' in label else 1000):8.1f} us")


if __name__ == "__main__":
    main()
