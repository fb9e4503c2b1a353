"""Feedback: delayed ground truth by request id (+ row) or entity key, and its join to predictions.

Labels go through the same durable spool as predictions (stream ``feedback``), so
an accepted label survives a crash. Labels may arrive before their prediction is
compacted (or before it is logged at all): they are stored regardless and joined
when the monitor reads a window; the last label for a key wins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

from mloop.errors import InvalidInput
from mloop.monitor._log import DurableLog

__all__ = ["FeedbackLog", "FeedbackResult", "join_feedback", "normalize_feedback"]


@dataclass(frozen=True)
class FeedbackResult:
    """What happened to a batch of labels."""

    accepted: int
    matched: int
    unmatched: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready counts."""
        return {"accepted": self.accepted, "matched": self.matched, "unmatched": self.unmatched}


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def normalize_feedback(item: Mapping[str, Any], index: int, now: float) -> dict[str, Any]:
    """Check one label and return its stored form; ``index`` names it in errors."""
    if not isinstance(item, Mapping):
        raise InvalidInput(f"Feedback item {index} is not an object: {item!r}.")
    request_id = _text(item.get("request_id"))
    entity_key = _text(item.get("entity_key"))
    if request_id is None and entity_key is None:
        raise InvalidInput(
            f"Feedback item {index} has neither 'request_id' nor 'entity_key'; "
            "give one so the label can be joined to its prediction."
        )
    if "label" not in item or _text(item.get("label")) is None:
        raise InvalidInput(f"Feedback item {index} has no 'label'.")
    row = item.get("row")
    if row is None or (isinstance(row, float) and math.isnan(row)):
        row = 0 if request_id is not None else None
    else:
        try:
            row = int(row)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"Feedback item {index} has row={item.get('row')!r}; use a row index >= 0."
            ) from None
        if row < 0:
            raise InvalidInput(f"Feedback item {index} has row={row}; use a row index >= 0.")
    label = item["label"]
    if hasattr(label, "item"):
        label = label.item()
    ts = item.get("ts")
    return {
        "request_id": request_id,
        "row": row,
        "entity_key": entity_key,
        "label": label,
        "ts": float(ts) if ts is not None else now,
        "model": _text(item.get("model")),
    }


class FeedbackLog(DurableLog):
    """The durable log of labels."""

    stream = "feedback"

    def add(self, records: Iterable[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
        """Validate every label (all or nothing), then queue them for disk."""
        clean = [normalize_feedback(item, i, now) for i, item in enumerate(records)]
        for item in clean:
            self._append(item, None)
        return clean


def _labels(feedback: pd.DataFrame) -> pd.DataFrame:
    frame = feedback.sort_values("ts", kind="stable")
    frame = frame.assign(label=[orjson.loads(x) for x in frame["label"]])
    return frame


def join_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> pd.Series:
    """The label of each prediction row (None where none arrived); the latest label wins."""
    result = pd.Series([None] * len(predictions), index=predictions.index, dtype=object)
    if predictions.empty or feedback.empty:
        return result
    labels = _labels(feedback)
    by_request = labels[labels["request_id"].notna()]
    if not by_request.empty:
        last = by_request.drop_duplicates(["request_id", "row"], keep="last")
        lookup = {
            (r, int(w)): lab
            for r, w, lab in zip(last["request_id"], last["row"], last["label"], strict=True)
        }
        keys = zip(predictions["request_id"], predictions["row"], strict=True)
        found = [lookup.get((r, int(w))) for r, w in keys]
        result = pd.Series(found, index=predictions.index, dtype=object)
    by_entity = labels[labels["entity_key"].notna() & labels["request_id"].isna()]
    if not by_entity.empty and "entity_key" in predictions:
        last_e = by_entity.drop_duplicates(["entity_key"], keep="last")
        lookup_e = dict(zip(last_e["entity_key"], last_e["label"], strict=True))
        for idx, key in zip(predictions.index, predictions["entity_key"], strict=True):
            if result[idx] is None and key is not None and key in lookup_e:
                result[idx] = lookup_e[key]
    return result
