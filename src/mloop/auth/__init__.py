"""API keys with scopes: created once, stored hashed, verified from a short cache."""

from mloop.auth._keys import ApiKeyInfo, KeyStore
from mloop.auth._scopes import ANONYMOUS, Principal, Scope, parse_scopes

__all__ = ["ANONYMOUS", "ApiKeyInfo", "KeyStore", "Principal", "Scope", "parse_scopes"]
