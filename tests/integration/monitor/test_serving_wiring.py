"""Serving with the monitor wired in: predictions land in the log, labels join, status sees both."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mloop.monitor._service import Monitor
from mloop.monitor.http import serving_routers
from mloop.serving import create_app

from .conftest import World


def test_served_predictions_are_logged_and_labelled(world: World) -> None:
    monitor = Monitor(world.settings, world.registry)
    app = create_app(
        world.settings,
        registry=world.registry,
        auth=False,
        prediction_sink=monitor.serving_sink(),
        routers=serving_routers(monitor),
    )
    ids = []
    with TestClient(app) as client:
        for age in (25.0, 45.0, 65.0):
            body = {"records": [{"age": age, "income": 50.0, "plan": "a"}]}
            answer = client.post("/models/churn/predict", json=body)
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["request_id"])
        monitor.prediction_log.flush()  # type: ignore[union-attr]
        monitor.compact()
        labels = client.post("/feedback", json=[{"request_id": r, "label": "yes"} for r in ids])
        assert labels.status_code == 202 and labels.json()["matched"] == 3
        status = client.get("/models/churn/monitor/status", params={"since": "1h"})
        assert status.status_code == 200
        windows = status.json()["windows"]
        assert sum(w["rows"] for w in windows) == 3 and sum(w["labelled"] for w in windows) == 3
    monitor.close()
