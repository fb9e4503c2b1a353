"""The door of feedback: every label is checked before any is stored, and a batch is all or nothing.

What is checked (pure, no I/O): the shape of each item (``request_id`` and/or
``entity_key``, a scalar ``label``); bounds the log store must hold (ids and model
names of at most 200 characters without NUL, ``row`` a whole number in
0..2^31-1, ``ts`` a finite epoch time or ISO 8601 text between 2000-01-01 and one
day ahead of now); at most ``MAX_FEEDBACK_ITEMS`` items a call; and that the label
can score its model (``_labels.fit_label``).

Which model a label is for, strongest first, from what is at hand without waiting
on the database or the log:

1. the model that answered the request, when this process logged it recently
   (``PredictionLog.model_of``, an in-memory map of recent request ids); a label
   that names another model is refused;
2. else the model the label names (it must be registered);
3. else any registered model: the label must fit one of them. The prediction may
   still be in the spool (or answered by another worker), and looking it up would
   make the sender wait on compaction. What slips through here (a class of another
   model) is caught at the join: ``observe_rows`` scores only labels that are
   classes of the version it judges, and counts the others as unscorable.

One bad item refuses the whole batch (422, every bad item listed with its index in
``violations``): nothing is half stored, so a client fixes the batch and sends it
again. Sending a stored batch twice is harmless too: the last label for a key wins.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mloop.errors import InvalidInput
from mloop.journal._labels import LabelRejected, LabelSpaces, fit_label
from mloop.journal._storable import MAX_INT32, TEXT_LIMIT

__all__ = ["MAX_FEEDBACK_ITEMS", "check_feedback", "normalize_feedback"]

MAX_FEEDBACK_ITEMS = 10_000  # per request or call; send more in several
_MAX_LABEL_TEXT = 1024
_EARLIEST_TS = 946_684_800.0  # 2000-01-01T00:00:00Z
_LATEST_AHEAD_S = 86_400.0  # clocks drift; a label from next week is a mistake
_REPORTED = 100  # violations listed in one error
_QUOTED = 3  # of which the message quotes


def _shown(value: Any) -> Any:
    """A JSON-safe, short form of a value for a violation."""
    if value is None or (isinstance(value, bool | int) and abs(value) < 2**63):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(index: int, field: str | None, value: Any, message: str) -> InvalidInput:
    return InvalidInput(f"Feedback item {index} {message}", field=field, value=_shown(value))


def _text(value: Any, what: str, index: int) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _bad(index, what, value, f"has {what}={_shown(value)!r}; use text.")
    text = str(value).strip()
    if len(text) > TEXT_LIMIT:
        raise _bad(
            index, what, value, f"has a {what} of {len(text)} characters; at most {TEXT_LIMIT}."
        )
    if "\x00" in text:
        raise _bad(index, what, value, f"has a {what} with a NUL character.")
    return text or None


def _row(value: Any, index: int, by_request: bool) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0 if by_request else None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not 0 <= value <= MAX_INT32:
        raise _bad(
            index,
            "row",
            value,
            f"has row={str(value)[:40]}; use a row index >= 0 (the row's place in its "
            f"request), at most {MAX_INT32}.",
        )
    return int(value)


def _label(value: Any, index: int) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise _bad(index, "label", value, "has an empty label.")
        if len(value) > _MAX_LABEL_TEXT:
            raise _bad(
                index,
                "label",
                value,
                f"has a label of {len(value)} characters; at most {_MAX_LABEL_TEXT}.",
            )
        return value
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**63):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise _bad(
        index,
        "label",
        value,
        f"has label {_shown(value)!r}; a label is one class name, number or boolean "
        "(a finite number for a regressor).",
    )


def _ts(value: Any, index: int, now: float) -> float:
    if value is None:
        return now
    given = value
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise _bad(
                    index, "ts", value, f"has ts={value[:40]!r}; give epoch seconds or ISO 8601."
                ) from None
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            value = parsed.timestamp()
    # ints are compared as they are: 10**400 is no float
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(index, "ts", value, f"has ts={_shown(value)!r}; give epoch seconds.")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(index, "ts", value, f"has ts={value}; give finite epoch seconds.")
    if not _EARLIEST_TS <= value <= now + _LATEST_AHEAD_S:
        shown = f"{given:g}" if isinstance(given, float) else str(given)[:40]
        raise _bad(
            index,
            "ts",
            given,
            f"has ts={shown}, which is not between 2000-01-01 and tomorrow; give the time "
            "the label was observed in epoch seconds.",
        )
    return float(value)


def normalize_feedback(item: Mapping[str, Any], index: int, now: float) -> dict[str, Any]:
    """Check one label's shape and bounds and return its stored form; ``index`` names it."""
    if not isinstance(item, Mapping):
        raise _bad(index, None, item, f"is not an object: {str(item)[:80]}.")
    # numpy scalars (labels read from CSV or Parquet) as the Python values they hold
    item = {k: v.item() if isinstance(v, np.generic) else v for k, v in item.items()}
    request_id = _text(item.get("request_id"), "request_id", index)
    entity_key = _text(item.get("entity_key"), "entity_key", index)
    if request_id is None and entity_key is None:
        raise _bad(
            index,
            "request_id",
            None,
            "has neither 'request_id' nor 'entity_key'; give one so the label can be "
            "joined to its prediction.",
        )
    if item.get("label") is None:
        raise _bad(index, "label", None, "has no 'label'.")
    return {
        "request_id": request_id,
        "row": _row(item.get("row"), index, request_id is not None),
        "entity_key": entity_key,
        "label": _label(item["label"], index),
        "ts": _ts(item.get("ts"), index, now),
        "model": _text(item.get("model"), "model", index),
    }


