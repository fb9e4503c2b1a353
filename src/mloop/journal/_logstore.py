"""Where compacted log records live: Parquet partitions by model/day, or SQL tables.

Both stores commit a range of spool frames together with the checkpoint that says
"up to here is stored", so each frame lands exactly once:

* SQL (PostgreSQL when ``database_url`` is postgresql): rows and checkpoint in one
  transaction.
* Parquet: the checkpoint file first records the *intent* (the exact frame range),
  then files with names derived from the range are written atomically, then the
  checkpoint advances. A crash in between redoes the same range into the same file
  names, which replaces rather than duplicates.

A store that refuses records for what they hold (not for being unavailable) raises
``RecordsRejected`` before anything of the range is stored, so the compactor can
split the range, find the records it refuses and quarantine only those.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mloop.journal._columns import monitoring_table, unify_tables
from mloop.journal._spool import SpoolPosition

__all__ = [
    "FEEDBACK_COLUMNS",
    "PREDICTION_COLUMNS",
    "PREDICTION_SCHEMA",
    "ROWS_BY_STREAM",
    "Checkpoint",
    "LogStore",
    "ParquetLogStore",
    "RecordsRejected",
    "StoredCheckpoint",
    "feedback_rows",
    "prediction_rows",
    "rows_frame",
]

log = logging.getLogger(__name__)

PREDICTION_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("ts", pa.float64()),
        ("model", pa.string()),
        ("version", pa.int64()),
        ("inputs", pa.string()),
        ("outputs", pa.string()),
        ("prediction", pa.string()),
        ("value", pa.float64()),
        ("score", pa.float64()),
        ("latency_ms", pa.float64()),
        ("entity_key", pa.string()),
    ]
)
_FEEDBACK_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("entity_key", pa.string()),
        ("label", pa.string()),
        ("ts", pa.float64()),
        ("model", pa.string()),
    ]
)
PREDICTION_COLUMNS = tuple(PREDICTION_SCHEMA.names)
FEEDBACK_COLUMNS = tuple(_FEEDBACK_SCHEMA.names)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def prediction_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One stored row per predicted row of a serving record."""
    inputs = record.get("inputs") or []
    outputs = record.get("outputs") or []
    keys = record.get("entity_keys") or [None] * len(inputs)
    rows = []
    for i, (inp, out) in enumerate(zip(inputs, outputs, strict=False)):
        label = out.get("label") if isinstance(out, Mapping) else None
        value = out.get("value") if isinstance(out, Mapping) else None
        probs = out.get("probabilities") if isinstance(out, Mapping) else None
        rows.append(
            {
                "request_id": str(record["request_id"]),
                "row": i,
                "ts": float(record.get("ts") or 0.0),
                "model": str(record["model"]),
                "version": int(record["version"]),
                "inputs": _json(inp),
                "outputs": _json(out),
                "prediction": None if label is None else str(label),
                "value": None if value is None else float(value),
                "score": float(max(probs.values())) if probs else None,
                "latency_ms": record.get("latency_ms"),
                "entity_key": None if i >= len(keys) or keys[i] is None else str(keys[i]),
            }
        )
    return rows


def feedback_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stored row of one feedback record."""
    row = record.get("row")
    return [
        {
            "request_id": None if record.get("request_id") is None else str(record["request_id"]),
            "row": None if row is None else int(row),
            "entity_key": None if record.get("entity_key") is None else str(record["entity_key"]),
            "label": _json(record.get("label")),
            "ts": float(record.get("ts") or 0.0),
            "model": None if record.get("model") is None else str(record["model"]),
        }
    ]


ROWS_BY_STREAM = {"predictions": prediction_rows, "feedback": feedback_rows}


class RecordsRejected(Exception):
    """The store refused a batch for its content (a value its columns cannot hold).

    Raised before anything of the batch is stored. Any other exception means the
    store could not be reached or written: the batch stays in the spool and is retried.
    """


class Checkpoint(Protocol):
    """Committed position of one spool writer folder, plus an unfinished range if any."""

    position: SpoolPosition
    pending: tuple[SpoolPosition, int] | None  # (start, end offset in the same segment)


class StoredCheckpoint:
    """A ``Checkpoint`` value."""

    def __init__(self, position: SpoolPosition, pending: tuple[SpoolPosition, int] | None):
        self.position = position
        self.pending = pending


class LogStore(Protocol):
    """A durable home for compacted predictions and feedback."""

    def load_checkpoint(self, stream: str, writer: Path) -> Checkpoint:
        """Where compaction of ``writer`` stands."""
        ...

    def commit(
        self,
        stream: str,
        writer: Path,
        records: Sequence[Mapping[str, Any]],
        start: SpoolPosition,
        end: int,
    ) -> None:
        """Store ``records`` (frames ``start``..``end``) and move the checkpoint, exactly once.

        Raises ``RecordsRejected`` (storing nothing) when a record cannot be held.
        """
        ...

    def advance(self, stream: str, writer: Path, position: SpoolPosition) -> None:
        """Move the checkpoint without storing anything (to the next segment)."""
        ...

    def predictions(self, model: str | None, since: float, until: float) -> pd.DataFrame:
        """Stored prediction rows of ``model`` with ``since <= ts < until``."""
        ...

    def monitoring_rows(self, model: str, since: float, until: float) -> pa.Table | None:
        """``model``'s prediction rows with ``since <= ts < until`` as one monitoring table
        (one column per input feature and class probability; see ``_columns``), sorted
        by ts; None when there are none."""
        ...

    def feedback(self, since: float) -> pd.DataFrame:
        """Stored feedback rows that arrived at ``ts >= since``."""
        ...

    def find(
        self, request_ids: set[str], entity_keys: set[str], since: float, until: float
    ) -> tuple[set[str], set[str]]:
        """Which of ``request_ids`` / ``entity_keys`` were logged in ``[since, until)``."""
        ...

    def prune(self, before: float) -> int:
        """Delete predictions and feedback older than ``before``; return units removed."""
        ...


def rows_frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A frame of ``rows`` with exactly ``columns`` (also when there are no rows)."""
    return pd.DataFrame(rows, columns=list(columns))


