"""The gate: margin on the chosen metric, slices, latency and size budgets, business rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInput
from mloop.flavors import Predictions
from mloop.pipelines import GateConfig, SliceScore, gate_decision, slice_scores, time_holdout


def passed(report, name):  # type: ignore[no-untyped-def]
    return next(c for c in report.checks if c.name == name).passed


def test_the_challenger_must_beat_the_champion_by_the_margin() -> None:
    config = GateConfig(min_improvement=0.02)
    win = gate_decision(
        config, task="classification", challenger={"accuracy": 0.93}, champion={"accuracy": 0.90}
    )
    assert win.passed
    tie = gate_decision(
        config, task="classification", challenger={"accuracy": 0.91}, champion={"accuracy": 0.90}
    )
    assert not tie.passed and "need" in tie.failures[0].message


def test_lower_is_better_metrics_flip_the_direction() -> None:
    config = GateConfig(min_improvement=0.1)
    report = gate_decision(
        config, task="regression", challenger={"rmse": 1.0}, champion={"rmse": 1.5}
    )
    assert report.passed and report.metrics["metric"] == "rmse"


def test_no_champion_means_nothing_to_beat() -> None:
    report = gate_decision(
        GateConfig(), task="classification", challenger={"accuracy": 0.5}, champion=None
    )
    assert report.passed


def test_a_slice_regression_beyond_tolerance_fails() -> None:
    config = GateConfig(min_improvement=0.0, slice_tolerance=0.02)
    slices = [
        SliceScore("region", "eu", 100, 0.80, 0.90),
        SliceScore("region", "us", 100, 0.95, 0.90),
    ]
    report = gate_decision(
        config,
        task="classification",
        challenger={"accuracy": 0.9},
        champion={"accuracy": 0.88},
        slices=slices,
    )
    assert not passed(report, "slice:region=eu") and passed(report, "slice:region=us")


def test_latency_size_and_business_thresholds() -> None:
    config = GateConfig(
        min_improvement=0.0,
        max_latency_p95_ms=5.0,
        max_size_bytes=1000,
        require={"accuracy": ">=0.95", "recall": ">0.5"},
    )
    report = gate_decision(
        config,
        task="classification",
        challenger={"accuracy": 0.96},
        champion={"accuracy": 0.9},
        latency_p95_ms=7.5,
        size_bytes=500,
    )
    assert not passed(report, "latency_p95_ms")
    assert passed(report, "size_bytes")
    assert passed(report, "require:accuracy")
    assert not passed(report, "require:recall")  # not measured: a go/no-go rule cannot pass blind


def test_bad_config_is_refused() -> None:
    with pytest.raises(InvalidInput):
        GateConfig(metric="nope")
    with pytest.raises(InvalidInput):
        GateConfig(require={"accuracy": "about 0.9"})


def test_the_holdout_is_the_freshest_rows() -> None:
    frame = pd.DataFrame({"ts": np.arange(100)[::-1].astype(float), "x": range(100)})
    train, holdout = time_holdout(frame, "ts", 0.2, 10)
    assert holdout["ts"].min() > train["ts"].max()
    assert len(holdout) == 20
    with pytest.raises(InvalidInput, match="holdout"):
        time_holdout(frame.iloc[:10], "ts", 0.2, 10)


def test_slice_scores_per_value() -> None:
    holdout = pd.DataFrame({"region": ["eu"] * 4 + ["us"] * 4, "y": ["a", "b"] * 4})
    good = Predictions(
        "classification", labels=np.array(["a", "b"] * 4, dtype=object), classes=("a", "b")
    )
    bad = Predictions(
        "classification", labels=np.array(["a"] * 8, dtype=object), classes=("a", "b")
    )
    scores = slice_scores(holdout, "y", ["region"], "accuracy", good, bad, min_rows=2)
    assert [(s.value, s.challenger, s.champion) for s in scores] == [
        ("eu", 1.0, 0.5),
        ("us", 1.0, 0.5),
    ]
