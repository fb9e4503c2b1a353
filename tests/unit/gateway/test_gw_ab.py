"""Live A/B's pure core: sticky, deterministic assignment near the configured share, and the
decision (promote / stop / keep collecting) with a reason that carries the figures."""

from __future__ import annotations

import pytest

from mloop._sequential import MetricSummary
from mloop.errors import InvalidInput
from mloop.gateway import Experiment, ab_decision, assign_arm
from mloop.gateway._ab import check_experiment
from mloop.gateway._ab_http import ab_key, parse_feedback


def experiment(**changes: object) -> Experiment:
    base: dict[str, object] = {
        "id": "ab_1",
        "prompt": "support-answer",
        "alias": "production",
        "control": 1,
        "candidate": 2,
        "share": 0.5,
        "metric": "feedback",
        "min_samples": 50,
    }
    return Experiment(**(base | changes))  # type: ignore[arg-type]


def test_assignment_is_sticky_and_the_same_on_every_call() -> None:
    keys = [f"user:{i}" for i in range(500)]
    first = [assign_arm("ab_1", k, 0.3) for k in keys]
    assert first == [assign_arm("ab_1", k, 0.3) for k in keys]


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5, 0.9])
def test_the_candidate_gets_close_to_its_share(share: float) -> None:
    arms = [assign_arm("ab_7f3", f"request:{i}", share) for i in range(20_000)]
    assert arms.count("candidate") / len(arms) == pytest.approx(share, abs=0.015)


def test_a_bigger_share_only_moves_keys_towards_the_candidate() -> None:
    keys = [f"key:{i}" for i in range(2_000)]
    small = {k for k in keys if assign_arm("ab_1", k, 0.2) == "candidate"}
    large = {k for k in keys if assign_arm("ab_1", k, 0.6) == "candidate"}
    assert small < large  # raising the share never flips a candidate user back


def test_experiments_split_independently() -> None:
    keys = [f"user:{i}" for i in range(4_000)]
    a = [assign_arm("ab_a", k, 0.5) for k in keys]
    b = [assign_arm("ab_b", k, 0.5) for k in keys]
    same = sum(x == y for x, y in zip(a, b, strict=True)) / len(keys)
    assert same == pytest.approx(0.5, abs=0.04)


def test_too_few_outcomes_keeps_collecting_whatever_the_means() -> None:
    d = ab_decision(experiment(), MetricSummary(49, 0.1, 0.09), MetricSummary(60, 0.9, 0.09))
    assert d.action == "continue" and "49" in d.reason and d.p_value is None


def test_a_clearly_better_candidate_is_promoted_with_its_figures() -> None:
    d = ab_decision(experiment(), MetricSummary(200, 0.5, 0.25), MetricSummary(200, 0.8, 0.16))
    assert d.action == "promote"
    assert d.reason.startswith("live A/B: candidate better: support-answer@2 scored 0.800")
    assert d.p_value is not None and d.p_value < 0.05
    assert d.to_dict()["outcome"] == "b_better"


def test_a_clearly_worse_candidate_is_stopped() -> None:
    d = ab_decision(experiment(), MetricSummary(200, 0.8, 0.16), MetricSummary(200, 0.5, 0.25))
    assert d.action == "stop" and d.reason.startswith("live A/B: candidate worse")


def test_equal_arms_stay_inconclusive() -> None:
    d = ab_decision(experiment(), MetricSummary(300, 0.6, 0.24), MetricSummary(300, 0.6, 0.24))
    assert d.action == "continue" and "inconclusive" in d.reason
    assert d.p_value is not None and d.p_value > 0.05


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"candidate": 1}, "control already"),
        ({"share": 1.0}, "share=1.0"),
        ({"alpha": 0.0}, "alpha=0.0"),
        ({"mde": -1.0}, "mde=-1.0"),
        ({"min_samples": 1}, "min_samples=1"),
    ],
)
def test_settings_the_test_cannot_run_with_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_experiment(experiment(**changes))


def test_the_sticky_key_prefers_the_user_then_the_api_key_then_the_request() -> None:
    assert ab_key({"user": "u1"}, "k1", "r1") == "user:u1"
    assert ab_key({}, "k1", "r1") == "key:k1"
    assert ab_key({"user": 5}, None, "r1") == "request:r1"


def test_feedback_bodies() -> None:
    assert parse_feedback({"request_id": "r", "thumbs": "up"}) == (1.0, "r", None)
    assert parse_feedback({"id": "chatcmpl-1", "score": 0.25}) == (0.25, None, "chatcmpl-1")
    for body, message in [
        ({"thumbs": "up"}, "request_id"),
        ({"request_id": "r", "thumbs": "meh"}, "'up' or 'down'"),
        ({"request_id": "r", "thumbs": ["up"]}, "'up' or 'down'"),  # not a 500
        ({"request_id": "r", "thumbs": {"up": 1}}, "'up' or 'down'"),
        ({"request_id": "r", "score": 2}, "between 0 and 1"),
        ({"request_id": "r", "score": True}, "number from 0 to 1"),
        ({"request_id": "r"}, "number from 0 to 1"),
        ({"request_id": 7, "score": 1}, "text of an id"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            parse_feedback(body)
