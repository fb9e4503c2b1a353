"""Streamed windows: iterators, Parquet files and globs, Arrow datasets give the in-memory result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from mloop.errors import InvalidInput
from mloop.monitor import WindowCounts, as_reference, drift


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    x[::11] = np.nan
    colours = np.array(["red", "green", "blue", "violet"], dtype=object)
    c = colours[rng.integers(0, 3 if shift == 0 else 4, n)]
    c[::13] = None
    return pd.DataFrame(
        {
            "x": x,
            "y": rng.lognormal(size=n),
            "k": rng.integers(0, 6, n),
            "c": c,
            "s": pd.Series(np.array(["a", "b"], dtype=object)[rng.integers(0, 2, n)], dtype="str"),
        }
    )


def _chunks(frame: pd.DataFrame, sizes: list[int]) -> Iterator[pd.DataFrame]:
    start = 0
    for size in sizes:
        yield frame.iloc[start : start + size]
        start += size
    yield frame.iloc[start:]


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    # large enough that columns are counted in threads and values span kernel chunks
    return _frame(30_000, 1), _frame(90_000, 2, shift=0.05)


def _same_report(a: Any, b: Any) -> None:
    assert a.to_dict() == b.to_dict()


def test_an_iterator_of_frames_gives_the_in_memory_report(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ref, cur = frames
    whole = drift(ref, cur)
    streamed = drift(ref, _chunks(cur, [1, 999, 40_000, 7]))
    _same_report(streamed, whole)
    assert whole.drifted_columns  # the comparison covers a report with verdicts in it


def test_a_parquet_file_a_glob_and_a_dataset_give_the_in_memory_report(
    frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    ref, cur = frames
    whole = drift(ref, cur)
    cur.to_parquet(tmp_path / "one.parquet", row_group_size=10_000)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, piece in enumerate(_chunks(cur, [25_000, 25_000])):
        piece.to_parquet(parts / f"part-{i}.parquet")
    _same_report(drift(ref, tmp_path / "one.parquet"), whole)
    _same_report(drift(ref, str(tmp_path / "one.parquet")), whole)
    _same_report(drift(ref, str(parts / "*.parquet")), whole)
    _same_report(drift(ref, str(parts)), whole)
    _same_report(drift(ref, ds.dataset(str(parts), format="parquet")), whole)
    _same_report(drift(ref, pa.Table.from_pandas(cur, preserve_index=False)), whole)
    table = pa.Table.from_pandas(cur, preserve_index=False)
    batches = table.to_batches(max_chunksize=7_000)
    _same_report(drift(ref, pa.RecordBatchReader.from_batches(table.schema, batches)), whole)
    _same_report(drift(ref, iter(batches)), whole)


def test_a_stored_reference_streams_like_a_frame_reference(
    frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    ref, cur = frames
    profile = as_reference(ref)
    cur.to_parquet(tmp_path / "cur.parquet", row_group_size=20_000)
    _same_report(drift(profile, tmp_path / "cur.parquet"), drift(profile, cur))


def test_streamed_counts_merge_into_the_counts_of_the_whole(
    frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    ref, cur = frames
    reference = as_reference(ref)
    cur.iloc[:50_000].to_parquet(tmp_path / "a.parquet")
    cur.iloc[50_000:].to_parquet(tmp_path / "b.parquet")
    a = drift(reference, tmp_path / "a.parquet")
    b = drift(reference, tmp_path / "b.parquet")
    whole = WindowCounts(reference).update(cur)
    for col_a, col_b in zip(a.columns, b.columns, strict=True):
        merged = np.add(col_a.current_counts, col_b.current_counts)
        assert merged.tolist() == whole.counts[col_a.column].tolist()
    _same_report(drift(reference, whole), drift(reference, str(tmp_path / "*.parquet")))


def test_a_stream_reads_one_chunk_at_a_time(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = frames
    alive: list[int] = []
    held = 0

    def chunks() -> Iterator[pd.DataFrame]:
        nonlocal held
        for piece in _chunks(cur, [10_000] * 8):
            held += 1
            alive.append(held)
            yield piece
            held -= 1

    drift(ref, chunks())
    assert max(alive) == 1


def test_a_glob_matching_nothing_is_refused_with_the_pattern(tmp_path: Path) -> None:
    ref = _frame(100, 0)
    with pytest.raises(InvalidInput, match="No Parquet file matches"):
        drift(ref, str(tmp_path / "*.parquet"))
    with pytest.raises(InvalidInput, match="No Parquet file or folder"):
        drift(ref, tmp_path / "missing.parquet")


def test_a_parquet_window_without_a_reference_column_is_refused_by_name(tmp_path: Path) -> None:
    ref = as_reference(_frame(1_000, 0))
    _frame(500, 1).drop(columns=["y"]).to_parquet(tmp_path / "w.parquet")
    with pytest.raises(InvalidInput, match="'y'"):
        drift(ref, tmp_path / "w.parquet")


def test_an_iterable_of_something_else_is_refused() -> None:
    ref = _frame(100, 0)
    with pytest.raises(InvalidInput, match="each item must be a pandas DataFrame"):
        drift(ref, [[1, 2, 3]])
    with pytest.raises(InvalidInput, match="empty iterable"):
        drift(ref, iter([]))
    with pytest.raises(InvalidInput, match="current must be"):
        drift(ref, 42)


def test_shards_counted_apart_merge_into_the_whole_window(
    frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    ref, cur = frames
    reference = as_reference(ref)
    for i, piece in enumerate(_chunks(cur, [30_000, 30_000])):
        piece.to_parquet(tmp_path / f"shard-{i}.parquet")
    shards = [WindowCounts.from_source(reference, p) for p in sorted(tmp_path.glob("*.parquet"))]
    merged = shards[0].merge(shards[1]).merge(shards[2])
    whole = WindowCounts(reference).update(cur)
    assert merged.n == whole.n == len(cur)
    assert {k: v.tolist() for k, v in merged.counts.items()} == {
        k: v.tolist() for k, v in whole.counts.items()
    }
