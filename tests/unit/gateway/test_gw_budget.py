"""Budget arithmetic: UTC windows, the prompt bound, what a request reserves, the 429 body."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mloop.auth import KeyLimits, Limits, parse_budgets
from mloop.errors import InvalidInput
from mloop.gateway._budget import BudgetExceeded, charges_for, micro_usd, prompt_token_bound, window
from mloop.gateway.testing import mock_tokens


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_windows_are_utc_calendar_day_week_from_monday_and_month() -> None:
    now = ts(2026, 12, 31, 15, 30)  # a Thursday
    assert window("minute", now) == (int(ts(2026, 12, 31, 15, 30)), int(ts(2026, 12, 31, 15, 31)))
    assert window("day", now) == (int(ts(2026, 12, 31)), int(ts(2027, 1, 1)))
    assert window("week", now) == (int(ts(2026, 12, 28)), int(ts(2027, 1, 4)))
    assert window("month", now) == (int(ts(2026, 12, 1)), int(ts(2027, 1, 1)))
    assert window("month", ts(2027, 2, 10)) == (int(ts(2027, 2, 1)), int(ts(2027, 3, 1)))


def test_money_is_whole_micro_usd_rounded_up() -> None:
    assert micro_usd(0.083) == 83_000
    assert micro_usd(0.0000001) == 1
    assert micro_usd(0.0) == 0


@pytest.mark.parametrize("text", ["", "hi", "x" * 1000, "héllo wörld " * 20, "日本語のテキスト"])
def test_the_prompt_bound_is_never_below_a_providers_count(text: str) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    assert prompt_token_bound(messages) >= mock_tokens(messages)


def test_a_request_reserves_on_its_keys_and_its_teams_capped_rows() -> None:
    key = KeyLimits(
        "k1",
        Limits(rpm=10, tpm=1000, budgets_usd={"day": 5.0, "month": 50.0}),
        team="search",
        team_limits=Limits(budgets_usd={"week": 100.0}),
    )
    charges = charges_for(key, max_usd=83_000, max_tokens=66, now=ts(2026, 12, 4, 12))
    got = {(c.subject, c.metric, c.period): (c.amount, c.cap) for c in charges}
    assert got == {
        ("key:k1", "usd", "day"): (83_000, 5_000_000),
        ("key:k1", "usd", "month"): (83_000, 50_000_000),
        ("key:k1", "requests", "minute"): (1, 10),
        ("key:k1", "tokens", "minute"): (66, 1000),
        ("team:search", "usd", "week"): (83_000, 100_000_000),
    }


def test_the_429_says_which_budget_how_much_is_left_and_when_it_resets() -> None:
    now = ts(2026, 12, 4, 12)
    charge = charges_for(KeyLimits("k1", Limits(budgets_usd={"day": 1.0})), 83_000, 66, now)[0]
    err = BudgetExceeded(charge, used=950_000, now=now).to_dict()["error"]
    assert err["code"] == "budget_exceeded" and err["type"] == "retryable"
    assert err["budget"] == {"subject": "key:k1", "metric": "usd", "period": "day"}
    assert (err["limit"], err["used"], err["remaining"]) == (1.0, 0.95, 0.05)
    assert err["requested"] == 0.083
    assert err["resets_at"] == "2026-12-05T00:00:00Z"
    assert err["retry_after"] == 12 * 3600
    assert "0.05 left" in err["message"]


def test_budgets_parse_from_the_command_line_and_refuse_nonsense() -> None:
    assert parse_budgets(["day=5", "month=100.5"]) == {"day": 5.0, "month": 100.5}
    for bad in ("year=5", "day=-1", "day", "day=abc"):
        with pytest.raises(InvalidInput):
            parse_budgets([bad])
    with pytest.raises(InvalidInput):
        Limits(budgets_usd={"day": float("nan")})
