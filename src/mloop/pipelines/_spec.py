"""A retraining pipeline declared in Python: load data for a window, train, evaluate."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mloop._duration import parse_duration
from mloop.errors import InvalidInput, NotFound
from mloop.pipelines._gate import GateConfig
from mloop.pipelines._triggers import TriggerConfig
from mloop.pipelines._validation import ValidationConfig

__all__ = [
    "Pipeline",
    "RolloutConfig",
    "TrainingData",
    "Window",
    "load_pipeline",
    "parse_seconds",
    "pipeline_from_table",
]


def parse_seconds(value: str | float) -> float:
    """Seconds from ``30``, ``"45s"``, ``"10m"``, ``"6h"``, ``"30d"`` or ``"2w"``."""
    return parse_duration(value)


@dataclass(frozen=True)
class Window:
    """The time range a run trains on: ``start <= ts < end`` (epoch seconds)."""

    start: float
    end: float


@dataclass(frozen=True)
class TrainingData:
    """What ``train`` receives: the rows, split into features ``X`` and labels ``y``."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    target: str
    window: Window

    @property
    def X(self) -> pd.DataFrame:
        """Feature columns in contract order."""
        return self.frame[list(self.features)]

    @property
    def y(self) -> pd.Series:
        """The labels."""
        return self.frame[self.target]


@dataclass(frozen=True)
class RolloutConfig:
    """How a challenger that passed the gate reaches traffic."""

    strategy: str = "shadow-then-canary"  # or "shadow", "canary", "blue-green", "none"
    policy: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutConfig:
        """Build from a ``[pipelines.rollout]`` table (unknown keys go to ``policy``)."""
        values = dict(data)
        strategy = str(values.pop("strategy", cls.strategy))
        policy = dict(values.pop("policy", {}))
        policy.update(values)
        return cls(strategy=strategy, policy=policy)


Loader = Callable[[Window], pd.DataFrame]
Trainer = Callable[[TrainingData], Any]
Evaluator = Callable[[Any, pd.DataFrame], Mapping[str, float]]


@dataclass(frozen=True)
class Pipeline:
    """A retraining pipeline for the registered model ``model``.

    ``load(window)`` returns a frame with the feature columns, ``target`` and (for the
    holdout by time) ``time_column``; without ``load`` the run uses mloop's own
    prediction log joined with feedback. ``train(data)`` returns a fitted model;
    ``evaluate(model, holdout)`` may add metrics the gate's business rules use.
    """

    name: str
    model: str
    train: Trainer
    load: Loader | None = None
    target: str = "label"
    time_column: str | None = "ts"
    features: tuple[str, ...] | None = None  # default: the champion's contract, else all columns
    window: float = 30 * 86400.0
    evaluate: Evaluator | None = None
    triggers: TriggerConfig = field(default_factory=TriggerConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    params: Mapping[str, Any] = field(default_factory=dict)
    max_attempts: int = 3  # per step, on RetryableError
    backoff_s: float = 1.0  # first retry delay; doubles each attempt
    source: str = ""  # "module:attr" it was imported from, if any

    def __post_init__(self) -> None:
        from mloop.registry import validate_name

        validate_name(self.name, "pipeline name")
        validate_name(self.model)
        if self.max_attempts < 1:
            raise InvalidInput(f"max_attempts must be at least 1; got {self.max_attempts}.")
        if not callable(self.train):
            raise InvalidInput(
                f"Pipeline {self.name!r}: train must be a function train(data) -> model."
            )

    def with_options(self, **changes: Any) -> Pipeline:
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)


def load_pipeline(path: str) -> Pipeline:
    """Import ``"package.module:attr"``: a ``Pipeline`` or a function returning one."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InvalidInput(f"Pipeline path {path!r} must look like 'package.module:attr'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFound(
            f"Cannot import module {module_name!r} for pipeline {path!r}: {exc}. "
            "Is it on PYTHONPATH (run mloop from the project folder)?"
        ) from exc
    try:
        obj: Any = getattr(module, attr)
    except AttributeError:
        raise NotFound(f"Module {module_name!r} has no attribute {attr!r}.") from None
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = obj()
    if not isinstance(obj, Pipeline):
        raise InvalidInput(
            f"{path} is a {type(obj).__name__}, not an mloop.pipelines.Pipeline "
            "(or a function returning one)."
        )
    return obj.with_options(source=path)


def pipeline_from_table(table: Mapping[str, Any]) -> Pipeline:
    """One ``[[pipelines]]`` entry of ``mloop.toml``: ``path`` plus optional overrides."""
    if "path" not in table:
        raise InvalidInput(
            "Each [[pipelines]] entry needs path = 'package.module:attr'; "
            f"got keys {sorted(table)}."
        )
    pipeline = load_pipeline(str(table["path"]))
    changes: dict[str, Any] = {}
    for key in ("name", "model", "target", "time_column", "max_attempts"):
        if key in table:
            changes[key] = table[key]
    if "window" in table:
        changes["window"] = parse_seconds(table["window"])
    if "backoff" in table:
        changes["backoff_s"] = parse_seconds(table["backoff"])
    if "features" in table:
        changes["features"] = tuple(table["features"])
    if "triggers" in table:
        changes["triggers"] = TriggerConfig.from_dict(_durations(table["triggers"]))
    if "validation" in table:
        changes["validation"] = ValidationConfig.from_dict(table["validation"])
    if "gate" in table:
        changes["gate"] = GateConfig.from_dict(table["gate"])
    if "rollout" in table:
        changes["rollout"] = RolloutConfig.from_dict(table["rollout"])
    return pipeline.with_options(**changes)


def _durations(table: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(table)
    for short, full in (("cooldown", "cooldown_s"), ("dedup_window", "dedup_window_s")):
        if short in values:
            values[full] = parse_seconds(values.pop(short))
    return values
