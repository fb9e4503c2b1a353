"""Batch scoring and drift counting over Parquet partitions: Ray gives exactly what one process does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from mloop.batch import partition_counts, score_partitions
from mloop.config import Settings
from mloop.monitor import drift_from_counts
from mloop.registry import Registry

pytestmark = pytest.mark.slow


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(shift, 1.0, n),
            "x2": rng.normal(0.0, 1.0, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "x1"] = np.nan  # gaps, as real data has
    return frame


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    train = _frame(2000, seed=0)
    y = np.where(train["x1"].fillna(0) + train["x2"] > 0, "yes", "no")
    features = train[["x1", "x2"]]  # gaps in x1: the model takes them natively
    model = HistGradientBoostingClassifier(random_state=0).fit(features, y)
    registry = Registry(settings)
    registry.register(model, "churn", training_data=features, target=y, alias="production")
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(4):
        _frame(5000, seed=10 + i, shift=0.5 * (i >= 2)).to_parquet(parts / f"day={i}.parquet")
    return settings, parts


def test_ray_scores_partitions_exactly_as_one_process_does(
    world: tuple[Settings, Path], tmp_path: Path, ray_session: None
) -> None:
    settings, parts = world
    local = score_partitions(settings, "churn@production", str(parts), tmp_path / "local.parquet")
    on_ray = score_partitions(
        settings,
        "churn@production",
        str(parts / "*.parquet"),
        tmp_path / "ray.parquet",
        engine="ray",
        workers=2,  # two one-CPU scorers on two CPUs starved the read tasks once
        batch_rows=3000,
    )
    assert local == on_ray == 20_000
    a = pd.read_parquet(tmp_path / "local.parquet")
    b = pd.read_parquet(tmp_path / "ray.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert set(a.columns) == {"label", "proba_no", "proba_yes"}


def test_ray_drift_counts_merge_to_the_single_process_counts(
    world: tuple[Settings, Path], ray_session: None
) -> None:
    settings, parts = world
    profile = Registry(settings).get("churn@production").profile
    assert profile is not None
    local = partition_counts(profile, str(parts))
    # In the same Ray session as the scoring test: the stages must not starve each other.
    on_ray = partition_counts(profile, str(parts), engine="ray", batch_rows=2500)
    assert local.n == on_ray.n == 20_000
    for name in local.counts:
        np.testing.assert_array_equal(local.counts[name], on_ray.counts[name])
    report = drift_from_counts(local.reference, local.counts)
    assert "x1" in report.drifted_columns  # half the days shifted


def test_mloop_predict_with_the_ray_engine(world: tuple[Settings, Path], tmp_path: Path) -> None:
    pytest.importorskip("ray")
    settings, parts = world
    env = {
        **os.environ,
        "MLOOP_HOME": str(settings.home),
        "RAY_AUTH_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mloop",
            "predict",
            "churn@production",
            "--input",
            str(parts / "*.parquet"),
            "--output",
            str(tmp_path / "out.parquet"),
            "--engine",
            "ray",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Wrote 20000 predictions of churn@production from 4 partitions" in done.stdout
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 20_000
