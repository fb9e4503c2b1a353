"""The prediction-log hook and a custom traffic router (shadow copies, arms, stats)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi.testclient import TestClient

from mloop.config import Settings
from mloop.serving import RouteDecision, ServingStats, TrafficRouter, create_app

ROW = {"a": 1.0, "b": 2.0, "plan": "pro"}


class Sink:
    """Collects what serving hands to monitoring."""

    def __init__(self) -> None:
        self.records: list[Mapping[str, Any]] = []

    def submit(self, record: Mapping[str, Any]) -> None:
        self.records.append(record)


class Canary:
    """Version 1 answers; version 2 gets a shadow copy of every request."""

    def route(self, model: str, key: str | None) -> RouteDecision:
        return RouteDecision(version=1, shadow=(2,), arm="stable")

    def versions_in_use(self) -> dict[str, set[int]]:
        return {"churn": {1, 2}}


def test_sink_gets_one_record_per_request_and_shadows_are_compared(
    serving_settings: Settings,
) -> None:
    sink, stats, router = Sink(), ServingStats(), Canary()
    assert isinstance(router, TrafficRouter)
    app = create_app(serving_settings, auth=False, prediction_sink=sink, router=router, stats=stats)
    with TestClient(app) as client:
        r = client.post(
            "/models/churn/predict", json={"records": [ROW, ROW]}, headers={"X-Request-Id": "r-1"}
        )
        assert r.status_code == 200 and r.headers["x-mloop-arm"] == "stable"
        deadline = time.monotonic() + 5
        while not stats.snapshot("churn").get(2) and time.monotonic() < deadline:
            time.sleep(0.01)
    (record,) = sink.records
    assert record["request_id"] == r.headers["x-request-id"] != "r-1"  # the server's own id
    assert record["model"] == "churn" and record["version"] == 1
    assert record["inputs"] == [ROW, ROW]
    assert record["outputs"][0]["label"] == "yes" and record["latency_ms"] > 0
    snap = stats.snapshot("churn")
    assert snap[1]["requests"] == 1
    # Version 2 was trained on flipped labels: the shadow disagrees on both rows.
    assert snap[2]["shadow_compared"] == 2 and snap[2]["shadow_agreement"] == 0.0
