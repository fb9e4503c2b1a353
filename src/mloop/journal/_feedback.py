"""Feedback: delayed ground truth by request id (+ row) or entity key, and its join to predictions.

Labels are checked at the door (``_feedback_door``), then go through the same
durable spool as predictions (stream ``feedback``), so an accepted label survives a
crash. Labels may arrive before their prediction is compacted (or before it is
logged at all): they are stored regardless and joined when the monitor reads a
window; the last label for a key wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop.journal._feedback_door import MAX_FEEDBACK_ITEMS, check_feedback, normalize_feedback
from mloop.journal._labels import LabelSpaces
from mloop.journal._log import DurableLog

__all__ = [
    "MAX_FEEDBACK_ITEMS",
    "FeedbackLog",
    "FeedbackResult",
    "join_feedback",
    "label_array",
    "normalize_feedback",
]


@dataclass(frozen=True)
class FeedbackResult:
    """What happened to a batch of labels."""

    accepted: int
    matched: int
    unmatched: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready counts."""
        return {"accepted": self.accepted, "matched": self.matched, "unmatched": self.unmatched}


class FeedbackLog(DurableLog):
    """The durable log of labels."""

    stream = "feedback"

    def add(
        self,
        records: Sequence[Any],
        now: float,
        spaces: LabelSpaces | None = None,
        model_of: Callable[[str], str | None] | None = None,
        *,
        first_index: int = 0,
    ) -> list[dict[str, Any]]:
        """Check every label (``check_feedback``: all or nothing), then queue them for disk."""
        clean = check_feedback(records, now, spaces, model_of, first_index=first_index)
        if self.write_through:
            self._write_many(clean, [None] * len(clean))  # one write for the batch
        else:
            for item in clean:
                self._append(item, None)
        return clean


def _labels(feedback: pd.DataFrame) -> pd.DataFrame:
    frame = feedback.sort_values("ts", kind="stable")
    frame = frame.assign(label=[orjson.loads(x) for x in frame["label"]])
    return frame


def join_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> pd.Series:
    """The label of each prediction row (None where none arrived); the latest label wins."""
    keys = pa.table(
        {
            "request_id": pa.array(predictions["request_id"], pa.string()),
            "row": pa.array(predictions["row"], pa.int64()),
            "entity_key": pa.array(
                predictions["entity_key"]
                if "entity_key" in predictions
                else [None] * len(predictions),
                pa.string(),
            ),
        }
    )
    return pd.Series(label_array(keys, feedback), index=predictions.index, dtype=object)


def _rows_among(table: pa.Table, column: str, keys: Any) -> np.ndarray:
    """Positions of ``table`` rows whose ``column`` is one of ``keys`` (found in Arrow)."""
    wanted = pa.array(sorted({str(k) for k in keys}), pa.string())
    hit = pc.fill_null(pc.is_in(table.column(column), value_set=wanted), False)
    return np.flatnonzero(hit.to_numpy(zero_copy_only=False))


def label_array(table: pa.Table, feedback: pd.DataFrame) -> np.ndarray:
    """``join_feedback`` for a monitoring table: the label of each row (None where none
    arrived), found without turning a million request ids into Python strings."""
    result = np.full(table.num_rows, None, dtype=object)
    if table.num_rows == 0 or feedback.empty:
        return result
    labels = _labels(feedback)
    by_request = labels[labels["request_id"].notna()]
    if not by_request.empty:
        last = by_request.drop_duplicates(["request_id", "row"], keep="last")
        lookup = {
            (r, int(w)): lab
            for r, w, lab in zip(last["request_id"], last["row"], last["label"], strict=True)
        }
        idx = _rows_among(table, "request_id", last["request_id"])
        ids = table.column("request_id").take(idx).to_pylist()
        rows = table.column("row").take(idx).to_pylist()
        for i, r, w in zip(idx, ids, rows, strict=True):
            result[i] = lookup.get((r, int(w)))
    by_entity = labels[labels["entity_key"].notna() & labels["request_id"].isna()]
    if not by_entity.empty:
        last_e = by_entity.drop_duplicates(["entity_key"], keep="last")
        lookup_e = dict(zip(last_e["entity_key"], last_e["label"], strict=True))
        idx = _rows_among(table, "entity_key", lookup_e)
        keys = table.column("entity_key").take(idx).to_pylist()
        for i, key in zip(idx, keys, strict=True):
            if result[i] is None:
                result[i] = lookup_e[key]
    return result
