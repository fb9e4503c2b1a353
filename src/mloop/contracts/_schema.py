"""The data contract of a model: its input columns and how strictly to enforce them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, cast

import numpy as np
import pandas as pd

from mloop.contracts._coerce import Plan, coerce_with_plan, make_plan
from mloop.contracts._column import POLICIES, Column, Policy, V2Datatype
from mloop.contracts._violation import Violation
from mloop.errors import InvalidInput, NotFound

__all__ = ["Schema"]

SCHEMA_FORMAT = 1
_SHOWN = 50  # violations listed in one InvalidInput; the rest are counted


@dataclass(frozen=True)
class Schema:
    """Ordered input columns plus the policy for unknown categories and out-of-range values.

    Missing columns, wrong types and nulls in non-nullable columns always reject; unknown
    columns only flag; unknown categories and out-of-range values follow the policies.
    """

    columns: tuple[Column, ...]
    on_unknown_category: Policy = "flag"
    on_out_of_range: Policy = "flag"

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InvalidInput(f"Column names must be unique; repeated: {dupes}.")
        for policy in (self.on_unknown_category, self.on_out_of_range):
            if policy not in POLICIES:
                raise InvalidInput(f"Policy {policy!r} is not one of {POLICIES}.")

    # --- lookup --------------------------------------------------------------------

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Column names in training order."""
        return tuple(c.name for c in self.columns)

    @cached_property
    def name_set(self) -> frozenset[str]:
        """Column names as a set (which fields of a record the contract knows)."""
        return frozenset(self.names)

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise NotFound(f"The contract has no column {name!r}; it has {list(self.names)}.")

    def v2_datatype(self, column: str) -> V2Datatype:
        """Open Inference Protocol datatype (FP64, INT64, BOOL, BYTES) of ``column``."""
        return self[column].v2_datatype

    def with_policy(
        self, *, on_unknown_category: Policy | None = None, on_out_of_range: Policy | None = None
    ) -> Schema:
        """A copy with other enforcement policies."""
        return replace(
            self,
            on_unknown_category=on_unknown_category or self.on_unknown_category,
            on_out_of_range=on_out_of_range or self.on_out_of_range,
        )

    # --- validation ----------------------------------------------------------------

    @cached_property
    def _plan(self) -> Plan:
        return make_plan(self.columns)

    def coerce(self, data: Any) -> tuple[pd.DataFrame, list[Violation]]:
        """The contract's frame (columns in order, contract dtypes) and every violation.

        ``data`` is a list of records, a mapping of column lists (or one record) or a
        DataFrame. Cells that violate the contract become missing in the frame.
        Raises :class:`~mloop.errors.InvalidInput` only when the input has no tabular shape.
        """
        return coerce_with_plan(
            self._plan,
            data,
            on_unknown_category=self.on_unknown_category,
            on_out_of_range=self.on_out_of_range,
        )

    records_to_frame = coerce

    @property
    def all_numeric(self) -> bool:
        """True when every column is float, integer or boolean (see :meth:`coerce_matrix`)."""
        return all(c.kind in ("float", "integer", "boolean") for c in self.columns)

    def coerce_matrix(self, data: Any) -> tuple[np.ndarray, list[Violation]]:
        """Like :meth:`coerce` but a rows x columns float64 matrix, for array-input models.

        Only for :attr:`all_numeric` contracts; booleans become 0/1 and missing cells NaN.
        """
        if not self.all_numeric:
            text = [c.name for c in self.columns if c.kind in ("string", "datetime")]
            raise InvalidInput(
                f"Columns {text} are not numeric, so the input cannot be one float matrix; "
                "use coerce() for a DataFrame."
            )
        matrix, violations = coerce_with_plan(
            self._plan,
            data,
            on_unknown_category=self.on_unknown_category,
            on_out_of_range=self.on_out_of_range,
            as_matrix=True,
        )
        return matrix, violations

    def validate(self, data: Any) -> list[Violation]:
        """Every violation of ``data`` (rejecting and flagged)."""
        return self.coerce(data)[1]

    def check(self, data: Any) -> pd.DataFrame:
        """The contract's frame, or :class:`~mloop.errors.InvalidInput` listing what rejects."""
        frame, violations = self.coerce(data)
        rejects = [v for v in violations if v.severity == "reject"]
        if rejects:
            raise invalid_input(rejects)
        return frame

    # --- persistence ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with stable keys."""
        return {
            "format": SCHEMA_FORMAT,
            "columns": [c.to_dict() for c in self.columns],
            "on_unknown_category": self.on_unknown_category,
            "on_out_of_range": self.on_out_of_range,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Inverse of :meth:`to_dict`."""
        fmt = data.get("format", SCHEMA_FORMAT)
        if fmt != SCHEMA_FORMAT:
            raise InvalidInput(
                f"Schema format {fmt!r} is not supported (expected {SCHEMA_FORMAT}); "
                "upgrade mloop to read it."
            )
        return cls(
            columns=tuple(Column.from_dict(c) for c in data["columns"]),
            on_unknown_category=cast(Policy, data.get("on_unknown_category", "flag")),
            on_out_of_range=cast(Policy, data.get("on_out_of_range", "flag")),
        )


def invalid_input(rejects: list[Violation]) -> InvalidInput:
    """One InvalidInput that lists the first rejecting violations and counts the rest."""
    first = rejects[0].message
    rest = len(rejects) - 1
    more = (
        f" ({rest} more problem{'s' if rest != 1 else ''} listed in 'violations'.)" if rest else ""
    )
    shown = [v.to_dict() for v in rejects[:_SHOWN]]
    details: dict[str, Any] = {"violation_count": len(rejects)}
    if len(rejects) > _SHOWN:
        details["violations_omitted"] = len(rejects) - _SHOWN
    return InvalidInput(f"{first}{more}", violations=shown, **details)
