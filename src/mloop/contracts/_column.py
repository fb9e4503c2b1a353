"""One column of a data contract: its kind, nullability and the values seen in training."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, cast

__all__ = ["Column", "Kind", "Missing", "Policy", "V2Datatype"]

Kind = Literal["float", "integer", "boolean", "string", "datetime"]
# How an object column marked a missing cell in training: None, float NaN or pd.NA.
# Encoders learn that very value as a category, so serving must hand the same one back.
Missing = Literal["none", "nan", "na"]
MISSING: tuple[Missing, ...] = ("none", "nan", "na")
Policy = Literal["reject", "flag"]
V2Datatype = Literal["FP64", "INT64", "BOOL", "BYTES"]

KINDS: tuple[Kind, ...] = ("float", "integer", "boolean", "string", "datetime")
POLICIES: tuple[Policy, ...] = ("reject", "flag")

_V2: dict[Kind, V2Datatype] = {
    "float": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",  # ISO 8601 text on the wire
}

_EXPECTS: dict[Kind, str] = {
    "float": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "string": "a string",
    "datetime": "a date-time (ISO 8601 text)",
}


@dataclass(frozen=True)
class Column:
    """One named input field: kind, nullability, observed range or category set.

    ``categories`` is ``None`` for free text (too many distinct values in training)
    and for non-string columns. ``dtype`` is the pandas dtype seen in training
    (``"float32"``, ``"category"``, ``"str"`` …); validated frames are cast back to it
    so the model sees what it was trained on. ``missing`` is the value an ``object``
    column held for a missing cell in training (``None`` when not recorded: contracts
    from before it was, and columns whose dtype has one missing marker of its own).
    """

    name: str
    kind: Kind
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    dtype: str | None = None
    missing: Missing | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Column {self.name!r}: kind {self.kind!r} is not one of {KINDS}.")
        if self.categories is not None and self.kind != "string":
            raise ValueError(f"Column {self.name!r}: only string columns have categories.")
        if self.missing is not None and self.missing not in MISSING:
            raise ValueError(f"Column {self.name!r}: missing {self.missing!r} is not in {MISSING}.")

    @cached_property
    def category_set(self) -> frozenset[str]:
        """The categories as a set (empty when the column is free text)."""
        return frozenset(self.categories or ())

    @property
    def v2_datatype(self) -> V2Datatype:
        """The Open Inference Protocol datatype of this column."""
        return _V2[self.kind]

    @property
    def expects(self) -> str:
        """Human description of an acceptable value, used in messages."""
        return _EXPECTS[self.kind]

    def describe_range(self) -> str:
        """``"a number between 0 and 10"``, for out-of-range messages."""
        return f"{self.expects} between {_num(self.min)} and {_num(self.max)}"

    def describe_categories(self, limit: int = 8) -> str:
        """``"one of 'a', 'b' (+3 more)"``, for unknown-category messages."""
        cats = self.categories or ()
        shown = ", ".join(repr(c) for c in cats[:limit])
        more = f" (+{len(cats) - limit} more)" if len(cats) > limit else ""
        return f"one of {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; keys are stable."""
        return {
            "name": self.name,
            "kind": self.kind,
            "nullable": self.nullable,
            "min": self.min,
            "max": self.max,
            "categories": None if self.categories is None else list(self.categories),
            "dtype": self.dtype,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Column:
        """Inverse of :meth:`to_dict`."""
        cats = data.get("categories")
        return cls(
            name=str(data["name"]),
            kind=cast(Kind, data["kind"]),
            nullable=bool(data.get("nullable", False)),
            min=data.get("min"),
            max=data.get("max"),
            categories=None if cats is None else tuple(str(c) for c in cats),
            dtype=data.get("dtype"),
            missing=cast("Missing | None", data.get("missing")),
        )


def _num(x: float | None) -> str:
    if x is None:
        return "?"
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"
