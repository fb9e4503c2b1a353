"""How fast a model answers one row and a batch of 64, through the path serving uses."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from mloop.contracts import Schema
from mloop.flavors import ArrayModel, Model, Predictions

__all__ = ["BATCH", "Speed", "measure_speed", "serve_predict"]

BATCH = 64


@dataclass(frozen=True)
class Speed:
    """Median milliseconds per call for one row and for a batch of ``BATCH`` rows."""

    one_row_ms: float
    batch_ms: float
    batch_rows: int = BATCH

    @property
    def batch_rows_per_s(self) -> float:
        """Rows per second when predicting in batches."""
        return self.batch_rows / (max(self.batch_ms, 1e-9) / 1000.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "batch_rows_per_s": self.batch_rows_per_s}


def serve_predict(model: Model, schema: Schema, rows: pd.DataFrame) -> Predictions:
    """Validate ``rows`` and predict them as serving does (the array path when it can)."""
    if schema.all_numeric and isinstance(model, ArrayModel):
        matrix, _ = schema.coerce_matrix(rows)
        return model.predict_array(matrix)
    frame, _ = schema.coerce(rows)
    return model.predict(frame)


def measure_speed(
    model: Model,
    schema: Schema,
    rows: pd.DataFrame,
    *,
    calls: int = 200,
    clock: Callable[[], float] = time.perf_counter,
) -> Speed:
    """Median latency over ``calls`` one-row calls and ``calls // 4`` batches of 64.

    Rows are validated once up front, so only the model's predict is timed, with
    OpenMP/BLAS held to one thread as in serving workers (``serving._server``).
    """
    from threadpoolctl import threadpool_limits

    if 0 < len(rows) < BATCH:
        rows = pd.concat([rows] * (BATCH // len(rows) + 1), ignore_index=True)
    frame, _ = schema.coerce(rows)
    array = schema.all_numeric and isinstance(model, ArrayModel)
    data: Any = schema.coerce_matrix(rows)[0] if array else frame
    predict: Callable[[Any], Predictions] = (
        model.predict_array if array else model.predict  # type: ignore[attr-defined]
    )
    n = len(rows)
    one = [data[i % n : i % n + 1] for i in range(calls)]
    batches = [_rows(data, (i * BATCH) % max(1, n - BATCH), BATCH) for i in range(calls // 4)]
    with threadpool_limits(limits=1):
        predict(one[0])  # warm-up: first-call allocations are not what serving pays
        predict(batches[0])
        return Speed(
            one_row_ms=_median_ms(predict, one, clock),
            batch_ms=_median_ms(predict, batches, clock),
        )


def _rows(data: Any, start: int, size: int) -> Any:
    return data[start : start + size]


def _median_ms(
    predict: Callable[[Any], Any], inputs: list[Any], clock: Callable[[], float]
) -> float:
    times = []
    for item in inputs:
        started = clock()
        predict(item)
        times.append((clock() - started) * 1000.0)
    return statistics.median(times)
