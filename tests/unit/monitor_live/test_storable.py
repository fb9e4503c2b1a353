"""unstorable_reason: what the compacted log cannot hold is named before a store is asked."""

from __future__ import annotations

from typing import Any

import pytest

from mloop.journal._storable import unstorable_reason

from ._records import record


def _label(**changes: Any) -> dict[str, Any]:
    return {"request_id": "r1", "row": 0, "label": "yes", "ts": 1.7e9, "model": "churn"} | changes


def test_records_the_door_lets_in_are_storable() -> None:
    assert unstorable_reason("feedback", _label()) is None
    assert unstorable_reason("feedback", _label(request_id=None, row=None, entity_key="k")) is None
    assert unstorable_reason("predictions", record(1, rows=3)) is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"ts": 1e308}, "between the years 1970 and 9999"),
        ({"ts": -1e308}, "between the years 1970 and 9999"),
        ({"ts": "soon"}, "ts 'soon' is not a number"),
        ({"row": 2**31}, "beyond 32 bits"),
        ({"row": -1}, "row -1 is negative"),
        ({"row": 1.5}, "not a whole number"),
        ({"request_id": "r" * 201}, "201 characters (at most 200)"),
        ({"entity_key": "a\x00b"}, "NUL"),
    ],
)
def test_a_feedback_record_beyond_the_columns_is_named(changes: dict[str, Any], words: str) -> None:
    reason = unstorable_reason("feedback", _label(**changes))
    assert reason is not None and words in reason


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"version": 2**40}, "version"),
        ({"entity_keys": ["k" * 300]}, "entity_key has 300 characters"),
        ({"model": "m\x00"}, "NUL"),
        ({"outputs": [{"value": "high"}]}, "cannot be turned into log rows"),
        ({"latency_ms": "fast"}, "latency_ms 'fast' is not a number"),
        ({"ts": float("inf")}, "between the years 1970 and 9999"),
    ],
)
def test_a_prediction_record_beyond_the_columns_is_named(
    changes: dict[str, Any], words: str
) -> None:
    reason = unstorable_reason("predictions", record(1) | changes)
    assert reason is not None and words in reason


def test_a_record_that_is_no_object_is_named() -> None:
    assert unstorable_reason("feedback", ["r1", "yes"]) == "a list, not an object"
