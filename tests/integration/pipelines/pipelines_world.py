"""Shared pieces of the pipelines integration tests: a small synthetic classification world, a fake rollout starter."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from mloop.pipelines import GateConfig, Pipeline, TrainingData, TriggerConfig, Window

T0 = 1_767_225_600.0


def world(n: int, seed: int, start: float, shift: float = 0.0) -> pd.DataFrame:
    """Labels follow x1 + x2 > shift; ``ts`` spreads rows over one day from ``start``."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    label = np.where(x1 + x2 + rng.normal(scale=0.2, size=n) > shift, "yes", "no")
    ts = start + np.sort(rng.uniform(0, 86400, n))
    return pd.DataFrame({"x1": x1, "x2": x2, "label": label, "ts": ts})


def train(data: TrainingData) -> Any:
    return LogisticRegression().fit(data.X, data.y)


class FakeRollout:
    """Records what the runner asked for (the rollout area satisfies the same Protocol)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int, str, dict[str, Any]]] = []

    def start(self, model: str, version: int, strategy: str, **policy: Any) -> Any:
        self.started.append((model, version, strategy, policy))
        return f"rollout-{len(self.started)}"


def make_pipeline(load: Any, **changes: Any) -> Pipeline:
    base = Pipeline(
        name="churn-retrain",
        model="churn",
        train=train,
        load=load,
        target="label",
        features=("x1", "x2"),
        window=86400.0,
        triggers=TriggerConfig(cooldown_s=3600),
        gate=GateConfig(min_improvement=0.0),
        backoff_s=2.0,
    )
    return base.with_options(**changes)


def loader(frame: pd.DataFrame) -> Any:
    def load(window: Window) -> pd.DataFrame:
        return frame[(frame["ts"] >= window.start) & (frame["ts"] < window.end)]

    return load
