"""Readable check results shared by data validation and the champion/challenger gate."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Check", "Report"]


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, the measured value, the threshold, and why."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN and infinities become None)."""
        return {
            "name": self.name,
            "passed": self.passed,
            "value": _finite(self.value),
            "threshold": _finite(self.threshold),
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            passed=bool(data["passed"]),
            value=data.get("value"),
            threshold=data.get("threshold"),
            message=str(data.get("message", "")),
        )


@dataclass(frozen=True)
class Report:
    """The outcome of a list of checks (``passed`` only when every check passed)."""

    stage: str  # "validation" | "gate"
    checks: tuple[Check, ...]
    metrics: Mapping[str, Any]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        """One line: passed, or which checks failed and why."""
        if self.passed:
            return f"{self.stage} passed ({len(self.checks)} checks)"
        reasons = "; ".join(f"{c.name}: {c.message}" for c in self.failures)
        return f"{self.stage} failed: {reasons}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "stage": self.stage,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "metrics": _json_safe(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Inverse of :meth:`to_dict`."""
        return cls(
            stage=str(data["stage"]),
            checks=tuple(Check.from_dict(c) for c in data.get("checks", ())),
            metrics=dict(data.get("metrics") or {}),
        )

    def table(self) -> Sequence[tuple[str, str, str, str, str]]:
        """Rows of (check, result, value, threshold, message) for printing."""
        return [
            (
                c.name,
                "pass" if c.passed else "FAIL",
                _fmt(c.value),
                _fmt(c.threshold),
                c.message,
            )
            for c in self.checks
        ]


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return _finite(value)
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value
