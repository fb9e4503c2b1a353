"""Parsing model references."""

from __future__ import annotations

import pytest

from mloop.errors import InvalidInput
from mloop.registry import ModelRef, parse_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", ModelRef("churn")),
        ("churn@production", ModelRef("churn", alias="production")),
        ("churn:3", ModelRef("churn", version=3)),
        ("team.churn-v2:12", ModelRef("team.churn-v2", version=12)),
    ],
)
def test_valid_refs_parse_and_print_back(text: str, expected: ModelRef) -> None:
    assert parse_ref(text) == expected
    assert str(parse_ref(text)) == text


@pytest.mark.parametrize("text", ["", "churn:0", "churn:x", "@prod", "churn@", "bad name"])
def test_invalid_refs_are_user_errors_that_show_the_format(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ref(text)
