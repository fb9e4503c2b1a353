"""The compacted log in SQL tables (PostgreSQL mode): rows and checkpoint in one transaction."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from mloop.journal._columns import monitoring_table
from mloop.journal._live_tables import monitor_feedback, monitor_predictions, spool_checkpoints
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
            with self.engine.begin() as conn:
                if rows:
                    conn.execute(table.insert(), rows)
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
        rows = self.predictions(model, since, until)  # ordered by ts
        if rows.empty:
            return None
        return monitoring_table(
            pa.Table.from_pandas(rows, schema=PREDICTION_SCHEMA, preserve_index=False)
        )

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
            b = conn.execute(monitor_feedback.delete().where(monitor_feedback.c.ts < before))
        return int(a.rowcount or 0) + int(b.rowcount or 0)

    def feedback(self, since: float) -> pd.DataFrame:
        t = monitor_feedback
        query = sa.select(*[t.c[c] for c in FEEDBACK_COLUMNS]).where(t.c.ts >= since)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query.order_by(t.c.id))]
        return rows_frame(rows, FEEDBACK_COLUMNS)
