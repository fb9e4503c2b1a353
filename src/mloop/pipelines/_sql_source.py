"""Read a window of rows from a SQL table, as a pipeline's ``load``: retraining starts from ingested data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from mloop.errors import InvalidInput
from mloop.pipelines._spec import Window
from mloop.pipelines._sql_sink import sqlalchemy_url

__all__ = ["SqlTableLoader"]


@dataclass(frozen=True)
class SqlTableLoader:
    """``load(window)`` for a :class:`~mloop.pipelines.Pipeline`: rows of ``table`` in the window.

    ``time_column`` holds epoch seconds or timestamps (naive ones are read as UTC);
    ``url`` is a SQLAlchemy URL or a SQLite file path, as for ``SqlSink``.
    """

    url: str
    table: str
    time_column: str

    def __call__(self, window: Window) -> pd.DataFrame:
        """Rows with ``window.start <= time_column < window.end``, oldest first."""
        engine = sa.create_engine(sqlalchemy_url(self.url))
        try:
            if not sa.inspect(engine).has_table(self.table):
                raise InvalidInput(
                    f"Table {self.table!r} does not exist at {self.url}; run the ingest flow "
                    "that fills it first."
                )
            table = sa.Table(self.table, sa.MetaData(), autoload_with=engine)
            if self.time_column not in table.c:
                raise InvalidInput(
                    f"Table {self.table!r} has no column {self.time_column!r}; it has "
                    f"{[c.name for c in table.c]}."
                )
            ts = table.c[self.time_column]
            start, end = _bounds(ts, window)
            query = sa.select(table).where(ts >= start, ts < end).order_by(ts)
            with engine.connect() as conn:
                return pd.read_sql(query, conn)
        finally:
            engine.dispose()


def _bounds(column: sa.Column[object], window: Window) -> tuple[object, object]:
    if isinstance(column.type, sa.DateTime):
        aware = bool(getattr(column.type, "timezone", False))
        start = dt.datetime.fromtimestamp(window.start, dt.UTC)
        end = dt.datetime.fromtimestamp(window.end, dt.UTC)
        if not aware:
            return start.replace(tzinfo=None), end.replace(tzinfo=None)
        return start, end
    return window.start, window.end
