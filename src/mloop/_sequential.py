"""mloop's own always-valid A/B test: a mixture sequential probability ratio test (mSPRT).

Pure and shared: rollouts test model versions with it, the gateway tests prompt versions.

The test follows Johari, Pekelis & Walsh, "Always Valid Inference" (2017): with a
normal mixing prior of variance tau^2 on the effect theta = mean_b - mean_a and the
estimate's variance V = var_a/n_a + var_b/n_b, the mixture likelihood ratio against
theta = 0 is

    L = sqrt(V / (V + tau^2)) * exp(tau^2 * theta_hat^2 / (2 V (V + tau^2)))

and rejecting when L >= 1/alpha keeps the false-positive rate at most alpha *no
matter how often the test is looked at*. Inverting it gives a confidence sequence
(an interval valid at every look). Peeking at a fixed-horizon t-test would inflate
the error rate many times over, which is why a dashboard that refreshes is safe here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["MetricSummary", "Verdict", "msprt"]

Outcome = Literal["insufficient_data", "inconclusive", "b_better", "a_better"]


@dataclass(frozen=True)
class MetricSummary:
    """Running summary of one outcome metric (e.g. conversion 0/1): count, mean, variance."""

    n: int = 0
    mean: float = 0.0
    variance: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> MetricSummary:
        """Summarise a list of values."""
        if not values:
            return cls()
        arr = np.asarray(values, dtype=float)
        var = float(arr.var(ddof=1)) if len(arr) > 1 else 0.0
        return cls(len(arr), float(arr.mean()), var)

    @classmethod
    def of_sums(cls, n: int, total: float, total_sq: float) -> MetricSummary:
        """Summarise from count, sum and sum of squares (what a SQL aggregate returns)."""
        if n <= 0:
            return cls()
        mean = total / n
        var = max(0.0, (total_sq - n * mean * mean) / (n - 1)) if n > 1 else 0.0
        return cls(n, mean, var)


@dataclass(frozen=True)
class Verdict:
    """Result of one look at an A/B test: outcome, effect (b - a) and an always-valid interval."""

    outcome: Outcome
    effect: float | None
    low: float | None
    high: float | None
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    likelihood_ratio: float | None
    relative_effect: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _variance(m: MetricSummary) -> float:
    # A 0/1 metric with all-equal early values has zero sample variance; a floor keeps
    # V > 0 so the statistic is defined (the Bernoulli variance at p=0.5/n is tiny).
    return max(m.variance, 1e-9)


def msprt(
    a: MetricSummary, b: MetricSummary, *, alpha: float, tau: float, min_samples: int
) -> Verdict:
    """Always-valid test of ``mean_b - mean_a`` with mixing scale ``tau`` (the expected effect)."""
    if a.n < max(2, min_samples) or b.n < max(2, min_samples):
        return Verdict(
            "insufficient_data",
            None,
            None,
            None,
            a.n,
            b.n,
            a.mean if a.n else None,
            b.mean if b.n else None,
            None,
        )
    tau2 = tau * tau
    v = _variance(a) / a.n + _variance(b) / b.n
    theta = b.mean - a.mean
    log_lr = 0.5 * math.log(v / (v + tau2)) + tau2 * theta * theta / (2 * v * (v + tau2))
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((v + tau2) / v)))
    if log_lr >= math.log(1 / alpha):
        outcome: Outcome = "b_better" if theta > 0 else "a_better"
    else:
        outcome = "inconclusive"
    relative = theta / a.mean if a.mean else None
    return Verdict(
        outcome,
        theta,
        theta - half,
        theta + half,
        a.n,
        b.n,
        a.mean,
        b.mean,
        math.exp(min(log_lr, 700.0)),
        relative,
    )
