"""API keys with scopes (created once, stored hashed, verified from a short cache), and the
guard every server puts in front of its routes."""

from mloop.auth._guard import Guard, auth_required, is_loopback, token_from
from mloop.auth._keys import ApiKeyInfo, KeyStore
from mloop.auth._scopes import ANONYMOUS, Principal, Scope, parse_scopes

__all__ = [
    "ANONYMOUS",
    "ApiKeyInfo",
    "Guard",
    "KeyStore",
    "Principal",
    "Scope",
    "auth_required",
    "is_loopback",
    "parse_scopes",
    "token_from",
]
