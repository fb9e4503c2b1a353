"""Policies are data: parsing, validation and JSON round-trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop.errors import InvalidInput
from mloop.rollout import (
    ABPolicy,
    BlueGreenPolicy,
    CanaryPolicy,
    Guard,
    Policy,
    ShadowPolicy,
    parse_duration,
    policy_from_dict,
    policy_to_dict,
)


def test_guard_parses_the_cli_form() -> None:
    guard = Guard.parse("p99_ms<50")
    assert guard == Guard("p99_ms", "<", 50.0)
    assert guard.holds(49.9) and not guard.holds(50.0)
    assert Guard.parse(" accuracy >= 0.9 ").holds(0.9)
    assert str(Guard.parse("error_rate<0.01")) == "error_rate<0.01"


@pytest.mark.parametrize("text", ["latency<5", "p99_ms<<5", "p99_ms<abc", "p99_ms", "p99_ms<inf"])
def test_bad_guards_say_what_is_allowed(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Guard.parse(text)
    assert "guard" in info.value.message.lower()


@pytest.mark.parametrize(
    ("text", "seconds"), [("10m", 600.0), ("30s", 30.0), ("2h", 7200.0), ("500ms", 0.5), ("7", 7.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(InvalidInput, match="10m"):
        parse_duration("ten minutes")


@pytest.mark.parametrize(
    "steps", [(), (5.0, 25.0), (50.0, 25.0, 100.0), (0.0, 100.0), (5.0, 150.0)]
)
def test_canary_steps_must_increase_to_100(steps: tuple[float, ...]) -> None:
    with pytest.raises(InvalidInput):
        CanaryPolicy(steps=steps)


def test_ab_needs_a_key_and_a_sane_split() -> None:
    with pytest.raises(InvalidInput, match="key"):
        ABPolicy(key="")
    with pytest.raises(InvalidInput, match="split"):
        ABPolicy(split=100)


def test_unknown_strategy() -> None:
    with pytest.raises(InvalidInput, match="canary"):
        policy_from_dict({"strategy": "yolo"})


_guards = st.lists(
    st.builds(
        Guard,
        st.sampled_from(["error_rate", "p99_ms", "accuracy_drop", "prediction_drift"]),
        st.sampled_from(["<", "<=", ">", ">="]),
        st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 6)),
    ),
    max_size=4,
).map(tuple)

_policies: st.SearchStrategy[Policy] = st.one_of(
    st.builds(ShadowPolicy, guards=_guards, duration_s=st.floats(1, 1e6), promote=st.booleans()),
    st.builds(
        CanaryPolicy,
        guards=_guards,
        steps=st.lists(st.floats(0.5, 99.0), max_size=4).map(lambda xs: (*sorted(set(xs)), 100.0)),
        step_duration_s=st.floats(1, 1e5),
        min_requests=st.integers(0, 10_000),
    ),
    st.builds(
        ABPolicy,
        guards=_guards,
        split=st.floats(1, 99),
        key=st.sampled_from(["user_id", "account"]),
        alpha=st.floats(0.001, 0.2),
    ),
    st.builds(BlueGreenPolicy, guards=_guards, hold_s=st.floats(1, 1e5)),
)


@given(_policies)
def test_every_policy_round_trips_through_json(policy: Policy) -> None:
    text = json.dumps(policy_to_dict(policy))
    assert policy_from_dict(json.loads(text)) == policy
