"""Batch scoring of Parquet partitions, in this process or on Ray with one model load per worker."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mloop.batch._source import parquet_paths

if TYPE_CHECKING:
    from mloop.config import Settings
    from mloop.types import Predictions

__all__ = ["predictions_frame", "score_partitions"]

Progress = Callable[[int], None]

# Actors reserve a nominal share of a CPU: the pool size bounds them, and Ray Data's
# read tasks always find a CPU. Reserving whole CPUs starved the reads and the pipeline
# waited for ever (two one-CPU scorers on two CPUs; a finished stage's actors holding
# theirs). Ray reads 0 as "unset" (one CPU), hence not zero.
ACTOR_CPUS = 0.01


def predictions_frame(predictions: Predictions) -> pd.DataFrame:
    """``label`` and one ``proba_<class>`` column per class, or ``prediction`` for regressors."""
    if predictions.task == "regression":
        return pd.DataFrame({"prediction": predictions.values})
    frame = pd.DataFrame({"label": predictions.labels})
    if predictions.probabilities is not None:
        for i, cls in enumerate(predictions.classes):
            frame[f"proba_{cls}"] = predictions.probabilities[:, i]
    return frame


class _Scorer:
    """One Ray worker: loads the model once, then scores every batch it is handed."""

    def __init__(self, settings: Settings, ref: str) -> None:
        from mloop.registry import Registry

        self.predictor = Registry(settings).load(ref)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return predictions_frame(self.predictor.predict(batch))


def score_partitions(
    settings: Settings,
    ref: str,
    sources: str | list[str],
    output: Path,
    *,
    engine: str = "local",
    workers: int = 1,
    batch_rows: int = 10_000,
    progress: Progress | None = None,
) -> int:
    """Score every row of the Parquet ``sources`` with ``ref`` into ``output`` (a Parquet
    file), in input order; return the rows scored."""
    paths = parquet_paths(sources)
    if engine == "local":
        return _score_local(settings, ref, paths, output, batch_rows, progress)
    if engine == "ray":
        return _score_ray(settings, ref, paths, output, workers, batch_rows, progress)
    from mloop.errors import InvalidInput

    raise InvalidInput(f"Unknown engine {engine!r}; use 'local' or 'ray'.")


def _score_local(
    settings: Settings,
    ref: str,
    paths: list[str],
    output: Path,
    batch_rows: int,
    progress: Progress | None,
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    scorer = _Scorer(settings, ref)
    scored = (
        pa.Table.from_pandas(scorer(batch.to_pandas()), preserve_index=False)
        for path in paths
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
    )
    return _write(scored, output, progress)


def _score_ray(
    settings: Settings,
    ref: str,
    paths: list[str],
    output: Path,
    workers: int,
    batch_rows: int,
    progress: Progress | None,
) -> int:
    from mloop._deps import require

    ray = require("ray", "--engine ray")
    data = ray.data
    context = data.DataContext.get_current()
    context.execution_options.preserve_order = True  # output rows in input order
    context.enable_progress_bars = False
    scored = data.read_parquet(paths).map_batches(
        _Scorer,
        fn_constructor_kwargs={"settings": settings, "ref": ref},
        compute=data.ActorPoolStrategy(size=max(1, workers)),
        num_cpus=ACTOR_CPUS,
        batch_size=batch_rows,
        batch_format="pandas",
    )
    return _write(scored.iter_batches(batch_format="pyarrow", batch_size=None), output, progress)


def _write(tables: Iterable[Any], output: Path, progress: Progress | None) -> int:
    """Append scored Arrow tables to one Parquet file, in order; return the rows written."""
    import pyarrow.parquet as pq

    writer = None
    done = 0
    try:
        for table in tables:
            writer = writer or pq.ParquetWriter(output, table.schema)
            writer.write_table(table)
            done += table.num_rows
            if progress is not None:
                progress(table.num_rows)
    finally:
        if writer is not None:
            writer.close()
    return done
