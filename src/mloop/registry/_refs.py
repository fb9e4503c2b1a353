"""Model references: ``name``, ``name@alias`` and ``name:version``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mloop.errors import InvalidInput

__all__ = ["ModelRef", "parse_ref", "validate_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,99}$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference; at most one of ``alias`` and ``version`` is set."""

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return self.name


def validate_name(name: str, what: str = "model name") -> str:
    """Return ``name`` if it is a valid model name, else raise ``InvalidInput``."""
    pattern = _ALIAS if what == "alias" else _NAME
    if not pattern.match(name):
        raise InvalidInput(
            f"{name!r} is not a valid {what}: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit."
        )
    return name


def parse_ref(ref: str) -> ModelRef:
    """Parse ``churn``, ``churn@production`` or ``churn:3``."""
    ref = ref.strip()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return ModelRef(validate_name(name), alias=validate_name(alias, "alias"))
    if ":" in ref:
        name, version = ref.rsplit(":", 1)
        # isdigit() alone admits "²" and other digits int() refuses
        if not (version.isascii() and version.isdigit()) or int(version) < 1:
            raise InvalidInput(
                f"Model reference {ref!r} has version {version!r}; versions are whole numbers "
                "from 1, e.g. churn:3."
            )
        return ModelRef(validate_name(name), version=int(version))
    return ModelRef(validate_name(ref))
