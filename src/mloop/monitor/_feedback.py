"""Feedback: delayed ground truth by request id (+ row) or entity key, and its join to predictions.

Labels go through the same durable spool as predictions (stream ``feedback``), so
an accepted label survives a crash. Labels may arrive before their prediction is
compacted (or before it is logged at all): they are stored regardless and joined
when the monitor reads a window; the last label for a key wins.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from mloop.errors import InvalidInput
from mloop.monitor._labels import LabelSpaces, check_label
from mloop.monitor._log import DurableLog

__all__ = [
    "MAX_FEEDBACK_ITEMS",
    "FeedbackLog",
    "FeedbackResult",
    "join_feedback",
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


MAX_FEEDBACK_ITEMS = 10_000  # per request or call; send more in several
_MAX_TEXT = 256  # request ids, entity keys, model names
_MAX_LABEL_TEXT = 1024
_MAX_ROW = 2**31 - 1
_EARLIEST_TS = 946_684_800.0  # 2000-01-01T00:00:00Z
_LATEST_AHEAD_S = 86_400.0  # clocks drift; a label from next week is a mistake


def _text(value: Any, what: str, index: int) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(
            f"Feedback item {index} has {what}={str(value)[:80]!r}; use text (or a whole number)."
        )
    text = str(value).strip()
    if len(text) > _MAX_TEXT:
        raise InvalidInput(
            f"Feedback item {index} has a {what} of {len(text)} characters; at most {_MAX_TEXT}."
        )
    return text or None


def _row(value: Any, index: int, by_request: bool) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0 if by_request else None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not 0 <= value <= _MAX_ROW:
        raise InvalidInput(
            f"Feedback item {index} has row={str(value)[:40]}; use a row index >= 0 "
            f"(the row's place in its request), at most {_MAX_ROW}."
        )
    return int(value)


def _label(value: Any, index: int) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInput(f"Feedback item {index} has an empty label.")
        if len(value) > _MAX_LABEL_TEXT:
            raise InvalidInput(
                f"Feedback item {index} has a label of {len(value)} characters; at most "
                f"{_MAX_LABEL_TEXT}."
            )
        return value
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**63):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise InvalidInput(
        f"Feedback item {index} has label {str(value)[:80]!r}; a label is one class name, "
        "number or boolean (a finite number for a regressor)."
    )


def _ts(value: Any, index: int, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise InvalidInput(
                    f"Feedback item {index} has ts={value[:40]!r}; give epoch seconds or an "
                    "ISO 8601 time."
                ) from None
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            value = parsed.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"Feedback item {index} has ts={str(value)[:40]}; give epoch seconds.")
    if not _EARLIEST_TS <= value <= now + _LATEST_AHEAD_S:
        raise InvalidInput(
            f"Feedback item {index} has ts={value:g}, which is not between 2000-01-01 and "
            "tomorrow; give the time the label was observed in epoch seconds."
        )
    return float(value)


def normalize_feedback(item: Mapping[str, Any], index: int, now: float) -> dict[str, Any]:
    """Check one label and return its stored form; ``index`` names it in errors."""
    if not isinstance(item, Mapping):
        raise InvalidInput(f"Feedback item {index} is not an object: {str(item)[:80]}.")
    # numpy scalars (labels read from CSV or Parquet) as the Python values they hold
    item = {k: v.item() if isinstance(v, np.generic) else v for k, v in item.items()}
    request_id = _text(item.get("request_id"), "request_id", index)
    entity_key = _text(item.get("entity_key"), "entity_key", index)
    if request_id is None and entity_key is None:
        raise InvalidInput(
            f"Feedback item {index} has neither 'request_id' nor 'entity_key'; "
            "give one so the label can be joined to its prediction."
        )
    if "label" not in item or item.get("label") is None:
        raise InvalidInput(f"Feedback item {index} has no 'label'.")
    return {
        "request_id": request_id,
        "row": _row(item.get("row"), index, request_id is not None),
        "entity_key": entity_key,
        "label": _label(item["label"], index),
        "ts": _ts(item.get("ts"), index, now),
        "model": _text(item.get("model"), "model", index),
    }


class FeedbackLog(DurableLog):
    """The durable log of labels."""

    stream = "feedback"

    def add(
        self,
        records: Iterable[Mapping[str, Any]],
        now: float,
        spaces: LabelSpaces | None = None,
    ) -> list[dict[str, Any]]:
        """Validate every label (all or nothing: a client can retry the whole batch), then
        queue them for disk. With ``spaces`` each label must fit its model (``check_label``).
        """
        items = list(records)
        if len(items) > MAX_FEEDBACK_ITEMS:
            raise InvalidInput(
                f"{len(items)} labels in one call; send at most {MAX_FEEDBACK_ITEMS} at a time."
            )
        clean = [normalize_feedback(item, i, now) for i, item in enumerate(items)]
        if spaces is not None:
            for i, item in enumerate(clean):
                check_label(item["label"], item["model"], spaces, i)
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