# --- Parquet -------------------------------------------------------------------------


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _day_folders(base: Path, since: float, until: float) -> list[Path]:
    first, last = _day(max(since, 0.0)), _day(max(min(until, 4e9), 0.0))
    return sorted(
        p for p in base.glob("date=*") if p.is_dir() and first <= p.name[len("date=") :] <= last
    )


def _writer_tag(writer: Path) -> str:
    digest = hashlib.sha256(f"{socket.gethostname()}:{writer.resolve()}".encode()).hexdigest()
    return f"{writer.name}{digest[:8]}"


class ParquetLogStore:
    """Compacted log as ``<home>/predictions/model=<m>/date=<d>/part-*.parquet``."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    def _cp_path(self, writer: Path) -> Path:
        return writer / "CHECKPOINT.json"

    def load_checkpoint(self, stream: str, writer: Path) -> Checkpoint:
        path = self._cp_path(writer)
        if not path.exists():
            return StoredCheckpoint(SpoolPosition(0, 0), None)
        data = json.loads(path.read_text())
        pending = data.get("pending")
        return StoredCheckpoint(
            SpoolPosition(data["segment"], data["offset"]),
            None
            if not pending
            else (SpoolPosition(pending["segment"], pending["start"]), pending["end"]),
        )

    def _save(
        self, writer: Path, position: SpoolPosition, pending: tuple[SpoolPosition, int] | None
    ) -> None:
        body: dict[str, Any] = {
            "segment": position.segment,
            "offset": position.offset,
            "pending": None,
        }
        if pending is not None:
            body["pending"] = {
                "segment": pending[0].segment,
                "start": pending[0].offset,
                "end": pending[1],
            }
        _atomic_write(self._cp_path(writer), json.dumps(body).encode())

    def advance(self, stream: str, writer: Path, position: SpoolPosition) -> None:
        self._save(writer, position, None)

    def commit(
        self,
        stream: str,
        writer: Path,
        records: Sequence[Mapping[str, Any]],
        start: SpoolPosition,
        end: int,
    ) -> None:
        self._save(writer, start, (start, end))
        # Every table is built before any file is written: a refused value leaves no
        # part file behind that a smaller retry of the same range would not replace.
        try:
            tables = self._tables(stream, records)
        except (pa.ArrowException, KeyError, TypeError, ValueError, OverflowError) as exc:
            raise RecordsRejected(f"{type(exc).__name__}: {exc}") from exc
        name = f"part-{_writer_tag(writer)}-{start.segment:012d}-{start.offset:012d}.parquet"
        for folder, table in tables.items():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.tmp"
            pq.write_table(table, tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, folder / name)
            if stream == "predictions":
                try:
                    _write_monitoring(folder / name, table)
                except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
                    # derived data must never hold up the log: the reader rebuilds it
                    log.warning("no monitoring table for %s yet: %s", folder / name, exc)
        self._save(writer, SpoolPosition(start.segment, end), None)

    def _tables(self, stream: str, records: Sequence[Mapping[str, Any]]) -> dict[Path, pa.Table]:
        groups: dict[Path, list[dict[str, Any]]] = {}
        for record in records:
            for row in ROWS_BY_STREAM[stream](record):
                day = _day(row["ts"])
                if stream == "predictions":
                    folder = self.home / "predictions" / f"model={row['model']}" / f"date={day}"
                else:
                    folder = self.home / "feedback" / f"date={day}"
                groups.setdefault(folder, []).append(row)
        schema = PREDICTION_SCHEMA if stream == "predictions" else _FEEDBACK_SCHEMA
        return {
            folder: pa.Table.from_pylist(group, schema=schema) for folder, group in groups.items()
        }

    def _read(self, folders: Iterable[Path], schema: pa.Schema) -> pd.DataFrame:
        files = [f for folder in folders if folder.is_dir() for f in sorted(folder.glob("part-*"))]
        if not files:
            return schema.empty_table().to_pandas()
        tables = [pq.read_table(f, schema=schema) for f in files]
        return pa.concat_tables(tables).to_pandas()

    def predictions(self, model: str | None, since: float, until: float) -> pd.DataFrame:
        base = self.home / "predictions"
        models = (
            [base / f"model={model}"]
            if model is not None
            else [p for p in base.glob("model=*") if p.is_dir()]
        )
        folders = [f for m in models for f in _day_folders(m, since, until)]
        frame = self._read(folders, PREDICTION_SCHEMA)
        return frame[(frame["ts"] >= since) & (frame["ts"] < until)].reset_index(drop=True)

    def monitoring_rows(self, model: str, since: float, until: float) -> pa.Table | None:
        folders = _day_folders(self.home / "predictions" / f"model={model}", since, until)
        tables = []
        for part in (f for folder in folders for f in sorted(folder.glob("part-*"))):
            table = _monitoring_of(part)
            ts = table.column("ts")
            bounds = pc.min_max(ts).as_py()
            if table.num_rows and not (since <= bounds["min"] and bounds["max"] < until):
                table = table.filter(pc.and_(pc.greater_equal(ts, since), pc.less(ts, until)))
            tables.append(table)
        table = unify_tables(tables)
        if table is None:
            return None
        ts = table.column("ts").to_numpy()
        if ts.size > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
            table = table.sort_by("ts")
        return table

    def find(
        self, request_ids: set[str], entity_keys: set[str], since: float, until: float
    ) -> tuple[set[str], set[str]]:
        base = self.home / "predictions"
        # Labels mostly follow recent predictions: read the newest parts first and stop as
        # soon as everything asked for is found, instead of scanning the whole lookback.
        files = sorted(
            (
                f
                for m in base.glob("model=*")
                for folder in _day_folders(m, since, until)
                for f in folder.glob("part-*")
            ),
            key=lambda f: f.stat().st_mtime,
            reverse=True,
        )
        wanted = {
            column: pa.array(sorted(values), pa.string())
            for column, values in (("request_id", request_ids), ("entity_key", entity_keys))
            if values
        }
        found: dict[str, set[str]] = {"request_id": set(), "entity_key": set()}
        for f in files:
            missing = [c for c, values in wanted.items() if len(found[c]) < len(values)]
            if not missing:
                break
            table = pq.read_table(f, columns=missing)
            for column in missing:
                col = table.column(column)
                found[column].update(
                    col.filter(pc.is_in(col, value_set=wanted[column])).to_pylist()
                )
        return found["request_id"], found["entity_key"]

    def prune(self, before: float) -> int:
        import shutil

        cutoff = _day(before)  # whole days only: a partition goes once all of it is older
        removed = 0
        bases = [*(self.home / "predictions").glob("model=*"), self.home / "feedback"]
        for base in bases:
            for folder in base.glob("date=*"):
                if folder.is_dir() and folder.name[len("date=") :] < cutoff:
                    shutil.rmtree(folder)
                    removed += 1
        return removed

    def feedback(self, since: float) -> pd.DataFrame:
        base = self.home / "feedback"
        return self._read(_day_folders(base, since, 4e9), _FEEDBACK_SCHEMA)


def _monitoring_path(part: Path) -> Path:
    return part.with_name("mon-" + part.name)


def _source_tag(part: Path) -> bytes:
    stat = part.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}".encode()


def _write_monitoring(part: Path, stored: pa.Table) -> pa.Table:
    """Write ``part``'s monitoring table beside it, tagged with the part it was built
    from; a failed write only costs the next reader a rebuild."""
    table = monitoring_table(stored)
    table = table.replace_schema_metadata({b"mloop.source": _source_tag(part)})
    target = _monitoring_path(part)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
    return table


def _monitoring_of(part: Path) -> pa.Table:
    """``part``'s monitoring table: the one beside it while it still matches the part
    (a retried compaction may rewrite a part under the same name), else rebuilt."""
    target = _monitoring_path(part)
    try:
        # the tag is in the footer: a stale table is found without reading its rows
        if (pq.read_schema(target).metadata or {}).get(b"mloop.source") == _source_tag(part):
            return pq.read_table(target, memory_map=True)
    except (OSError, pa.ArrowException):
        pass  # missing or torn: rebuilt below
    return _write_monitoring(part, pq.read_table(part, schema=PREDICTION_SCHEMA))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
