"""Who may call a route: API-key checks per scope, and when keys are required at all."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping

from mloop.auth._keys import KeyStore
from mloop.auth._scopes import ANONYMOUS, Principal, Scope
from mloop.errors import ConfigurationError, Unauthenticated

__all__ = ["Guard", "auth_required", "is_loopback", "token_from"]


@functools.lru_cache(maxsize=1024)  # keyless mode asks on every request; ipaddress is ~10 us
def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1, ``localhost`` and names under it (RFC 6761)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def auth_required(mode: str, host: str) -> bool:
    """``"on"`` / ``"off"``, or ``"auto"``: required unless the server listens on loopback."""
    mode = mode.lower()
    if mode in ("on", "true", "required"):
        return True
    if mode in ("off", "false", "open"):
        return False
    if mode == "auto":
        return not is_loopback(host)
    raise ConfigurationError(f"auth={mode!r} is not one of auto, on, off.")


def token_from(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> str | None:
    """The API key from ``Authorization: Bearer``, ``X-Api-Key`` or ``?api_key=`` (WebSocket)."""
    value = headers.get("authorization")
    if value:
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    value = headers.get("x-api-key")
    if value:
        return value.strip()
    if query is not None:
        return query.get("api_key")
    return None


class Guard:
    """Checks the key on a request against the scope its route needs."""

    def __init__(self, keys: KeyStore | None, *, required: bool) -> None:
        if required and keys is None:
            raise ConfigurationError("Authentication is required but no key store was given.")
        self.keys = keys
        self.required = required

    def check(
        self, headers: Mapping[str, str], scope: Scope, query: Mapping[str, str] | None = None
    ) -> Principal:
        """The caller, if allowed; raises ``Unauthenticated`` or ``Forbidden``."""
        if not self.required:
            return ANONYMOUS
        token = token_from(headers, query)
        if not token:
            raise Unauthenticated(
                f"This route needs an API key with scope {scope.value!r}. Send "
                "'Authorization: Bearer mlp_…'; create one with: "
                f"mloop keys create --scope {scope.value}",
                required_scope=scope.value,
            )
        assert self.keys is not None
        principal = self.keys.verify(token)
        principal.require(scope)
        return principal
