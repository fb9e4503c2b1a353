"""The monitor's HTTP routes and CLI commands over a real registry and log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mloop.cli._context import CliState
from mloop.cli._monitor import feedback_app, monitor_app
from mloop.journal._log import PredictionLog
from mloop.monitor._service import Monitor
from mloop.monitor.http import router_for

from .conftest import World, make_data


@pytest.fixture(scope="module")
def request_ids(world: World) -> list[str]:
    """200 single-row requests logged a minute ago."""
    import time

    log = PredictionLog(world.settings)
    frame, _ = make_data(200, seed=3)
    ids = world.log(log, frame, time.time() - 60)
    log.close()
    Monitor(world.settings, world.registry).compact()
    return ids


@pytest.fixture
def client(world: World) -> TestClient:
    app = FastAPI()
    app.include_router(router_for(Monitor(world.settings, world.registry)))
    return TestClient(app)


def test_post_feedback_single_list_and_wrapped(client: TestClient, request_ids: list[str]) -> None:
    one = client.post("/feedback", json={"request_id": request_ids[0], "label": "yes"})
    assert one.status_code == 202
    assert one.json() == {"accepted": 1, "matched": 1, "unmatched": 0}
    many = client.post(
        "/feedback",
        json={"feedback": [{"request_id": r, "label": "no"} for r in request_ids[1:5]]
        + [{"request_id": "later", "label": "no"}]},
    )  # fmt: skip
    assert many.status_code == 202
    assert many.json() == {"accepted": 5, "matched": 4, "unmatched": 1}
    listed = client.post("/feedback", json=[{"entity_key": f"e-{request_ids[6]}-0", "label": "no"}])
    assert listed.json()["matched"] == 1


def test_bad_feedback_is_a_422_that_says_why(client: TestClient) -> None:
    response = client.post("/feedback", json=[{"label": "yes"}])
    assert response.status_code == 422
    assert "request_id" in response.json()["error"]["message"]
    assert client.post("/feedback", content=b"{oops").status_code == 422


def test_status_and_report_routes(client: TestClient, request_ids: list[str]) -> None:
    status = client.get("/models/churn/monitor/status", params={"since": "1h", "window": "1h"})
    assert status.status_code == 200
    assert sum(w["rows"] for w in status.json()["windows"]) == 200
    report = client.get("/models/churn/monitor/report", params={"since": "1h"})
    assert report.status_code == 200 and "<svg" in report.text
    missing = client.get("/models/nope/monitor/status")
    assert missing.status_code == 404


def _cli(world: World) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = CliState(world.settings)

    app.add_typer(monitor_app, name="monitor")
    app.add_typer(feedback_app, name="feedback")
    return app


def test_cli_status_report_and_feedback_import(
    world: World, request_ids: list[str], tmp_path: Path
) -> None:
    runner = CliRunner()
    app = _cli(world)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "request_id,row,label\n" + "".join(f"{r},0,yes\n" for r in request_ids[10:20])
    )
    imported = runner.invoke(app, ["feedback", "import", str(labels)])
    assert imported.exit_code == 0, imported.output
    assert "Imported 10 labels: 10 matched" in imported.output

    shown = runner.invoke(app, ["monitor", "status", "churn", "--since", "1h", "--window", "1h"])
    assert shown.exit_code == 0, shown.output
    assert "churn (reference v1)" in shown.output

    as_json = runner.invoke(
        app, ["monitor", "status", "churn", "--since", "1h", "--format", "json"]
    )
    body = json.loads(as_json.output)
    assert sum(w["rows"] for w in body["windows"]) == 200
    assert sum(w["labelled"] for w in body["windows"]) >= 10

    out = tmp_path / "report.html"
    made = runner.invoke(app, ["monitor", "report", "churn", "--since", "1h", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert out.read_text().startswith("<!DOCTYPE html>")

    pruned = runner.invoke(app, ["monitor", "prune", "--older-than", "30d"])
    assert pruned.exit_code == 0 and "Removed 0" in pruned.output


def test_router_for_applies_auth_dependencies_per_group(world: World) -> None:
    from fastapi import HTTPException

    def deny() -> None:
        raise HTTPException(status_code=403, detail="no feedback scope")

    app = FastAPI()
    app.include_router(
        router_for(Monitor(world.settings, world.registry), feedback_dependencies=[deny])
    )
    client = TestClient(app)
    assert client.post("/feedback", json={"request_id": "r", "label": 1}).status_code == 403
    assert client.get("/models/churn/monitor/status").status_code == 200


@pytest.mark.parametrize(
    "params", [{"window": "fortnight"}, {"since": "soonish"}, {"since": "1h", "until": "2h"}]
)
def test_a_bad_time_range_is_a_422_not_a_server_error(
    client: TestClient, params: dict[str, str]
) -> None:
    answer = client.get("/models/churn/monitor/status", params=params)
    assert answer.status_code == 422
    assert answer.json()["error"]["type"] == "user_fixable"


def test_since_accepts_an_epoch_time_as_well_as_a_duration(
    client: TestClient, request_ids: list[str]
) -> None:
    import time

    by_epoch = client.get(
        "/models/churn/monitor/status", params={"since": str(int(time.time()) - 3600)}
    )
    by_duration = client.get("/models/churn/monitor/status", params={"since": "1h"})
    assert by_epoch.status_code == by_duration.status_code == 200


def test_errors_of_monitor_routes_carry_the_servers_request_id(tmp_path: Path) -> None:
    from mloop.config import load_settings
    from mloop.server import run_in_background

    settings = load_settings(env={}, home=tmp_path / "home")
    with run_in_background(settings, auth=False) as server:
        answer = httpx.get(f"{server.url}/models/churn/monitor/status", params={"window": "x"})
    assert answer.status_code == 422
    assert answer.json()["error"]["request_id"] == answer.headers["x-request-id"]
