"""The always-valid A/B test keeps its error rate under repeated looks and finds real effects."""

from __future__ import annotations

import numpy as np

from mloop.rollout import MetricSummary, msprt


def _summary(x: np.ndarray) -> MetricSummary:
    return MetricSummary(len(x), float(x.mean()), float(x.var(ddof=1)))


def _ever_rejects(rng: np.random.Generator, p_a: float, p_b: float, looks: int, step: int) -> bool:
    a = rng.random(looks * step) < p_a
    b = rng.random(looks * step) < p_b
    for k in range(1, looks + 1):
        n = k * step
        v = msprt(_summary(a[:n]), _summary(b[:n]), alpha=0.05, tau=0.02, min_samples=100)
        if v.outcome in ("a_better", "b_better"):
            return True
    return False


def test_peeking_every_100_samples_keeps_false_positives_under_alpha() -> None:
    rng = np.random.default_rng(7)
    runs = 200
    false_positives = sum(_ever_rejects(rng, 0.1, 0.1, looks=40, step=100) for _ in range(runs))
    # alpha = 0.05 holds at every look; allow sampling noise of the 200-run estimate.
    assert false_positives / runs <= 0.08


def test_a_real_lift_is_found() -> None:
    rng = np.random.default_rng(11)
    found = sum(_ever_rejects(rng, 0.10, 0.13, looks=40, step=250) for _ in range(20))
    assert found >= 18


def test_interval_contains_the_estimate_and_shrinks_with_data() -> None:
    small = msprt(
        MetricSummary(500, 0.1, 0.09),
        MetricSummary(500, 0.12, 0.1056),
        alpha=0.05,
        tau=0.02,
        min_samples=100,
    )
    large = msprt(
        MetricSummary(50_000, 0.1, 0.09),
        MetricSummary(50_000, 0.12, 0.1056),
        alpha=0.05,
        tau=0.02,
        min_samples=100,
    )
    for v in (small, large):
        assert v.low is not None and v.high is not None and v.effect is not None
        assert v.low < v.effect < v.high
    assert (large.high - large.low) < (small.high - small.low)  # type: ignore[operator]
    assert large.outcome == "b_better" and small.outcome == "inconclusive"
    assert large.relative_effect is not None and abs(large.relative_effect - 0.2) < 1e-9


def test_below_min_samples_there_is_no_verdict() -> None:
    v = msprt(
        MetricSummary(99, 0.0, 0.0),
        MetricSummary(99, 1.0, 0.0),
        alpha=0.05,
        tau=0.02,
        min_samples=100,
    )
    assert v.outcome == "insufficient_data" and v.effect is None
