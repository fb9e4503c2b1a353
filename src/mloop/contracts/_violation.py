"""One broken expectation of a contract, located by row and field."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["Severity", "Violation", "ViolationKind", "json_safe"]

ViolationKind = Literal[
    "missing_column",
    "unknown_column",
    "wrong_type",
    "null_not_allowed",
    "unknown_category",
    "out_of_range",
]
Severity = Literal["reject", "flag"]

_MAX_TEXT = 80


@dataclass(frozen=True)
class Violation:
    """What was wrong (``kind``), where (``row``, ``field``) and whether it blocks the request.

    ``row`` counts from 0 and is ``None`` for whole-column problems; ``value`` is a
    JSON-safe rendering of what was sent.
    """

    row: int | None
    field: str
    value: Any
    expected: str
    kind: ViolationKind
    severity: Severity

    @property
    def message(self) -> str:
        """One sentence saying what is wrong and what to send instead."""
        name = repr(self.field)
        where = "" if self.row is None else f"row {self.row} "
        shown = _show(self.value)
        if self.kind == "missing_column":
            return f"Column {name} is missing; send it with {self.expected}."
        if self.kind == "unknown_column":
            return f"Column {name} is not part of the contract and is ignored."
        if self.kind == "null_not_allowed":
            return f"Column {name} expects {self.expected}; {where}has no value (null)."
        # wrong_type, unknown_category, out_of_range
        return f"Column {name} expects {self.expected}; {where}has {shown}."

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the fields plus ``message``."""
        return {
            "row": self.row,
            "field": self.field,
            "value": self.value,
            "expected": self.expected,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
        }


def json_safe(value: Any) -> Any:
    """A value JSON can carry: plain scalars as they are, anything else as a short repr."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[: _MAX_TEXT - 1] + "…"
    text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
