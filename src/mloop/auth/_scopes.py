"""Scopes an API key can hold, and who a verified key belongs to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from mloop.errors import Forbidden, InvalidInput

__all__ = ["Principal", "Scope", "parse_scopes"]


class Scope(StrEnum):
    """What a key may do; ``admin`` implies every other scope, ``deploy`` implies ``view``."""

    VIEW = "view"  # read-only: the dashboard's pages and their JSON
    PREDICT = "predict"
    FEEDBACK = "feedback"
    DEPLOY = "deploy"
    GATEWAY = "gateway"  # the LLM gateway's routes
    ADMIN = "admin"


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from user text; an unknown name raises ``InvalidInput`` listing the known ones."""
    result: set[Scope] = set()
    for value in values:
        try:
            result.add(Scope(value.strip().lower()))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise InvalidInput(f"Unknown scope {value!r}; use one of: {known}.") from None
    if not result:
        raise InvalidInput("A key needs at least one scope, e.g. --scope predict.")
    return frozenset(result)


@dataclass(frozen=True)
class Principal:
    """The caller behind a verified API key (or the anonymous caller on an open server)."""

    key_id: str
    name: str
    scopes: frozenset[Scope]

    def has(self, scope: Scope) -> bool:
        """True when this caller holds ``scope`` (``admin`` holds them all; ``deploy`` may view)."""
        if scope in self.scopes or Scope.ADMIN in self.scopes:
            return True
        return scope is Scope.VIEW and Scope.DEPLOY in self.scopes

    def require(self, scope: Scope) -> None:
        """Raise ``Forbidden`` unless this caller holds ``scope``."""
        if not self.has(scope):
            held = ", ".join(sorted(s.value for s in self.scopes)) or "none"
            raise Forbidden(
                f"API key {self.key_id!r} ({self.name}) lacks scope {scope.value!r} "
                f"(it has: {held}). Create a key with: mloop keys create --scope {scope.value}",
                required_scope=scope.value,
            )


ANONYMOUS = Principal(key_id="anonymous", name="open server", scopes=frozenset({Scope.ADMIN}))
