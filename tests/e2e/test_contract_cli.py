"""``mloop contract export`` from a registry, ``mloop contract check`` on a machine without one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from processes import run_mloop as mloop
from sklearn.dummy import DummyClassifier

from mloop.config import load_settings
from mloop.registry import Registry


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    frame = load_penguins()
    return frame.drop(columns=["species"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, penguins: pd.DataFrame) -> Path:
    """A registered penguin model's contract, exported by the CLI as JSON Schema."""
    folder = tmp_path_factory.mktemp("export")
    home = folder / "home"
    registry = Registry(load_settings(env={}, config_file=None, home=home))
    target = load_penguins()["species"].astype(str)
    model = DummyClassifier().fit(penguins, target)
    registry.register(model, "penguins", training_data=penguins, target=target, alias="production")
    out = mloop(home, "contract", "export", "penguins@production", "-o", str(folder / "c.json"))
    assert out.returncode == 0, out.stderr
    assert "Wrote the json-schema contract of penguins:1" in out.stderr
    frictionless = mloop(home, "contract", "export", "penguins:1", "--format", "frictionless")
    assert frictionless.returncode == 0, frictionless.stderr
    assert [f["name"] for f in json.loads(frictionless.stdout)["fields"]] == list(penguins.columns)
    return folder / "c.json"


def test_exported_document_is_a_json_schema_for_penguin_records(
    exported: Path, penguins: pd.DataFrame
) -> None:
    doc = json.loads(exported.read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    validator = jsonschema.Draft202012Validator(doc)
    record = json.loads(penguins.iloc[[3]].to_json(orient="records"))[0]  # a row with gaps
    assert record["sex"] is None
    assert validator.is_valid(record)
    assert not validator.is_valid({**record, "year": "2007"})


def test_check_without_a_registry(tmp_path: Path, exported: Path, penguins: pd.DataFrame) -> None:
    empty_home = tmp_path / "empty"
    empty_home.mkdir()
    good = tmp_path / "good.csv"
    penguins.to_csv(good, index=False)
    ok = mloop(empty_home, "contract", "check", str(good), "--contract", str(exported))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{len(penguins)} rows meets the contract: 0 rejected" in ok.stdout

    bad = penguins.head(5).astype(object)
    bad.loc[1, "bill_length_mm"] = "long"
    bad.loc[2, "year"] = 2007.5
    bad = bad.drop(columns=["island"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    failed = mloop(empty_home, "contract", "check", str(tmp_path / "bad.csv"), "-c", str(exported))
    assert failed.returncode == 1, failed.stdout + failed.stderr

    # The same field-level messages mloop's own validator gives for these rows.
    registry = Registry(load_settings(env={}, config_file=None, home=exported.parent / "home"))
    schema = registry.get("penguins:1").schema
    assert schema is not None
    rows = json.loads(bad.to_json(orient="records"))
    expected = [f"error: {v.message}" for v in schema.validate(rows) if v.severity == "reject"]
    printed = [line for line in failed.stdout.splitlines() if line.startswith("error: ")]
    assert printed == expected
    assert "Column 'island' is missing" in failed.stdout
    assert "Column 'bill_length_mm' expects a number; row 1 has 'long'." in failed.stdout

    as_json = mloop(
        empty_home, "contract", "check", str(tmp_path / "bad.csv"), "-c", str(exported), "--json"
    )
    body = json.loads(as_json.stdout)
    assert body["valid"] is False and body["rows"] == 5 and body["rejected"] == len(expected)
    assert list(empty_home.iterdir()) == []  # nothing was created: no registry was opened


def test_check_refuses_what_is_not_a_contract(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("[1, 2]")
    (tmp_path / "d.csv").write_text("a\n1\n")
    out = mloop(
        tmp_path, "contract", "check", str(tmp_path / "d.csv"), "-c", str(tmp_path / "c.json")
    )
    assert out.returncode == 2
    assert "must hold a JSON object" in out.stderr


BLOCK_EXTRAS = """
import sys

class NoExtras:
    # Only mloop's own dependencies: every optional extra (and the validators the tests
    # use) fails to import, as in a venv where only 'pip install mloop' ran.
    BLOCKED = {"onnx", "onnxruntime", "skl2onnx", "onnxmltools", "xgboost", "lightgbm",
               "mlflow", "prefect", "psycopg", "redis", "tiktoken", "jsonschema",
               "frictionless", "palmerpenguins"}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, NoExtras())
from mloop.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_check_needs_no_optional_package(
    tmp_path: Path, exported: Path, penguins: pd.DataFrame
) -> None:
    penguins.head(20).to_parquet(tmp_path / "rows.parquet")
    env = {**os.environ, "MLOOP_HOME": str(tmp_path / "nothing-here")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_EXTRAS,
            "contract",
            "check",
            str(tmp_path / "rows.parquet"),
            "-c",
            str(exported),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "20 rows meets the contract" in out.stdout
    assert not (tmp_path / "nothing-here").exists()
