"""Write a frame into a SQL table with upserts on a key, so re-running a flow adds no duplicates.

SQLite (the default, a file URL) and PostgreSQL (by URL) both speak
``INSERT ... ON CONFLICT (key) DO UPDATE``; the table is created on first write with
the frame's columns and a unique key, and later writes add rows for new keys and
overwrite the other columns of existing ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from mloop.errors import ConfigurationError, InvalidInput

__all__ = ["SqlSink", "WriteResult", "sqlalchemy_url"]

_BATCH_ROWS = 1_000


@dataclass(frozen=True)
class WriteResult:
    """Rows written, and how many keys were new to the table."""

    rows: int
    inserted: int
    updated: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {"rows": self.rows, "inserted": self.inserted, "updated": self.updated}


@dataclass(frozen=True)
class SqlSink:
    """Table ``table`` at ``url``, upserting on the columns in ``key``.

    ``url`` is a SQLAlchemy URL (``postgresql+psycopg://...``) or, without a scheme, the
    path of a SQLite file (created when missing).
    """

    url: str
    table: str
    key: Sequence[str]
    engine_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key:
            raise ConfigurationError(
                f"SqlSink for {self.table!r} needs a key (the columns that identify a row)."
            )

    def write(self, frame: pd.DataFrame, engine: sa.Engine | None = None) -> WriteResult:
        """Upsert every row of ``frame``; rows repeating a key within ``frame`` keep the last."""
        missing = [k for k in self.key if k not in frame.columns]
        if missing:
            raise InvalidInput(
                f"Key columns {missing} are not in the data; it has {list(frame.columns)}."
            )
        frame = frame.drop_duplicates(subset=list(self.key), keep="last")
        own = engine is None
        engine = engine or sa.create_engine(self.sqlalchemy_url, **self.engine_options)
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigurationError(
                f"Upserts are written for SQLite and PostgreSQL; {self.url!r} is "
                f"{engine.dialect.name}."
            )
        try:
            table = self._table(engine, frame)
            keys = [table.c[k] for k in self.key]
            with engine.begin() as conn:
                before = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for start in range(0, len(frame), _BATCH_ROWS):
                    rows = _records(frame.iloc[start : start + _BATCH_ROWS])
                    try:
                        conn.execute(_upsert(engine.dialect.name, table, keys, rows))
                    except sa.exc.ProgrammingError as exc:
                        raise self._no_unique_key(exc) from exc
                    except sa.exc.OperationalError as exc:
                        if "ON CONFLICT" not in str(exc):
                            raise
                        raise self._no_unique_key(exc) from exc
                after = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        finally:
            if own:
                engine.dispose()
        inserted = int(after) - int(before)
        return WriteResult(rows=len(frame), inserted=inserted, updated=len(frame) - inserted)

    @property
    def sqlalchemy_url(self) -> str:
        """``url`` as SQLAlchemy takes it (a bare path becomes a SQLite URL)."""
        return sqlalchemy_url(self.url)

    def _no_unique_key(self, exc: Exception) -> ConfigurationError:
        columns = ", ".join(self.key)
        return ConfigurationError(
            f"Table {self.table!r} cannot be upserted on ({columns}): it needs a unique index "
            f"on those columns. Add one: CREATE UNIQUE INDEX ON {self.table} ({columns}); "
            f"the database said: {str(exc).splitlines()[0]}"
        )

    def _table(self, engine: sa.Engine, frame: pd.DataFrame) -> sa.Table:
        metadata = sa.MetaData()
        if sa.inspect(engine).has_table(self.table):
            table = sa.Table(self.table, metadata, autoload_with=engine)
            extra = [c for c in frame.columns if c not in table.c]
            if extra:
                raise InvalidInput(
                    f"Columns {extra} are not in table {self.table!r}; add them to the table "
                    "or drop them in the flow's transform."
                )
            return table
        columns = [
            sa.Column(str(name), _sql_type(frame[name]), nullable=name not in self.key)
            for name in frame.columns
        ]
        table = sa.Table(
            self.table,
            metadata,
            *columns,
            sa.UniqueConstraint(*self.key, name=f"uq_{self.table}_key"),
        )
        metadata.create_all(engine)
        return table


def sqlalchemy_url(url: str) -> str:
    """``url`` itself, or a SQLite URL for a bare file path."""
    if "://" in url:
        return url
    return f"sqlite:///{Path(url).expanduser().resolve()}"


def _upsert(
    dialect: str, table: sa.Table, keys: list[sa.Column[Any]], rows: list[dict[str, Any]]
) -> Any:
    insert: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).values(rows)
    names = {k.name for k in keys}
    changes = {
        c.name: statement.excluded[c.name]
        for c in table.c
        if c.name not in names and c.name in rows[0]
    }
    if not changes:
        return statement.on_conflict_do_nothing(index_elements=keys)
    return statement.on_conflict_do_update(index_elements=keys, set_=changes)


def _sql_type(series: pd.Series) -> Any:
    kind = series.dtype.kind
    if kind == "b":
        return sa.Boolean()
    if kind in "iu":
        return sa.BigInteger()
    if kind == "f":
        return sa.Float()
    if kind == "M":
        return sa.DateTime(timezone=getattr(series.dtype, "tz", None) is not None)
    return sa.Text()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values; missing cells (NaN, NaT, None, pd.NA) become NULL."""
    out = []
    for record in frame.to_dict("records"):
        out.append({str(k): _plain(v) for k, v in record.items()})
    return out


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, list | dict | tuple | np.ndarray):
        # Nested JSON the source did not flatten: stored as JSON text.
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=str)
    return value
