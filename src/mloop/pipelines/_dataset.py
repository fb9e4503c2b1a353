"""Dataset snapshots: Parquet in the artifact store, the content hash is the version."""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.store import ArtifactStore

__all__ = ["DatasetSnapshot", "load_snapshot", "snapshot"]


@dataclass(frozen=True)
class DatasetSnapshot:
    """A stored dataset: its sha256 (the version), rows and columns."""

    sha256: str
    rows: int
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"sha256": self.sha256, "rows": self.rows, "columns": list(self.columns)}


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    # Drop writer metadata that varies between library versions, so equal data gives equal
    # bytes and therefore the same version.
    table = table.replace_schema_metadata(None)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", write_statistics=False)
    return buffer.getvalue()


def snapshot(frame: pd.DataFrame, artifacts: ArtifactStore) -> DatasetSnapshot:
    """Store ``frame`` as Parquet; equal data gives the same ``sha256``."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    digest = artifacts.put_bytes(_parquet_bytes(frame))
    return DatasetSnapshot(digest, len(frame), tuple(frame.columns))


def load_snapshot(artifacts: ArtifactStore, sha256: str) -> pd.DataFrame:
    """The frame stored under ``sha256`` (the bytes are checked against the hash)."""
    with tempfile.TemporaryDirectory(prefix="mloop-dataset-") as tmp:
        path = artifacts.fetch(sha256, Path(tmp) / "data.parquet", name=f"dataset {sha256[:12]}")
        return pq.read_table(path).to_pandas()
