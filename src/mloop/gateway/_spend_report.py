"""Spend as people read it: ledger rows in USD and tokens, next to the caps that apply.

One view for ``mloop gateway spend``, ``GET /v1/status`` and the dashboard, so the
three never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mloop.auth import KeyLimits, Limits
from mloop.gateway._ledger import LedgerRow

__all__ = ["budget_caps", "spend_report"]


def budget_caps(
    keys: Sequence[KeyLimits], teams: Mapping[str, Limits], period: str
) -> dict[tuple[str, str], float]:
    """The cap per (subject, metric) in ``period``: USD budgets, and RPM/TPM per minute."""
    caps: dict[tuple[str, str], float] = {}
    for key in keys:
        for usd_period, usd in key.limits.budgets_usd.items():
            if usd_period == period:
                caps[(f"key:{key.key_id}", "usd")] = usd
        if period == "minute":
            if key.limits.rpm:
                caps[(f"key:{key.key_id}", "requests")] = key.limits.rpm
            if key.limits.tpm:
                caps[(f"key:{key.key_id}", "tokens")] = key.limits.tpm
    for name, team_limits in teams.items():
        if period in team_limits.budgets_usd:
            caps[(f"team:{name}", "usd")] = team_limits.budgets_usd[period]
    return caps


def spend_report(
    rows: Sequence[LedgerRow], caps: Mapping[tuple[str, str], float]
) -> list[dict[str, Any]]:
    """One dict per ledger row: subject, metric, period, window, spent, held, cap (or None)."""
    out: list[dict[str, Any]] = []
    for r in rows:
        scale = 1_000_000 if r.metric == "usd" else 1  # the ledger counts micro-USD
        out.append(
            {
                "subject": r.subject,
                "metric": r.metric,
                "period": r.period,
                "window_start": r.start,
                "spent": r.spent / scale,
                "held": r.reserved / scale,
                "cap": caps.get((r.subject, r.metric)),
            }
        )
    return out
