"""Drift counts over Parquet partitions: each partition counted into the reference's bins, then merged.

Counts add up exactly, so a month of log partitions or a frame too large for one
process gives the very counts (and so the very drift report) one process would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop.batch._source import parquet_paths
from mloop.monitor import Reference, WindowCounts, as_reference

if TYPE_CHECKING:
    from mloop.contracts import Profile

__all__ = ["partition_counts"]


def _count_partition(reference: Reference, path: str, rows: int) -> WindowCounts:
    """The counts of one Parquet partition (any fsspec path), read ``rows`` at a time."""
    import fsspec
    import pyarrow.parquet as pq

    total = WindowCounts(reference)
    with fsspec.open(path, "rb") as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=rows, columns=list(reference)):
            total = total.merge(WindowCounts(reference).update(batch.to_pandas()))
    return total


def _count_partition_json(profile: dict[str, Any], columns: list[str], path: str, rows: int) -> str:
    """``_count_partition`` in a Ray worker: the profile in, the counts out, as JSON."""
    import orjson

    from mloop.contracts import Profile

    reference = as_reference(Profile.from_dict(profile)).select(columns)
    counts = _count_partition(reference, path, rows).to_dict()
    return orjson.dumps(counts, option=orjson.OPT_SERIALIZE_NUMPY).decode()


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
    cluster has CPUs (one task a partition: tasks queue for CPUs and never wait on each
    other, unlike an actor pool beside Ray Data's read tasks), and merges the counts here.
    """
    paths = parquet_paths(sources)
    columns = list(columns or profile.features)
    reference = as_reference(profile).select(columns)
    total = WindowCounts(reference)
    if engine == "local":
        for path in paths:
            total = total.merge(_count_partition(reference, path, batch_rows))
        return total
    if engine != "ray":
        from mloop.errors import InvalidInput

        raise InvalidInput(f"Unknown engine {engine!r}; use 'local' or 'ray'.")
    import orjson

    from mloop._deps import require

    ray = require("ray", "engine='ray'")
    count = ray.remote(_count_partition_json)
    shipped = profile.to_dict()
    pending = [count.remote(shipped, columns, path, batch_rows) for path in paths]
    for counts in ray.get(pending):
        total = total.merge(WindowCounts.from_dict(reference, orjson.loads(counts)))
    return total
