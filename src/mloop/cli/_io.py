"""Reading and writing tables for ``mloop predict`` and imports: CSV, Parquet, JSON lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.errors import InvalidInput

__all__ = ["TableWriter", "count_rows", "read_chunks"]

_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}


def _format(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"Cannot tell the format of {path}: use a .csv, .parquet or .jsonl file."
        )
    return fmt


def count_rows(path: Path) -> int | None:
    """Row count when it is cheap to know (Parquet metadata, line count otherwise)."""
    if not path.is_file():
        raise InvalidInput(f"Input file {path} does not exist.")
    fmt = _format(path)
    if fmt == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    with open(path, "rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return max(0, lines - 1) if fmt == "csv" else lines


def read_chunks(
    path: Path, rows: int, dtype: dict[str, type] | None = None
) -> Iterator[pd.DataFrame]:
    """Yield ``path`` as frames of at most ``rows`` rows (``dtype`` pins CSV columns)."""
    if not path.is_file():
        raise InvalidInput(f"Input file {path} does not exist.")
    fmt = _format(path)
    try:
        if fmt == "parquet":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                yield batch.to_pandas()
        elif fmt == "csv":
            yield from pd.read_csv(path, chunksize=rows, dtype=dtype)
        else:
            yield from pd.read_json(path, lines=True, chunksize=rows)
    except (ValueError, pd.errors.ParserError, pa.ArrowInvalid) as exc:
        raise InvalidInput(f"Could not read {path} as {fmt}: {exc}") from exc


class TableWriter:
    """Appends frames to one output file in the format its suffix names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._format = _format(path)
        self._parquet: pq.ParquetWriter | None = None
        self._first = True
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame``."""
        if self._format == "parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        elif self._format == "csv":
            frame.to_csv(
                self.path, mode="w" if self._first else "a", header=self._first, index=False
            )
        else:
            with open(self.path, "w" if self._first else "a") as fh:
                frame.to_json(fh, orient="records", lines=True)
        self._first = False

    def close(self) -> None:
        """Finish the file."""
        if self._parquet is not None:
            self._parquet.close()
        elif self._first:
            self.path.write_text("")
