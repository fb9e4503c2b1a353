"""Drift counts over Parquet partitions: each block counted into the reference's bins, then merged.

Counts add up exactly, so a month of log partitions or a frame too large for one
process gives the very counts (and so the very drift report) one process would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from mloop.batch._source import parquet_paths
from mloop.monitor import WindowCounts, as_reference

if TYPE_CHECKING:
    from mloop.contracts import Profile

__all__ = ["partition_counts"]


class _Counter:
    """Counts one block of rows on the reference's bins (JSON out, so blocks travel cheaply)."""

    def __init__(self, reference: dict[str, Any], columns: list[str]) -> None:
        from mloop.contracts import Profile

        self.reference = as_reference(Profile.from_dict(reference)).select(columns)
        self.columns = columns

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        counts = WindowCounts(self.reference).update(batch.reindex(columns=self.columns))
        return pd.DataFrame({"counts": [_dumps(counts.to_dict())]})


def _dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def partition_counts(
    profile: Profile,
    sources: str | list[str],
    *,
    columns: list[str] | None = None,
    engine: str = "local",
    workers: int = 1,
    batch_rows: int = 100_000,
) -> WindowCounts:
    """The window counts of every row under ``sources``, on ``profile``'s bins."""
    import orjson
    import pyarrow.parquet as pq

    paths = parquet_paths(sources)
    columns = list(columns or profile.features)
    counter = _Counter(profile.to_dict(), columns)
    total = WindowCounts(counter.reference)
    if engine == "local":
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
                total = total.merge(WindowCounts(counter.reference).update(batch.to_pandas()))
        return total
    if engine != "ray":
        from mloop.errors import InvalidInput

        raise InvalidInput(f"Unknown engine {engine!r}; use 'local' or 'ray'.")
    from mloop._deps import require

    data = require("ray", "engine='ray'").data
    data.DataContext.get_current().enable_progress_bars = False
    blocks = (
        data.read_parquet(paths)
        .select_columns(columns)
        .map_batches(
            _Counter,
            fn_constructor_kwargs={"reference": profile.to_dict(), "columns": columns},
            compute=data.ActorPoolStrategy(size=max(1, workers)),
            num_cpus=1,
            batch_size=batch_rows,
            batch_format="pandas",
        )
    )
    for row in blocks.iter_rows():
        part = WindowCounts.from_dict(counter.reference, orjson.loads(row["counts"]))
        total = total.merge(part)
    return total
