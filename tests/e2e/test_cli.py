"""The CLI as a user runs it: a real ``mloop`` process per command."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import pytest
from processes import run_mloop

mloop = functools.partial(run_mloop, check=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli") / "home"
    out = mloop(home, "demo", "--no-serve")
    assert "Registered penguins:1" in out.stdout
    assert "penguins@production → 1" in out.stdout
    return home


def test_models_list_and_show(home: Path) -> None:
    listed = json.loads(mloop(home, "models", "list", "--json").stdout)
    assert listed == [{"name": "penguins", "latest_version": 1, "aliases": {"production": 1}}]
    shown = mloop(home, "models", "show", "penguins").stdout
    assert "sklearn" in shown and "training_data_sha256" in shown and "Adelie" in shown


def test_predict_a_csv_file_to_parquet(home: Path, tmp_path: Path) -> None:
    from mloop.demo.penguins import FEATURES, penguins

    X = penguins()[FEATURES]
    X.to_csv(tmp_path / "in.csv", index=False)
    out = mloop(
        home,
        "predict",
        "penguins@production",
        "--input",
        str(tmp_path / "in.csv"),
        "--output",
        str(tmp_path / "out.parquet"),
        "--batch-size",
        "100",
    )
    assert f"Wrote {len(X)} predictions" in out.stdout
    preds = pd.read_parquet(tmp_path / "out.parquet")
    assert len(preds) == len(X)
    assert set(preds["label"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert {"proba_Adelie", "proba_Chinstrap", "proba_Gentoo"} <= set(preds.columns)


def test_alias_moves_and_history_is_audited(home: Path) -> None:
    mloop(home, "demo", "--no-serve")  # registers version 2 and moves production
    mloop(home, "alias", "set", "penguins", "production", "1", "--reason", "roll back")
    history = mloop(home, "alias", "history", "penguins").stdout
    assert "roll back" in history and "alias.set" in history


def test_errors_are_one_actionable_line_with_a_nonzero_exit(home: Path) -> None:
    proc = mloop(home, "predict", "nosuch@production", "-i", "x.csv", "-o", "y.csv", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "Known models: penguins" in proc.stderr and "Traceback" not in proc.stderr
    proc = mloop(home, "models", "delete", "penguins", "1", check=False)
    assert proc.returncode == 2 and "penguins@production" in proc.stderr
    debug = mloop(home, "--debug", "models", "show", "nosuch", check=False)
    assert "Traceback" in debug.stderr
