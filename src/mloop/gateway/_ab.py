"""Live A/B of two prompt versions, the pure part: experiments, arm assignment, decisions.

An experiment splits the traffic of one alias (``support-answer@production``) between
its control version and a candidate. Assignment is a hash of the experiment and a
sticky key (the caller's ``user``, else the API key, else the request id), so one user
sees one arm on every replica. Each answered request may get an outcome in [0, 1] (a
user's feedback, or a scorer applied to the answer); the shared mSPRT
(``mloop._sequential``) decides, valid however often it is looked at.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop._sequential import MetricSummary, Verdict, msprt
from mloop.errors import InvalidInput

__all__ = [
    "AbDecision",
    "Arm",
    "Experiment",
    "ab_decision",
    "assign_arm",
    "check_experiment",
]

Arm = Literal["control", "candidate"]
Status = Literal["running", "promoted", "stopped"]
Action = Literal["continue", "promote", "stop"]


@dataclass(frozen=True)
class Experiment:
    """One live A/B of a prompt alias: who is tested, how outcomes are measured, its state."""

    id: str
    prompt: str
    alias: str
    control: int
    candidate: int
    share: float  # of traffic sent to the candidate
    metric: str  # "feedback", or a scorer spec (exact, regex, json_schema, judge:ROUTE, ...)
    alpha: float = 0.05
    mde: float = 0.1  # the effect worth detecting, on the outcome's scale (the mSPRT's tau)
    min_samples: int = 100
    case: Mapping[str, Any] = field(default_factory=dict)  # expected / rubric / schema
    status: Status = "running"
    reason: str = ""
    created_at: float = 0.0
    ended_at: float | None = None
    created_by: str = "cli"

    @property
    def ref(self) -> str:
        """The alias under test, ``name@alias``."""
        return f"{self.prompt}@{self.alias}"

    def version(self, arm: Arm) -> int:
        """The prompt version an arm serves."""
        return self.candidate if arm == "candidate" else self.control

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"ref": self.ref}


def check_experiment(e: Experiment) -> None:
    """Refuse settings the test cannot run with, saying which value and what is allowed."""
    if e.control == e.candidate:
        raise InvalidInput(
            f"The candidate ({e.prompt}@{e.candidate}) is the control already; "
            "test a different version."
        )
    if not 0.0 < e.share < 1.0:
        raise InvalidInput(
            f"share={e.share} must be between 0 and 1 (the candidate's part of the traffic)."
        )
    if not 0.0 < e.alpha < 0.5:
        raise InvalidInput(f"alpha={e.alpha} must be between 0 and 0.5, e.g. 0.05.")
    if not (math.isfinite(e.mde) and e.mde > 0):
        raise InvalidInput(f"mde={e.mde} must be above 0: the smallest effect worth finding.")
    if e.min_samples < 2:
        raise InvalidInput(f"min_samples={e.min_samples} must be at least 2 per arm.")


def assign_arm(experiment_id: str, key: str, share: float) -> Arm:
    """The arm of ``key``: the same on every call and replica, candidate for ~``share`` of keys."""
    digest = hashlib.sha256(f"{experiment_id}\x00{key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2.0**64
    return "candidate" if point < share else "control"


@dataclass(frozen=True)
class AbDecision:
    """One look at an experiment: what to do, why, and the test's figures."""

    action: Action
    reason: str
    verdict: Verdict

    @property
    def p_value(self) -> float | None:
        """The always-valid p-value at this look (1 / likelihood ratio, at most 1)."""
        lr = self.verdict.likelihood_ratio
        return None if lr is None else min(1.0, 1.0 / lr) if lr > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "action": self.action,
            "reason": self.reason,
            "p_value": self.p_value,
            **self.verdict.to_dict(),
        }


def ab_decision(e: Experiment, control: MetricSummary, candidate: MetricSummary) -> AbDecision:
    """Promote when the candidate is better, stop when worse, else keep collecting outcomes."""
    v = msprt(control, candidate, alpha=e.alpha, tau=e.mde, min_samples=e.min_samples)
    if v.outcome == "insufficient_data":
        need = max(2, e.min_samples)
        return AbDecision(
            "continue",
            f"collecting outcomes: control {control.n}, candidate {candidate.n} "
            f"of at least {need} each",
            v,
        )
    assert v.mean_a is not None and v.mean_b is not None and v.low is not None
    assert v.high is not None
    figures = (
        f"{e.prompt}@{e.candidate} scored {v.mean_b:.3f} vs {v.mean_a:.3f} for "
        f"@{e.control} over {v.n_b}/{v.n_a} outcomes; always-valid {1 - e.alpha:.0%} "
        f"interval of the difference [{v.low:+.3f}, {v.high:+.3f}]"
    )
    if v.outcome == "b_better":
        return AbDecision("promote", f"live A/B: candidate better: {figures}", v)
    if v.outcome == "a_better":
        return AbDecision("stop", f"live A/B: candidate worse: {figures}", v)
    return AbDecision("continue", f"inconclusive so far: {figures}", v)
