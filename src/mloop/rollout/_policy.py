"""Rollout policies as data: frozen dataclasses that round-trip through JSON.

A policy says *what* a rollout should do (strategy, steps, guards, test
parameters); the pure ``next_step`` function decides *when*. Guards are parsed
from short expressions such as ``error_rate<0.01`` or ``p99_ms<50``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeAlias

from mloop._duration import parse_duration
from mloop.errors import InvalidInput

__all__ = [
    "GUARD_METRICS",
    "ABPolicy",
    "BlueGreenPolicy",
    "CanaryPolicy",
    "Guard",
    "Policy",
    "ShadowPolicy",
    "Strategy",
    "parse_duration",
    "policy_from_dict",
    "policy_to_dict",
]

Strategy = Literal["shadow", "canary", "ab", "blue-green"]

# metric name -> what it means; every guard names one of these (all about the candidate).
GUARD_METRICS: Mapping[str, str] = {
    "error_rate": "failed requests / requests of the candidate",
    "p50_ms": "median latency of the candidate (ms)",
    "p99_ms": "99th percentile latency of the candidate (ms)",
    "p99_delta_ms": "candidate p99 minus stable p99 (ms)",
    "prediction_drift": "drift of the candidate's predictions from its reference",
    "accuracy": "realized accuracy of the candidate from feedback labels",
    "accuracy_drop": "stable realized accuracy minus candidate realized accuracy",
    "estimated_accuracy": "label-free estimated accuracy of the candidate",
    "estimated_accuracy_drop": "stable estimated accuracy minus candidate estimated accuracy",
    "agreement": "share of shadow pairs where candidate and stable agree",
}

_GUARD_RE = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Guard:
    """A condition on one metric of the candidate that must hold, e.g. ``p99_ms < 50``."""

    metric: str
    op: Literal["<", "<=", ">", ">="]
    threshold: float

    def __post_init__(self) -> None:
        if self.metric not in GUARD_METRICS:
            raise InvalidInput(
                f"Unknown guard metric {self.metric!r}; known: {', '.join(sorted(GUARD_METRICS))}."
            )
        if self.op not in ("<", "<=", ">", ">="):
            raise InvalidInput(f"Guard operator {self.op!r} is not one of <, <=, >, >=.")
        if not math.isfinite(self.threshold):
            raise InvalidInput(f"Guard threshold {self.threshold!r} must be a finite number.")

    @classmethod
    def parse(cls, text: str) -> Guard:
        """Parse ``"error_rate<0.01"``; the metric must be one of ``GUARD_METRICS``."""
        match = _GUARD_RE.match(text)
        if match is None:
            raise InvalidInput(
                f"Guard {text!r} is not understood; write <metric><op><number>, "
                f"e.g. error_rate<0.01 or p99_ms<50 (ops: <, <=, >, >=)."
            )
        metric, op, number = match.groups()
        try:
            threshold = float(number)
        except ValueError:
            raise InvalidInput(f"Guard {text!r}: {number!r} is not a number.") from None
        return cls(metric, op, threshold)  # type: ignore[arg-type]

    def holds(self, value: float) -> bool:
        """True when ``value`` satisfies the guard."""
        if self.op == "<":
            return value < self.threshold
        if self.op == "<=":
            return value <= self.threshold
        if self.op == ">":
            return value > self.threshold
        return value >= self.threshold

    def __str__(self) -> str:
        short = f"{self.threshold:g}"
        number = short if float(short) == self.threshold else repr(self.threshold)
        return f"{self.metric}{self.op}{number}"


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise InvalidInput(f"{name} must be a positive number, got {value!r}.")


@dataclass(frozen=True)
class _Common:
    guards: tuple[Guard, ...] = ()
    # per step (shadow: shadow pairs), before request-based guards count or a step passes
    min_requests: int = 100
    min_labels: int = 50  # before accuracy guards count
    interval_s: float = 30.0  # how often the controller evaluates

    def _validate_common(self) -> None:
        _check_positive("min_requests", self.min_requests, allow_zero=True)
        _check_positive("min_labels", self.min_labels, allow_zero=True)
        _check_positive("interval_s", self.interval_s)


@dataclass(frozen=True)
class ShadowPolicy(_Common):
    """Mirror live traffic to the candidate off the request path; users see only stable."""

    strategy: Literal["shadow"] = field(default="shadow", init=False)
    duration_s: float = 3600.0
    promote: bool = False  # promote when the shadow period ends with guards holding
    # A policy (as ``policy_to_dict`` writes it) the controller starts for the same
    # candidate when the shadow completes with guards holding, e.g. a canary.
    then: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        self._validate_common()
        _check_positive("duration_s", self.duration_s)
        if self.then is not None:
            if self.promote:
                raise InvalidInput("A shadow that promotes cannot also hand over to 'then'.")
            follow = policy_from_dict(self.then)
            if isinstance(follow, ShadowPolicy):
                raise InvalidInput("A shadow's 'then' must be a canary, A/B or blue-green policy.")


@dataclass(frozen=True)
class CanaryPolicy(_Common):
    """Move traffic to the candidate step by step while guards hold; roll back on breach."""

    strategy: Literal["canary"] = field(default="canary", init=False)
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    step_duration_s: float = 600.0

    def __post_init__(self) -> None:
        self._validate_common()
        _check_positive("step_duration_s", self.step_duration_s)
        if not self.steps:
            raise InvalidInput("A canary needs at least one step, e.g. --steps 5,25,50,100.")
        if any(not (0 < s <= 100) for s in self.steps) or list(self.steps) != sorted(self.steps):
            raise InvalidInput(
                f"Canary steps {list(self.steps)} must be increasing percentages in (0, 100]."
            )
        if self.steps[-1] != 100:
            raise InvalidInput(
                f"The last canary step is {self.steps[-1]:g}%; it must be 100 to promote."
            )


@dataclass(frozen=True)
class ABPolicy(_Common):
    """Split traffic by a sticky key and compare a metric with an always-valid sequential test."""

    strategy: Literal["ab"] = field(default="ab", init=False)
    split: float = 50.0  # percent of keys sent to arm "b" (the candidate)
    key: str = "user_id"
    metric: str = "conversion"
    alpha: float = 0.05
    mde: float = 0.02  # effect size the mixing prior is tuned for (absolute, metric units)
    min_samples: int = 200  # per arm, before any verdict
    max_duration_s: float = 14 * 86400.0
    promote: bool = True  # promote "b" when it is significantly better

    def __post_init__(self) -> None:
        self._validate_common()
        if not (0 < self.split < 100):
            raise InvalidInput(f"A/B split {self.split!r} must be a percentage in (0, 100).")
        if not (0 < self.alpha < 0.5):
            raise InvalidInput(f"alpha {self.alpha!r} must be in (0, 0.5), e.g. 0.05.")
        _check_positive("mde", self.mde)
        _check_positive("min_samples", self.min_samples)
        _check_positive("max_duration_s", self.max_duration_s)
        if not self.key:
            raise InvalidInput("An A/B test needs a --key (e.g. user_id) for sticky assignment.")


@dataclass(frozen=True)
class BlueGreenPolicy(_Common):
    """Warm the candidate, switch all traffic at once, keep stable warm for instant rollback."""

    strategy: Literal["blue-green"] = field(default="blue-green", init=False)
    hold_s: float = 600.0  # how long stable stays warm after the switch

    def __post_init__(self) -> None:
        self._validate_common()
        _check_positive("hold_s", self.hold_s)


Policy: TypeAlias = ShadowPolicy | CanaryPolicy | ABPolicy | BlueGreenPolicy

_BY_STRATEGY: dict[str, type[Any]] = {
    "shadow": ShadowPolicy,
    "canary": CanaryPolicy,
    "ab": ABPolicy,
    "blue-green": BlueGreenPolicy,
}


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    """A JSON-ready dict; ``policy_from_dict`` reverses it."""
    data = asdict(policy)
    data["guards"] = [str(g) for g in policy.guards]
    if isinstance(policy, CanaryPolicy):
        data["steps"] = list(policy.steps)
    return data


def policy_from_dict(data: Mapping[str, Any]) -> Policy:
    """Rebuild a policy from ``policy_to_dict`` output."""
    values = dict(data)
    strategy = values.pop("strategy", None)
    cls = _BY_STRATEGY.get(str(strategy))
    if cls is None:
        raise InvalidInput(
            f"Unknown rollout strategy {strategy!r}; use one of {', '.join(_BY_STRATEGY)}."
        )
    values["guards"] = tuple(
        g if isinstance(g, Guard) else Guard.parse(str(g)) for g in values.get("guards", ())
    )
    if "steps" in values:
        values["steps"] = tuple(float(s) for s in values["steps"])
    try:
        policy: Policy = cls(**values)
    except TypeError as exc:
        raise InvalidInput(f"Invalid {strategy} policy: {exc}") from exc
    return policy
