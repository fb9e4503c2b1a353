"""The evaluation gate as a pure function: scores of candidate and champion -> a verdict.

Every threshold is optional; the gate passes when all that are set hold:

- ``min_mean``: the candidate's mean score;
- ``min_pass_rate``: the share of cases it scores at least ``pass_at`` on;
- ``min_win_rate``: the share of cases where it beats the champion (a tie counts half);
- ``max_regression``: the lower end of the ``confidence`` interval of the mean paired
  difference (candidate - champion) must be above ``-max_regression``: the candidate
  must not be credibly worse than the champion by more than that.

The interval is the normal approximation to the paired difference (as a paired
t-test would use at the sizes eval sets have); with fewer than two cases it is
the single difference itself.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["GatePolicy", "Verdict", "gate_verdict"]


@dataclass(frozen=True)
class GatePolicy:
    """When a candidate may replace the champion."""

    min_mean: float | None = None
    min_pass_rate: float | None = None
    pass_at: float = 1.0
    min_win_rate: float | None = None
    max_regression: float | None = 0.0
    confidence: float = 0.95


@dataclass(frozen=True)
class Verdict:
    """Whether the gate passed, why (or why not), and the figures behind it."""

    passed: bool
    reasons: tuple[str, ...]
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def explain(self) -> str:
        """Lines a person reads: the verdict, then each check."""
        head = "PASSED" if self.passed else "FAILED"
        return "\n".join([f"gate {head}", *(f"  - {r}" for r in self.reasons)])


def _interval(diffs: Sequence[float], confidence: float) -> tuple[float, float, float]:
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, mean, mean
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def gate_verdict(
    candidate: Sequence[float], champion: Sequence[float] | None, policy: GatePolicy
) -> Verdict:
    """Apply ``policy`` to per-case scores (``champion`` None: there is none yet)."""
    n = len(candidate)
    if n == 0:
        return Verdict(False, ("no cases were scored",))
    mean = statistics.fmean(candidate)
    pass_rate = sum(s >= policy.pass_at for s in candidate) / n
    stats: dict[str, Any] = {"cases": n, "candidate_mean": mean, "candidate_pass_rate": pass_rate}
    checks: list[tuple[bool, str]] = []
    if policy.min_mean is not None:
        checks.append((mean >= policy.min_mean, f"mean {mean:.3f} (needs >= {policy.min_mean})"))
    if policy.min_pass_rate is not None:
        checks.append(
            (
                pass_rate >= policy.min_pass_rate,
                f"pass rate {pass_rate:.3f} at score >= {policy.pass_at} "
                f"(needs >= {policy.min_pass_rate})",
            )
        )
    if champion is None:
        checks.append((True, "no champion yet: comparisons skipped"))
    else:
        if len(champion) != n:
            raise ValueError("candidate and champion must be scored on the same cases")
        diffs = [c - h for c, h in zip(candidate, champion, strict=True)]
        wins = sum(d > 0 for d in diffs)
        losses = sum(d < 0 for d in diffs)
        win_rate = (wins + 0.5 * (n - wins - losses)) / n
        diff, low, high = _interval(diffs, policy.confidence)
        stats.update(
            champion_mean=statistics.fmean(champion),
            wins=wins,
            losses=losses,
            ties=n - wins - losses,
            win_rate=win_rate,
            mean_difference=diff,
            difference_interval=[low, high],
        )
        if policy.min_win_rate is not None:
            checks.append(
                (
                    win_rate >= policy.min_win_rate,
                    f"win rate vs champion {win_rate:.3f} ({wins} wins, {losses} losses, "
                    f"ties count half; needs >= {policy.min_win_rate})",
                )
            )
        if policy.max_regression is not None:
            checks.append(
                (
                    low >= -policy.max_regression,
                    f"mean difference {diff:+.3f}, {policy.confidence:.0%} interval "
                    f"[{low:+.3f}, {high:+.3f}] (its lower end needs >= "
                    f"{-policy.max_regression:+.3f})",
                )
            )
    passed = all(ok for ok, _ in checks)
    reasons = tuple(f"{'ok  ' if ok else 'FAIL'} {text}" for ok, text in checks)
    return Verdict(passed, reasons, stats)
