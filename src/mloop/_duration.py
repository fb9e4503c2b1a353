"""Durations as people write them: ``30``, ``"500ms"``, ``"45s"``, ``"10m"``, ``"6h"``, ``"7d"``, ``"2w"``."""

from __future__ import annotations

import re

from mloop.errors import InvalidInput, MloopError

__all__ = ["parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(
    value: str | float, what: str = "Duration", *, error: type[MloopError] = InvalidInput
) -> float:
    """Seconds in ``value``; a bare number is seconds. Raises ``error`` (a user's by default)."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value).lower())
    if match is None:
        raise error(
            f"{what} {value!r} is not a duration; write a number with a unit, "
            "e.g. 500ms, 30s, 10m, 2h, 7d or 2w."
        )
    return float(match.group(1)) * _UNITS[match.group(2)]
