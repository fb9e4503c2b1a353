"""Feedback labels: validation, and the join to prediction rows (request+row, entity key)."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest

from mloop.errors import InvalidInput
from mloop.journal._feedback import join_feedback, normalize_feedback


def predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "c"],
            "row": [0, 1, 0, 0],
            "entity_key": ["k0", "k1", "k2", None],
        }
    )


def feedback(*items: dict[str, object]) -> pd.DataFrame:
    rows = [normalize_feedback(item, i, now=float(i)) for i, item in enumerate(items)]
    frame = pd.DataFrame(rows)
    return frame.assign(label=[orjson.dumps(x).decode() for x in frame["label"]])


def test_labels_join_by_request_and_row_then_entity_key() -> None:
    labels = join_feedback(
        predictions(),
        feedback(
            {"request_id": "a", "row": 1, "label": "yes"},
            {"request_id": "b", "label": 0},  # row defaults to 0
            {"entity_key": "k0", "label": "no"},
            {"request_id": "zzz", "label": "late"},  # its prediction is not logged (yet)
        ),
    )
    assert labels.tolist() == ["no", "yes", 0, None]


def test_the_latest_label_wins() -> None:
    labels = join_feedback(
        predictions(),
        feedback({"request_id": "c", "label": "first"}, {"request_id": "c", "label": "second"}),
    )
    assert labels.tolist() == [None, None, None, "second"]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"label": 1}, "neither 'request_id' nor 'entity_key'"),
        ({"request_id": "a"}, "no 'label'"),
        ({"request_id": "a", "label": 1, "row": -1}, "row index >= 0"),
        ({"request_id": "a", "label": 1, "row": "x"}, "row index >= 0"),
        ("just text", "not an object"),
    ],
)
def test_bad_labels_are_rejected_with_the_reason(item: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        normalize_feedback(item, 0, now=0.0)  # type: ignore[arg-type]
