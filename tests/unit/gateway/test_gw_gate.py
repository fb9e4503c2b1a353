"""The evaluation gate's policy and the built-in scorers, as pure functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mloop.errors import InvalidInput
from mloop.gateway import (
    Case,
    GatePolicy,
    exact_match,
    gate_verdict,
    json_schema_valid,
    load_cases,
    numeric_tolerance,
    regex_match,
)


def test_a_better_candidate_passes_every_check() -> None:
    policy = GatePolicy(min_mean=0.8, min_pass_rate=0.8, min_win_rate=0.6, max_regression=0.0)
    verdict = gate_verdict([1.0] * 18 + [0.0] * 2, [0.0] * 10 + [1.0] * 10, policy)
    assert verdict.passed
    assert (verdict.stats["wins"], verdict.stats["losses"], verdict.stats["ties"]) == (10, 2, 8)
    assert verdict.stats["win_rate"] == pytest.approx(0.7)  # ties count half
    low, high = verdict.stats["difference_interval"]
    assert 0 < low < verdict.stats["mean_difference"] < high


def test_a_failing_gate_says_which_check_failed_and_by_how_much() -> None:
    policy = GatePolicy(min_mean=0.9, min_win_rate=0.5)
    verdict = gate_verdict([1.0] * 5 + [0.0] * 5, [1.0] * 10, policy)
    assert not verdict.passed
    text = verdict.explain()
    assert text.startswith("gate FAILED")
    assert "FAIL mean 0.500 (needs >= 0.9)" in text
    assert "FAIL win rate vs champion 0.250" in text
    assert "FAIL mean difference -0.500" in text  # credibly worse than the champion


def test_noise_within_the_interval_is_not_a_regression() -> None:
    # One loss in twenty: the interval's lower end (-0.148) is within a 0.2 tolerance,
    # while a strict policy (no regression at all) refuses it.
    verdict = gate_verdict([1.0] * 19 + [0.0], [1.0] * 20, GatePolicy(max_regression=0.2))
    assert verdict.passed
    assert not gate_verdict([1.0] * 19 + [0.0], [1.0] * 20, GatePolicy()).passed


def test_without_a_champion_only_absolute_checks_apply() -> None:
    verdict = gate_verdict([1.0, 1.0], None, GatePolicy(min_mean=0.5, min_win_rate=0.9))
    assert verdict.passed and "no champion yet" in verdict.explain()
    assert not gate_verdict([], None, GatePolicy()).passed


def test_builtin_scorers() -> None:
    assert exact_match(Case("q", expected="Paris"), " Paris\n") == 1.0
    assert exact_match(Case("q", expected="Paris"), "paris") == 0.0
    assert regex_match(Case("q", expected=r"\bParis\b"), "It is Paris.") == 1.0
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    assert json_schema_valid(Case("q", extra={"schema": schema}), '{"city": "Paris"}') == 1.0
    assert json_schema_valid(Case("q", extra={"schema": schema}), '{"town": "Paris"}') == 0.0
    assert json_schema_valid(Case("q"), "not json") == 0.0
    close = numeric_tolerance(0.01)
    assert close(Case("q", expected=3.14159), "about 3.14 I think") == 1.0
    assert close(Case("q", expected=3.14159), "3.2") == 0.0
    assert close(Case("q", expected=1000), "1,000") == 1.0
    assert close(Case("q", expected=1), "none") == 0.0


def test_cases_load_from_jsonl_and_bad_lines_are_named(tmp_path: Path) -> None:
    good = tmp_path / "cases.jsonl"
    good.write_text(
        json.dumps({"input": "Capital of France?", "expected": "Paris"})
        + "\n\n"
        + json.dumps({"input": [{"role": "user", "content": "2+2"}], "rubric": "says 4"})
        + "\n"
    )
    cases = load_cases(good)
    assert [c.messages[-1]["content"] for c in cases] == ["Capital of France?", "2+2"]
    assert cases[1].rubric == "says 4"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "ok"}\n{"question": "no input"}\n')
    with pytest.raises(InvalidInput, match="line 2"):
        load_cases(bad)
