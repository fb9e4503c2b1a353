"""The compacted log in SQL tables (PostgreSQL mode): rows and checkpoint in one transaction."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from mloop.journal._columns import monitoring_table, unify_tables
from mloop.journal._live_tables import (
    monitor_feedback,
    monitor_prediction_columns,
    monitor_predictions,
    spool_checkpoints,
)
from mloop.journal._logstore import (
    FEEDBACK_COLUMNS,
    PREDICTION_COLUMNS,
    PREDICTION_SCHEMA,
    ROWS_BY_STREAM,
    Checkpoint,
    RecordsRejected,
    StoredCheckpoint,
    rows_frame,
)
from mloop.journal._spool import SpoolPosition

__all__ = ["SqlLogStore"]

log = logging.getLogger(__name__)


def _in_range(table: pa.Table, since: float, until: float) -> pa.Table:
    ts = table.column("ts")
    return table.filter(pc.and_(pc.greater_equal(ts, since), pc.less(ts, until)))


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _column_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ``monitor_prediction_columns`` row per model of a compacted batch."""
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(str(row["model"]), []).append(row)
    out = []
    for model, group in by_model.items():
        try:
            table = monitoring_table(pa.Table.from_pylist(list(group), schema=PREDICTION_SCHEMA))
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            # the rows are stored all the same; reads over them decode their JSON instead
            log.warning("no monitoring table for %d rows of %s: %s", len(group), model, exc)
            continue
        ts = [float(r["ts"]) for r in group]
        out.append(
            {
                "model": model,
                "ts_min": min(ts),
                "ts_max": max(ts),
                "rows": len(group),
                "data": _parquet(table),
            }
        )
    return out


class SqlLogStore:
    """Compacted log in ``monitor_predictions`` / ``monitor_feedback`` (PostgreSQL mode)."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine

    @staticmethod
    def _key(writer: Path) -> str:
        return f"{socket.gethostname()}:{writer.resolve()}"

    def load_checkpoint(self, stream: str, writer: Path) -> Checkpoint:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(spool_checkpoints.c.segment, spool_checkpoints.c.offset).where(
                    spool_checkpoints.c.stream == stream,
                    spool_checkpoints.c.writer == self._key(writer),
                )
            ).first()
        return StoredCheckpoint(
            SpoolPosition(0, 0) if row is None else SpoolPosition(row[0], row[1]), None
        )

    def _set(self, conn: sa.Connection, stream: str, writer: Path, pos: SpoolPosition) -> None:
        key = self._key(writer)
        updated = conn.execute(
            spool_checkpoints.update()
            .where(spool_checkpoints.c.stream == stream, spool_checkpoints.c.writer == key)
            .values(segment=pos.segment, offset=pos.offset)
        )
        if updated.rowcount == 0:
            conn.execute(
                spool_checkpoints.insert().values(
                    stream=stream, writer=key, segment=pos.segment, offset=pos.offset
                )
            )

    def advance(self, stream: str, writer: Path, position: SpoolPosition) -> None:
        with self.engine.begin() as conn:
            self._set(conn, stream, writer, position)

    def commit(
        self,
        stream: str,
        writer: Path,
        records: Sequence[Mapping[str, Any]],
        start: SpoolPosition,
        end: int,
    ) -> None:
        try:
            rows = [row for record in records for row in ROWS_BY_STREAM[stream](record)]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise RecordsRejected(f"{type(exc).__name__}: {exc}") from exc
        table = monitor_predictions if stream == "predictions" else monitor_feedback
        try:
            columns = _column_rows(rows) if stream == "predictions" else []
            with self.engine.begin() as conn:
                if rows:
                    conn.execute(table.insert(), rows)
                if columns:
                    conn.execute(monitor_prediction_columns.insert(), columns)
                self._set(conn, stream, writer, SpoolPosition(start.segment, end))
        except (sa.exc.DataError, sa.exc.IntegrityError) as exc:
            # The transaction rolled back: nothing of the batch is stored.
            raise RecordsRejected(str(exc.orig)) from exc
        except sa.exc.StatementError as exc:
            if isinstance(exc, sa.exc.DBAPIError):
                raise  # the server is unreachable or broken: retry the batch later
            raise RecordsRejected(str(exc.orig)) from exc  # a value the driver cannot send

    def predictions(self, model: str | None, since: float, until: float) -> pd.DataFrame:
        t = monitor_predictions
        query = sa.select(*[t.c[c] for c in PREDICTION_COLUMNS]).where(
            t.c.ts >= since, t.c.ts < until
        )
        if model is not None:
            query = query.where(t.c.model == model)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query.order_by(t.c.ts))]
        return rows_frame(rows, PREDICTION_COLUMNS)

    def monitoring_rows(self, model: str, since: float, until: float) -> pa.Table | None:
        t, c = monitor_predictions, monitor_prediction_columns
        with self.engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.model == model, t.c.ts >= since, t.c.ts < until)
            ).scalar_one()
            if not count:
                return None
            blobs = conn.execute(
                sa.select(c.c.data).where(
                    c.c.model == model, c.c.ts_max >= since, c.c.ts_min < until
                )
            ).scalars()
            parts = [_in_range(pq.read_table(io.BytesIO(b)), since, until) for b in blobs]
        table = unify_tables(parts)
        if table is None or table.num_rows != count:
            # rows stored before monitoring tables were kept (or pruned out of one): the
            # exact, slower way, from the rows themselves
            rows = self.predictions(model, since, until)
            stored = pa.Table.from_pandas(rows, schema=PREDICTION_SCHEMA, preserve_index=False)
            return monitoring_table(stored)
        ts = table.column("ts").to_numpy()
        if ts.size > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
            table = table.sort_by("ts")
        return table

    def find(
        self, request_ids: set[str], entity_keys: set[str], since: float, until: float
    ) -> tuple[set[str], set[str]]:
        t = monitor_predictions
        found: dict[str, set[str]] = {"request_id": set(), "entity_key": set()}
        with self.engine.connect() as conn:
            for column, values in (("request_id", request_ids), ("entity_key", entity_keys)):
                ordered = sorted(values)
                for i in range(0, len(ordered), 1000):
                    query = sa.select(t.c[column]).where(
                        t.c[column].in_(ordered[i : i + 1000]), t.c.ts >= since, t.c.ts < until
                    )
                    found[column].update(r[0] for r in conn.execute(query))
        return found["request_id"], found["entity_key"]

    def prune(self, before: float) -> int:
        with self.engine.begin() as conn:
            a = conn.execute(monitor_predictions.delete().where(monitor_predictions.c.ts < before))
            # a batch's monitoring table goes with its last row; one that straddles the
            # cut no longer matches its rows, and reads over it fall back to the rows
            c = monitor_prediction_columns
            conn.execute(c.delete().where(c.c.ts_max < before))
            b = conn.execute(monitor_feedback.delete().where(monitor_feedback.c.ts < before))
        return int(a.rowcount or 0) + int(b.rowcount or 0)

    def feedback(self, since: float) -> pd.DataFrame:
        t = monitor_feedback
        query = sa.select(*[t.c[c] for c in FEEDBACK_COLUMNS]).where(t.c.ts >= since)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query.order_by(t.c.id))]
        return rows_frame(rows, FEEDBACK_COLUMNS)
