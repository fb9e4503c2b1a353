"""One duration syntax for every setting, flag and query."""

from __future__ import annotations

import pytest

from mloop._duration import parse_duration
from mloop.errors import ConfigurationError, InvalidInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("45s", 45),
        ("10m", 600),
        ("6h", 21600),
        ("7d", 604800),
        ("2w", 1209600),
        ("90", 90),
        (30, 30),
        (" 1.5 h ", 5400),
    ],
)
def test_units(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_a_bad_duration_names_the_setting_and_the_error_type_is_the_callers() -> None:
    with pytest.raises(InvalidInput, match="window 'soon' is not a duration"):
        parse_duration("soon", "window")
    with pytest.raises(ConfigurationError):
        parse_duration("soon", error=ConfigurationError)
