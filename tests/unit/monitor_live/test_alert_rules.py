"""Alert rules: parsed from mloop.toml tables; evaluation is a pure state machine."""

from __future__ import annotations

import pytest

from mloop.errors import ConfigurationError
from mloop.monitor._alerts import (
    AlertRule,
    AlertState,
    Observation,
    evaluate_rule,
    parse_duration,
    rules_from_config,
)

RULE = AlertRule(name="drift", model="churn", metric="drift_share", threshold=0.3, for_=2,
                 window=3600.0, cooldown=7200.0)  # fmt: skip


def run(rule: AlertRule, values: list[float | None], start: float = 0.0) -> list[tuple[str, str]]:
    state, out = AlertState(), []
    for i, v in enumerate(values):
        end = start + (i + 1) * rule.window
        state, events = evaluate_rule(rule, state, Observation(end, v), now=end)
        out.append((state.status, ",".join(e.kind for e in events)))
    return out


def test_fires_after_for_consecutive_windows_and_resolves() -> None:
    assert run(RULE, [0.5, 0.5, 0.6, 0.1]) == [
        ("pending", ""),
        ("firing", "firing"),
        ("firing", ""),
        ("ok", "resolved"),
    ]


def test_a_good_window_resets_the_streak() -> None:
    assert [s for s, _ in run(RULE, [0.5, 0.1, 0.5, 0.5])] == ["pending", "ok", "pending", "firing"]


def test_windows_without_data_change_nothing() -> None:
    assert run(RULE, [0.5, None, 0.5]) == [("pending", ""), ("pending", ""), ("firing", "firing")]


def test_cooldown_suppresses_refiring_soon_after_the_last_fire() -> None:
    rule = AlertRule(name="r", model="m", metric="accuracy", op="<", threshold=0.8,
                     window=600.0, cooldown=3600.0)  # fmt: skip
    events = [e for _, e in run(rule, [0.7, 0.9, 0.7, 0.9, 0.9, 0.9, 0.9, 0.7])]
    assert events == ["firing", "resolved", "", "", "", "", "", "firing"]


def test_the_same_window_twice_counts_once() -> None:
    state = AlertState()
    state, _ = evaluate_rule(RULE, state, Observation(100.0, 0.9), now=100.0)
    again, events = evaluate_rule(RULE, state, Observation(100.0, 0.9), now=101.0)
    assert again == state and events == []


def test_rules_from_config_reads_alert_tables() -> None:
    rules = rules_from_config(
        {
            "alerts": [
                {
                    "name": "a",
                    "model": "churn",
                    "metric": "feature_drift:age",
                    "threshold": 0.2,
                    "window": "15m",
                    "for": 3,
                    "cooldown": "1h",
                    "op": ">=",
                },
            ]
        }
    )
    assert rules[0].window == 900.0 and rules[0].for_ == 3 and rules[0].cooldown == 3600.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"name": "a", "model": "m", "metric": "drift_share"}, "threshold"),
        ({"name": "a", "model": "m", "metric": "drift share", "threshold": 1}, "not known"),
        ({"name": "a", "model": "m", "metric": "rows", "threshold": 1, "op": "=="}, "op"),
        (
            {"name": "a", "model": "m", "metric": "rows", "threshold": 1, "window": "soon"},
            "duration",
        ),
    ],
)
def test_bad_alert_tables_say_what_to_fix(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        rules_from_config({"alerts": [table]})


def test_parse_duration() -> None:
    assert parse_duration("90s") == 90 and parse_duration("2d") == 172800 and parse_duration(5) == 5
