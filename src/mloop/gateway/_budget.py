"""Budgets as pure values: calendar windows, the charges one request reserves, the 429.

A request reserves, before its call, the most it can cost: every deployment of its
route priced at its prompt's token *bound* (a BPE token covers at least one byte,
so UTF-8 bytes plus a per-message allowance is never below what a provider counts)
plus ``max_tokens`` of completion. After the call it settles the real cost. Money is
counted in whole micro-USD so that sums are exact and "never over budget" means it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from mloop.auth import KeyLimits, Limits
from mloop.errors import Overloaded

__all__ = [
    "BudgetExceeded",
    "Charge",
    "Metric",
    "Period",
    "charges_for",
    "micro_usd",
    "prompt_token_bound",
    "tally_charges",
    "window",
]

Metric = Literal["usd", "requests", "tokens"]
Period = Literal["minute", "day", "week", "month"]

_PER_REQUEST = 3
_PER_MESSAGE = 8  # role, separators and name: OpenAI counts 3-4; generous on purpose


def micro_usd(usd: float) -> int:
    """USD as whole micro-dollars, rounded up (a reservation never falls short)."""
    return math.ceil(round(usd * 1_000_000, 6))


def window(period: Period, now: float) -> tuple[int, int]:
    """The UTC calendar window ``[start, end)`` (epoch seconds) containing ``now``."""
    if period == "minute":
        start = int(now // 60) * 60
        return start, start + 60
    day = int(now // 86400)
    if period == "day":
        return day * 86400, (day + 1) * 86400
    if period == "week":
        monday = day - (day + 3) % 7  # 1970-01-01 was a Thursday
        return monday * 86400, (monday + 7) * 86400
    moment = datetime.fromtimestamp(now, UTC)
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return int(first.timestamp()), int(following.timestamp())


@dataclass(frozen=True)
class Charge:
    """An amount held (and later settled) on one ledger row; ``cap`` None only counts."""

    subject: str  # "key:<id>", "team:<name>", "route:<name>", "deployment:<name>"
    metric: Metric
    period: Period
    start: int
    end: int
    amount: int
    cap: int | None = None

    @property
    def row(self) -> tuple[str, str, str, int]:
        """The ledger row this charge lands on."""
        return (self.subject, self.metric, self.period, self.start)


def prompt_token_bound(messages: Sequence[Mapping[str, Any]]) -> int:
    """At least as many prompt tokens as any BPE tokenizer counts for ``messages``."""
    total = _PER_REQUEST
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        total += _PER_MESSAGE + len(text.encode()) + len(str(message.get("name") or "").encode())
    return total


def _subject_charges(
    subject: str, limits: Limits, max_usd: int, max_tokens: int, now: float
) -> list[Charge]:
    out = []
    for period, usd in sorted(limits.budgets_usd.items()):
        start, end = window(period, now)  # type: ignore[arg-type]
        out.append(Charge(subject, "usd", period, start, end, max_usd, micro_usd(usd)))  # type: ignore[arg-type]
    start, end = window("minute", now)
    if limits.rpm:
        out.append(Charge(subject, "requests", "minute", start, end, 1, limits.rpm))
    if limits.tpm:
        out.append(Charge(subject, "tokens", "minute", start, end, max_tokens, limits.tpm))
    return out


def charges_for(key: KeyLimits, max_usd: int, max_tokens: int, now: float) -> list[Charge]:
    """What one request of this key reserves: its own and its team's capped rows."""
    charges = _subject_charges(f"key:{key.key_id}", key.limits, max_usd, max_tokens, now)
    if key.team is not None and key.team_limits is not None:
        charges += _subject_charges(f"team:{key.team}", key.team_limits, max_usd, max_tokens, now)
    return charges


def tally_charges(
    key_id: str, team: str | None, route: str, deployment: str | None, now: float
) -> list[Charge]:
    """Uncapped per-day USD rows that ``mloop gateway spend`` reports (settled only)."""
    start, end = window("day", now)
    subjects = [f"key:{key_id}", f"route:{route}"]
    if team:
        subjects.append(f"team:{team}")
    if deployment:
        subjects.append(f"deployment:{deployment}")
    return [Charge(s, "usd", "day", start, end, 0) for s in subjects]


_UNITS = {"usd": "USD", "requests": "requests", "tokens": "tokens"}


def _amount(metric: str, value: int) -> float:
    return round(value / 1_000_000, 6) if metric == "usd" else float(value)


class BudgetExceeded(Overloaded):
    """A key's or team's budget or RPM/TPM cap cannot take this request now (429)."""

    code = "budget_exceeded"

    def __init__(self, charge: Charge, used: int, now: float) -> None:
        assert charge.cap is not None
        unit = _UNITS[charge.metric]
        limit = _amount(charge.metric, charge.cap)
        used_v = _amount(charge.metric, used)
        remaining = max(0.0, round(limit - used_v, 6))
        need = _amount(charge.metric, charge.amount)
        resets = datetime.fromtimestamp(charge.end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        kind, _, who = charge.subject.partition(":")
        name = "budget" if charge.metric == "usd" else "cap"
        super().__init__(
            f"The {charge.period} {unit} {name} of {kind} {who!r} is reached: "
            f"{used_v:g} of {limit:g} {unit} used or held, {remaining:g} left, and this "
            f"request may need up to {need:g}. It resets at {resets}"
            + (
                "; ask for fewer max_tokens, or ask the operator to raise it "
                "(mloop gateway limit or mloop gateway team)."
                if charge.metric == "usd"
                else "."
            ),
            retry_after=max(0.0, charge.end - now),
            budget={"subject": charge.subject, "metric": charge.metric, "period": charge.period},
            limit=limit,
            used=used_v,
            remaining=remaining,
            requested=need,
            resets_at=resets,
        )
