"""Drift counts over Parquet partitions: each block counted into the reference's bins, then merged.

Counts add up exactly, so a month of log partitions or a frame too large for one
process gives the very counts (and so the very drift report) one process would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop.batch._source import parquet_paths
from mloop.monitor import WindowCounts, as_reference

if TYPE_CHECKING:
    from mloop.contracts import Profile

__all__ = ["partition_counts"]


class _Counter:
    """The reference's bins for ``columns``, rebuilt from the profile's JSON in each worker."""

    def __init__(self, reference: dict[str, Any], columns: list[str]) -> None:
        from mloop.contracts import Profile

        self.reference = as_reference(Profile.from_dict(reference)).select(columns)
        self.columns = columns


def _dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def partition_counts(
    profile: Profile,
    sources: str | list[str],
    *,
    columns: list[str] | None = None,
    engine: str = "local",
    batch_rows: int = 100_000,
) -> WindowCounts:
    """The window counts of every row under ``sources``, on ``profile``'s bins.

    ``engine="ray"`` counts each partition in its own Ray task, as many at once as the
    cluster has CPUs, and merges the counts here.
    """
    import orjson

    paths = parquet_paths(sources)
    columns = list(columns or profile.features)
    counter = _Counter(profile.to_dict(), columns)
    total = WindowCounts(counter.reference)
    if engine == "local":
        for path in paths:
            total = total.merge(
                WindowCounts.from_dict(
                    counter.reference,
                    orjson.loads(_count_partition(profile.to_dict(), columns, path, batch_rows)),
                )
            )
        return total
    if engine != "ray":
        from mloop.errors import InvalidInput

        raise InvalidInput(f"Unknown engine {engine!r}; use 'local' or 'ray'.")
    from mloop._deps import require

    ray = require("ray", "engine='ray'")
    # One task per partition (each reads its own file): tasks queue for CPUs and never
    # wait on each other, unlike an actor pool beside Ray Data's read tasks.
    count = ray.remote(_count_partition)
    reference = profile.to_dict()
    pending = [count.remote(reference, columns, path, batch_rows) for path in paths]
    for counts in ray.get(pending):
        total = total.merge(WindowCounts.from_dict(counter.reference, orjson.loads(counts)))
    return total


def _count_partition(reference: dict[str, Any], columns: list[str], path: str, rows: int) -> str:
    """The counts of one Parquet partition as JSON (runs in a Ray worker)."""
    import fsspec
    import pyarrow.parquet as pq

    counter = _Counter(reference, columns)
    total = WindowCounts(counter.reference)
    with fsspec.open(path, "rb") as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=rows, columns=columns):
            total = total.merge(WindowCounts(counter.reference).update(batch.to_pandas()))
    return _dumps(total.to_dict())
