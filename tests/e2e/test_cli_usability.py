"""The CLI tells the truth: usage help for usage mistakes, whole identifiers, what serves.

Commands run in-process through ``mloop.cli.main`` (the console script's function),
with output captured as a pipe would see it (80 columns, not a terminal).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop._clock import ManualClock
from mloop.cli import main
from mloop.config import load_settings
from mloop.registry import Registry
from mloop.rollout import BlueGreenPolicy, Controller, InMemoryObservations, Rollouts

LONG_NAME = "customer-churn-propensity-for-the-enterprise-segment-2026-q4"
LONG_ALIAS = "champion-after-the-december-retraining-run"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-usability") / "home"
    registry = Registry(load_settings(env={}, config_file=None, home=home))
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    y = np.where(x["a"] > 0, "yes", "no")
    for name in (LONG_NAME, "bg"):
        for _ in range(2):
            registry.register(LogisticRegression().fit(x, y), name, training_data=x, target=y)
        registry.set_alias(name, "production", 1)
    registry.set_alias(LONG_NAME, LONG_ALIAS, 2)
    registry.store.dispose()
    return home


def run(capsys: pytest.CaptureFixture[str], home: Path | None, *args: str) -> tuple[int, str, str]:
    argv = ["--home", str(home), *args] if home is not None else list(args)
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["no-such-command"], "No such command"),
        (["models", "list", "--bogus"], "No such option"),
        (["models", "show"], "Missing argument"),
        (["deploy"], "Missing argument"),
        (["predict", "x"], "Missing option"),
    ],
)
def test_usage_mistakes_print_usage_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    code, out, err = run(capsys, None, *args)
    assert code == 2
    assert says in err and "Usage:" in err
    assert "please report" not in out + err and "internal error" not in out + err


def test_a_missing_input_file_is_one_actionable_line(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    code, _, err = run(
        capsys, home, "predict", "bg", "--input", str(tmp_path / "no.csv"), "-o", "o.parquet"
    )
    assert code == 2 and "does not exist" in err and "please report" not in err


def test_version_and_short_help(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, _ = run(capsys, None, "--version")
    assert code == 0 and out.strip() == version("mloop")
    code, out, _ = run(capsys, None, "-h")
    assert code == 0 and "Usage: mloop" in out
    code, out, _ = run(capsys, None, "rollout", "-h")
    assert code == 0 and "Usage: mloop rollout" in out


def test_piped_tables_keep_whole_identifiers(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, _ = run(capsys, home, "models", "show", LONG_NAME)
    assert code == 0
    assert "…" not in out
    (row,) = [line for line in out.splitlines() if LONG_ALIAS in line]  # grep finds it
    assert "│ 2 " in row or "2" in row.split("│")[1]
    assert LONG_NAME in out
    code, out, _ = run(capsys, home, "models", "list")
    assert code == 0 and "…" not in out


def test_show_a_version_by_ref_with_its_contract_as_json(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, err = run(capsys, home, "models", "show", "bg:1", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["name"] == "bg" and body["version"]["version"] == 1
    assert [c["name"] for c in body["version"]["contract"]["columns"]] == ["a", "b"]
    assert [v["version"] for v in body["versions"]] == [1, 2]
    code, out, _ = run(capsys, home, "models", "show", f"{LONG_NAME}@{LONG_ALIAS}", "--json")
    assert code == 0 and json.loads(out)["version"]["version"] == 2
    code, out, _ = run(capsys, home, "alias", "history", "bg", "--json")
    assert code == 0 and any(e["action"] == "alias.set" for e in json.loads(out))


def test_a_blue_green_switch_says_what_serves(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    registry = Registry(load_settings(env={}, config_file=None, home=home))
    clock = ManualClock(1_800_000_000.0)
    source = InMemoryObservations(clock, assume_ready=True)
    rollouts = Rollouts(registry, clock=clock)
    rollouts.deploy("bg:2", BlueGreenPolicy(hold_s=600), actor="test")
    Controller(registry, source, clock=clock).tick()  # warm -> switched, v1 held
    try:
        code, out, _ = run(capsys, home, "models", "show", "bg")
        assert code == 0
        text = " ".join(out.split())
        assert "Serving now: v2 serves all traffic (blue-green, v1 held warm until" in text
        assert "alias still names v1" in text
        code, _, err = run(capsys, home, "deploy", "bg:1", "--strategy", "canary")
        assert code == 2
        message = " ".join(err.split())
        assert "is already the production version" not in message
        assert "already has an active rollout (blue-green, v1 → v2)" in message
        assert "v2 serves all" in message
    finally:
        rollouts.command("bg", "rollback", actor="test")
        registry.store.dispose()


def test_hold_is_a_deploy_option(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, out, _ = run(capsys, home, "deploy", "-h")
    assert code == 0 and "--hold" in out


def test_a_narrow_terminal_folds_values_instead_of_eliding_them() -> None:
    from io import StringIO

    from rich.console import Console

    from mloop.cli._table import Table

    table = Table("name", "aliases")
    table.add_row(LONG_NAME, LONG_ALIAS)
    out = StringIO()
    Console(file=out, width=40).print(table)
    text = out.getvalue()
    assert "…" not in text
    cells = [line.split("│") for line in text.splitlines() if line.count("│") == 3]
    column = "".join(cell[2].strip() for cell in cells)  # body rows (the header uses ┃)
    assert column == LONG_ALIAS
