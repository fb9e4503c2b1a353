"""``mloop deploy`` and ``mloop rollout …`` through Typer's in-process runner."""

from __future__ import annotations

import json

import typer
from rollout_seed import seed
from typer.testing import CliRunner

from mloop.cli._context import CliState
from mloop.cli._rollout import deploy, rollout_app
from mloop.config import Settings
from mloop.registry import Registry


def _app(settings: Settings) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = CliState(settings)

    app.command("deploy")(deploy)
    app.add_typer(rollout_app, name="rollout")
    return app


def test_deploy_then_steer_from_the_cli(settings: Settings) -> None:
    registry = Registry(settings)
    seed(registry)
    app, runner = _app(settings), CliRunner()
    result = runner.invoke(
        app,
        [
            "deploy", "churn:4", "--strategy", "canary", "--steps", "5,25,50,100",
            "--step-duration", "10m", "--guard", "error_rate<0.01", "--guard", "p99_ms<50",
            "--guard", "prediction_drift<0.1",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mloop rollout status churn" in result.output

    shown = json.loads(runner.invoke(app, ["rollout", "status", "churn", "--json"]).output)
    assert shown["phase"] == "warming" and shown["candidate"] == 4
    assert shown["policy"]["guards"] == ["error_rate<0.01", "p99_ms<50", "prediction_drift<0.1"]
    assert shown["policy"]["step_duration_s"] == 600

    for command in ("pause", "resume", "promote"):
        out = runner.invoke(app, ["rollout", command, "churn", "--reason", f"cli {command}"])
        assert out.exit_code == 0, out.output
    assert registry.aliases("churn")["production"] == 4
    events = json.loads(runner.invoke(app, ["rollout", "history", "churn", "--json"]).output)
    assert [e["action"] for e in events] == ["create", "pause", "resume", "promote"]
    assert "promote" in runner.invoke(app, ["rollout", "history", "churn"]).output
    assert runner.invoke(app, ["rollout", "status", "churn"]).exit_code == 0


def test_ab_and_bad_guard_from_the_cli(settings: Settings) -> None:
    seed(Registry(settings))
    app, runner = _app(settings), CliRunner()
    bad = runner.invoke(app, ["deploy", "churn:4", "--guard", "latency<5"])
    assert bad.exit_code != 0
    ok = runner.invoke(
        app,
        ["deploy", "churn:4", "--strategy", "ab", "--split", "50", "--key", "user_id", "--json"],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["strategy"] == "ab"
