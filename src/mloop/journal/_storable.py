"""Can the compacted log hold this spooled record? The bounds of its columns, checked before storing.

Both log stores hold the same columns (``_live_tables``: the SQL tables are the
definition, the Parquet schema mirrors them), so a record fits one exactly when it
fits the other: text no longer than its column and without NUL characters
(PostgreSQL refuses them), 32-bit row and version numbers, a finite time between
1970 and 9999 (a day partition needs a date). A record that does not fit was
written past the door by an older version or a bug; compaction quarantines it
instead of failing on it for ever.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from mloop.journal._live_tables import monitor_feedback, monitor_predictions
from mloop.journal._logstore import ROWS_BY_STREAM

__all__ = ["LAST_EPOCH_S", "MAX_INT32", "TEXT_LIMIT", "unstorable_reason"]

LAST_EPOCH_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z: beyond it no date exists
MAX_INT32 = 2**31 - 1
TEXT_LIMIT = 200  # request ids, entity keys and model names (the SQL columns' length)

_TABLES = {"predictions": monitor_predictions, "feedback": monitor_feedback}


def _column_problem(column: sa.Column[Any], value: Any) -> str | None:
    if value is None:
        return None if column.nullable else "is missing"
    kind = column.type
    if isinstance(kind, sa.String):
        if not isinstance(value, str):
            return f"{value!r} is not text"
        if "\x00" in value:
            return "holds a NUL character"
        if kind.length is not None and len(value) > kind.length:
            return f"has {len(value)} characters (at most {kind.length})"
        return None
    if isinstance(kind, sa.Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{value!r} is not a whole number"
        return None if -MAX_INT32 - 1 <= value <= MAX_INT32 else f"{value} is beyond 32 bits"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{value!r} is not a number"
    return None


def _row_problem(table: sa.Table, row: Mapping[str, Any]) -> str | None:
    for name, value in row.items():
        problem = _column_problem(table.c[name], value)
        if problem is not None:
            return f"{name} {problem}"
    ts = row["ts"]
    if not math.isfinite(ts) or not 0.0 <= ts <= LAST_EPOCH_S:
        return f"ts {ts!r} is not an epoch time between the years 1970 and 9999"
    if row["row"] is not None and row["row"] < 0:
        return f"row {row['row']} is negative"
    return None


def unstorable_reason(stream: str, record: Any) -> str | None:
    """Why the log store cannot hold ``record`` of ``stream``, or None when it can."""
    if not isinstance(record, dict):
        return f"a {type(record).__name__}, not an object"
    # Values the row builders would quietly coerce (a row of 1.5, a ts of "soon")
    ts, row = record.get("ts"), record.get("row")
    if isinstance(ts, bool) or not isinstance(ts, int | float | None):
        return f"ts {ts!r} is not a number"
    if row is not None and (isinstance(row, bool) or not isinstance(row, int)):
        return f"row {row!r} is not a whole number"
    try:
        rows = ROWS_BY_STREAM[stream](record)
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        return f"cannot be turned into log rows: {type(exc).__name__}: {exc}"
    table = _TABLES[stream]
    for one in rows:
        problem = _row_problem(table, one)
        if problem is not None:
            return problem
    return None
