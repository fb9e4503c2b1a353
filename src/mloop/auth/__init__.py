"""API keys with scopes (created once, stored hashed, verified from a short cache), the
guard every server puts in front of its routes, and the gateway limits keys and teams carry."""

from mloop.auth._guard import Guard, auth_required, is_loopback, token_from
from mloop.auth._keys import ApiKeyInfo, KeyStore
from mloop.auth._limits import (
    BUDGET_PERIODS,
    KeyLimits,
    Limits,
    LimitStore,
    gateway_limits,
    parse_budgets,
)
from mloop.auth._scopes import ANONYMOUS, Principal, Scope, parse_scopes

__all__ = [
    "ANONYMOUS",
    "BUDGET_PERIODS",
    "ApiKeyInfo",
    "Guard",
    "KeyLimits",
    "KeyStore",
    "LimitStore",
    "Limits",
    "Principal",
    "Scope",
    "auth_required",
    "gateway_limits",
    "is_loopback",
    "parse_budgets",
    "parse_scopes",
    "token_from",
]
