"""A registered classifier and a helper that logs traffic for it, shared by monitor tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mloop._clock import ManualClock
from mloop.config import Settings, load_settings
from mloop.journal._log import PredictionLog
from mloop.registry import Predictor, Registry

START = 1_700_000_000.0 - (1_700_000_000.0 % 3600)


def make_data(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Features (age, income, plan) and a label that depends on age."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 10, n),
            "income": rng.normal(50, 15, n),
            "plan": rng.choice(["a", "b", "c"], n),
        }
    )
    y = np.where(frame["age"] + rng.normal(0, 5, n) > 40, "yes", "no")
    return frame, y


@dataclass
class World:
    """Settings, registry and the loaded production predictor of model ``churn``."""

    settings: Settings
    registry: Registry
    predictor: Predictor

    def log(self, log: PredictionLog, frame: pd.DataFrame, ts: float, batch: int = 1) -> list[str]:
        """Predict ``frame`` in requests of ``batch`` rows logged at ``ts``; return request ids."""
        ids = []
        for start in range(0, len(frame), batch):
            part = frame.iloc[start : start + batch]
            records: list[dict[str, Any]] = part.to_dict("records")
            out = self.predictor.predict(records).to_records()
            rid = uuid.uuid4().hex
            log.submit(
                {
                    "request_id": rid,
                    "ts": ts,
                    "model": "churn",
                    "version": self.predictor.version.version,
                    "inputs": records,
                    "outputs": out,
                    "latency_ms": 1.0,
                    "entity_keys": [f"e-{rid}-{i}" for i in range(len(records))],
                }
            )
            ids.append(rid)
        log.flush()
        return ids


def _world(home: Path, database_url: str | None = None) -> World:
    overrides: dict[str, Any] = {"home": home}
    if database_url:
        overrides["database_url"] = database_url
    settings = load_settings(env={}, **overrides)
    registry = Registry(settings, clock=ManualClock(START - 86400))
    x, y = make_data(3000, seed=0)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(x, y)
    registry.register(model, "churn", training_data=x, target=y, alias="production")
    return World(settings, registry, registry.load("churn"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A fresh home with ``churn`` v1 registered as production (SQLite + Parquet)."""
    w = _world(tmp_path_factory.mktemp("monitor") / "home")
    yield w
    w.registry.store.dispose()


@pytest.fixture
def pg_world(tmp_path: Path, postgres_url: str) -> Iterator[World]:
    """Like ``world`` but with PostgreSQL metadata, so the log compacts into tables."""
    w = _world(tmp_path / "home", postgres_url)
    yield w
    w.registry.store.dispose()