def _fit(
    item: dict[str, Any],
    index: int,
    spaces: LabelSpaces,
    model_of: Callable[[str], str | None] | None,
) -> None:
    rid, named = item["request_id"], item["model"]
    served = model_of(rid) if model_of is not None and rid is not None else None
    if served is not None and named is not None and served != named:
        raise _bad(
            index,
            "model",
            named,
            f"names model {named!r}, but request {rid!r} was answered by model {served!r}; "
            "name that model or leave 'model' out.",
        )
    model = served if served is not None and served in spaces else named
    try:
        item["label"] = fit_label(item["label"], model, spaces)
    except LabelRejected as exc:
        field = "model" if model is not None and model not in spaces else "label"
        raise _bad(index, field, item[field], f"has {exc}") from None
    item["model"] = served or named


def _refusal(problems: list[InvalidInput], total: int) -> InvalidInput:
    quoted = " ".join(p.message for p in problems[:_QUOTED])
    more = len(problems) - _QUOTED
    head = (
        ""
        if total == 1
        else f"{len(problems)} of {total} feedback items are invalid, so none was stored; "
        "fix them and send the batch again. "
    )
    tail = f" (+{more} more in 'violations')" if more > 0 else ""
    violations = [
        {
            "index": p.details["index"],
            "field": p.details.get("field"),
            "value": p.details.get("value"),
            "message": p.message,
        }
        for p in problems[:_REPORTED]
    ]
    return InvalidInput(f"{head}{quoted}{tail}", violations=violations, invalid_items=len(problems))


def check_feedback(
    items: Sequence[Any],
    now: float,
    spaces: LabelSpaces | None = None,
    model_of: Callable[[str], str | None] | None = None,
    *,
    first_index: int = 0,
) -> list[dict[str, Any]]:
    """Every item in its stored form, or one ``InvalidInput`` that lists every bad item.

    With ``spaces`` (tasks and classes per registered model) each label must fit its
    model; ``model_of`` maps a recent request id to the model that answered it.
    Items are numbered from ``first_index`` (a file import counts across batches).
    """
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise InvalidInput(
            f"{len(items)} labels in one call; send at most {MAX_FEEDBACK_ITEMS} at a time.",
            limit=MAX_FEEDBACK_ITEMS,
        )
    clean: list[dict[str, Any]] = []
    problems: list[InvalidInput] = []
    for index, item in enumerate(items, first_index):
        try:
            one = normalize_feedback(item, index, now)
            if spaces is not None:
                _fit(one, index, spaces, model_of)
        except InvalidInput as exc:
            exc.details["index"] = index
            problems.append(exc)
            continue
        clean.append(one)
    if problems:
        raise _refusal(problems, len(items))
    return clean
