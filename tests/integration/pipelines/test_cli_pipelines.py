"""``mloop pipelines add|list``, ``mloop retrain``, ``mloop runs list|show`` in-process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mloop.cli._context import CliState
from mloop.cli._pipelines import pipelines_app, retrain, runs_app
from mloop.config import Settings

MODULE = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from mloop.pipelines import Pipeline, GateConfig

    def load(window):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(300, 2))
        y = np.where(x.sum(axis=1) > 0, "yes", "no")
        ts = np.linspace(window.start, window.end - 1, 300)
        return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": y, "ts": ts})

    def train(data):
        print("fitting", len(data.frame), "rows")
        return LogisticRegression().fit(data.X, data.y)

    pipeline = Pipeline(name="churn-retrain", model="churn", train=train, load=load,
                        gate=GateConfig(min_improvement=0.0))
    """
)


def app_for(settings: Settings) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = CliState(settings)

    app.add_typer(pipelines_app, name="pipelines")
    app.add_typer(runs_app, name="runs")
    app.command("retrain")(retrain)
    return app


def test_add_retrain_and_inspect(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mlproj.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    app, cli = app_for(settings), CliRunner()

    added = cli.invoke(app, ["pipelines", "add", "mlproj:pipeline"])
    assert added.exit_code == 0, added.output
    listed = cli.invoke(app, ["pipelines", "list", "--json"])
    assert json.loads(listed.output)[0]["name"] == "churn-retrain"

    ran = cli.invoke(app, ["retrain", "churn-retrain", "--json"])
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.output)
    # No production version yet: registered as challenger, the rollout step says how to promote.
    assert run["status"] == "succeeded" and run["model_version"] == 1
    assert "mloop alias set churn production 1" in run["steps"][5]["logs"][0]
    assert "fitting" in " ".join(run["steps"][2]["logs"])

    runs = cli.invoke(app, ["runs", "list", "--json"])
    assert json.loads(runs.output)[0]["id"] == run["id"]
    shown = cli.invoke(app, ["runs", "show", run["id"][:20], "--logs"])
    assert shown.exit_code == 0 and "validation" in shown.output and "fitting" in shown.output

    missing = cli.invoke(app, ["retrain", "nope"])
    assert missing.exit_code != 0
