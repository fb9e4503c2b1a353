"""Windows counted chunk by chunk: frame iterators, Parquet files or globs, Arrow datasets.

Part of mloop's own drift engine. A stream is never held whole: each chunk is counted
onto the reference's slots and dropped, so memory is bounded by the bins and one
chunk, not by the rows. The counts are the same ``WindowCounts`` an in-memory frame
gives (counting is addition), so streamed and in-memory results are identical and
windows from several workers merge.

Parquet files are read page by page (``ParquetFile.iter_batches`` without
pre-buffering) and categorical columns as dictionaries, so a string column is
counted from its small integer indices.
"""

from __future__ import annotations

import glob
import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mloop.errors import InvalidInput
from mloop.monitor._counting import WindowCounts
from mloop.monitor._reference import Reference

__all__ = ["Stream", "open_stream"]

# Rows per Parquet chunk: large enough that per-chunk overhead is small, small enough
# that a chunk of 25 float columns stays near 13 MB.
BATCH_ROWS = 65_536
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Stream:
    """A window's chunks, read for the columns asked, and its column names if known up front."""

    read: Callable[[list[str]], Iterator[Any]]
    columns: list[str] | None

    def count(self, reference: Reference) -> WindowCounts:
        """Count every chunk onto ``reference``'s slots, one chunk in memory at a time."""
        if self.columns is not None:
            present = set(self.columns)
            missing = [name for name in reference if name not in present]
            if missing:
                raise InvalidInput(
                    f"The window lacks reference column(s) {missing}; pass them or choose "
                    "columns=... to monitor a subset."
                )
        window = WindowCounts(reference)
        for chunk in self.read(list(reference)):
            window.update(chunk)
        return window


def open_stream(
    source: object, *, categorical: Sequence[str] = (), batch_rows: int = BATCH_ROWS
) -> Stream:
    """A ``Stream`` over a Parquet path or glob, an Arrow dataset or table, or frames.

    ``categorical`` names the columns to read as dictionaries from Parquet.
    """
    if isinstance(source, str | os.PathLike):
        return _parquet_stream(source, categorical, batch_rows)
    if _is_arrow(source):
        import pyarrow as pa
        import pyarrow.dataset as ds

        if isinstance(source, ds.Dataset):
            return _dataset_stream(source, batch_rows)
        if isinstance(source, pa.Table | pa.RecordBatch):
            whole = source
            return Stream(lambda _: iter([whole]), list(whole.schema.names))
        if isinstance(source, pa.RecordBatchReader):
            reader = source
            return Stream(lambda _: iter(reader), list(reader.schema.names))
    if isinstance(source, Iterable) and not isinstance(source, str | bytes):
        return _iterator_stream(iter(source))
    raise InvalidInput(
        f"current must be a DataFrame, WindowCounts, an iterable of DataFrames, a Parquet "
        f"path or glob, or a pyarrow Dataset/Table; got {type(source).__name__}."
    )


def _iterator_stream(chunks: Iterator[Any]) -> Stream:
    first = next(chunks, None)
    if first is None:
        raise InvalidInput("current is an empty iterable: there are no rows to compare.")
    if isinstance(first, pd.DataFrame):
        columns: list[str] | None = [str(c) for c in first.columns]
    elif _is_arrow(first) and hasattr(first, "schema"):
        columns = list(first.schema.names)
    else:
        raise InvalidInput(
            "current is an iterable, so each item must be a pandas DataFrame or a pyarrow "
            f"Table/RecordBatch; the first item is a {type(first).__name__}."
        )
    return Stream(lambda _: itertools.chain([first], chunks), columns)


def _parquet_stream(
    source: str | os.PathLike[str], categorical: Sequence[str], rows: int
) -> Stream:
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = _parquet_paths(source)
    try:
        files = [pq.ParquetFile(p) for p in paths]
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"Cannot read {os.fspath(source)!r} as Parquet: {exc}") from exc
    names = list(files[0].schema_arrow.names) if files else []
    for path, f in zip(paths, files, strict=True):
        if list(f.schema_arrow.names) != names:
            raise InvalidInput(
                f"{path!r} has columns {list(f.schema_arrow.names)}, unlike {paths[0]!r} "
                f"({names}); a window's files must share one schema."
            )

    def read(columns: list[str]) -> Iterator[Any]:
        for path in paths:
            # Page by page without pre-buffering: pyarrow's dataset scanner buffers whole
            # row groups (1M rows by default) and held ~650 MB for a 25-column file.
            f = pq.ParquetFile(
                path,
                read_dictionary=[c for c in categorical if c in columns],
                pre_buffer=False,
                buffer_size=1 << 20,
            )
            yield from f.iter_batches(batch_size=rows, columns=columns)

    return Stream(lambda columns: read_ahead(read(columns)), names)


def _parquet_paths(source: str | os.PathLike[str]) -> list[str]:
    text = os.fspath(source)
    if _GLOB_CHARS & set(text):
        found = sorted(glob.glob(text, recursive=True))
        if not found:
            raise InvalidInput(f"No Parquet file matches {text!r}; check the path or glob.")
        return found
    path = Path(text)
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*.parquet"))
        if not found:
            raise InvalidInput(f"The folder {text!r} holds no *.parquet file.")
        return found
    if not path.exists():
        raise InvalidInput(f"No Parquet file or folder at {text!r}; check the path.")
    return [text]


def _dataset_stream(dataset: Any, batch_rows: int) -> Stream:
    import pyarrow.dataset as ds

    def read(columns: list[str]) -> Iterator[Any]:
        options: dict[str, Any] = {}
        if isinstance(dataset.format, ds.ParquetFileFormat):
            options["fragment_scan_options"] = ds.ParquetFragmentScanOptions(
                pre_buffer=False, use_buffered_stream=True
            )
        scanner = dataset.scanner(
            columns=columns,  # only what the reference needs is decoded
            batch_size=batch_rows,
            batch_readahead=1,
            fragment_readahead=1,
            **options,
        )
        yield from read_ahead(scanner.to_batches())

    return Stream(read, list(dataset.schema.names))


def _is_arrow(source: object) -> bool:
    return type(source).__module__.startswith("pyarrow")


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


def read_ahead(chunks: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Yield ``chunks`` while a thread decodes the next ones: Parquet decoding releases
    the GIL, so reading overlaps counting. At most ``depth`` chunks wait in between."""
    waiting: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: Any) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not hand_over(chunk):
                    return
            hand_over(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(_Failed(exc))

    reader = threading.Thread(target=produce, name="mloop-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = waiting.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()  # a consumer that stops early releases the reader
