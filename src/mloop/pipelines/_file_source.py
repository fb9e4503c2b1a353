"""Read CSV, Parquet or JSON-lines files from any fsspec URL (local, s3://, memory://) into a frame.

A glob (``s3://bucket/day=*/part-*.parquet``) reads every match in name order, so a
re-run over the same files gives the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import fsspec
import pandas as pd
import pyarrow.parquet as pq

from mloop.errors import InvalidInput

__all__ = ["FileFormat", "FileSource"]

FileFormat = Literal["csv", "parquet", "jsonl"]
_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class FileSource:
    """Files at ``url`` (a path, URL or glob); ``format`` defaults to the suffix."""

    url: str
    format: FileFormat | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    def read(self) -> pd.DataFrame:
        """Every matching file, concatenated in name order."""
        files = sorted(
            fsspec.open_files(self.url, mode="rb", **self.storage_options), key=lambda f: f.path
        )
        if not files:
            raise InvalidInput(f"No file matches {self.url!r}; check the path or pattern.")
        frames = [self._read_one(f) for f in files]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def _read_one(self, file: Any) -> pd.DataFrame:
        fmt = self.format or _SUFFIXES.get("." + str(file.path).rsplit(".", 1)[-1].lower())
        if fmt is None:
            raise InvalidInput(
                f"Cannot tell the format of {file.path}; name it .csv, .parquet or .jsonl "
                "or pass format=."
            )
        with file as handle:
            try:
                if fmt == "parquet":
                    return pq.read_table(handle).to_pandas()
                if fmt == "csv":
                    return pd.read_csv(handle)
                return pd.read_json(handle, lines=True)
            except (ValueError, OSError) as exc:
                raise InvalidInput(f"Could not read {file.path} as {fmt}: {exc}") from exc
