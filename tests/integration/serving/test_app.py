"""The app in-process: records API, v2 JSON, errors as JSON bodies, admission control."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from mloop.config import Settings
from mloop.serving import create_app

ROW = {"a": 1.0, "b": 2.0, "plan": "pro"}


@pytest.fixture(params=[True, False], ids=["fast-routes", "fastapi-routes"])
def serving_settings(serving_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Every test here runs with prediction routes past FastAPI's router and through it."""
    return replace(
        serving_settings, serving=replace(serving_settings.serving, fast_routes=request.param)
    )


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"type", "message", "retryable", "request_id"} <= set(body["error"])
    return dict(body["error"])


def test_records_api_answers_labels_probabilities_model_and_version(client: TestClient) -> None:
    r = client.post("/models/churn/predict", json={"records": [ROW, {**ROW, "a": -5, "b": -5}]})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "churn" and body["version"] == 1 and body["request_id"]
    assert [p["label"] for p in body["predictions"]] == ["yes", "no"]
    assert set(body["predictions"][0]["probabilities"]) == {"no", "yes"}


def test_explicit_version_and_incoming_request_id(client: TestClient) -> None:
    r = client.post(
        "/models/churn/versions/2/predict", json={"records": [ROW]}, headers={"X-Request-Id": "abc"}
    )
    # The log is keyed by the server's id (feedback joins on it), so a client cannot give
    # two predictions one id; its own id comes back beside the server's.
    assert r.json()["version"] == 2 and r.json()["request_id"] == r.headers["x-request-id"]
    assert r.headers["x-request-id"] != "abc" and r.headers["x-client-request-id"] == "abc"
    again = client.post(
        "/models/churn/versions/2/predict", json={"records": [ROW]}, headers={"X-Request-Id": "abc"}
    )
    assert again.headers["x-request-id"] != r.headers["x-request-id"]


def test_contract_violations_are_422_with_field_level_messages(client: TestClient) -> None:
    r = client.post("/models/churn/predict", json={"records": [ROW, {"a": "x", "plan": "pro"}]})
    assert r.status_code == 422
    err = error_of(r)
    fields = {(v["row"], v["field"]) for v in err["violations"]}
    assert (1, "a") in fields and (1, "b") in fields
    assert err["retryable"] is False


def test_user_mistakes_never_answer_500(client: TestClient) -> None:
    cases = [
        client.post("/models/churn/predict", content=b"{not json"),
        client.post("/models/churn/predict", json={"rows": []}),
        client.post("/models/churn/predict", json={"records": [1, 2]}),
        client.post("/v2/models/churn/infer", json={"inputs": "x"}),
        client.post("/v2/models/churn/infer", json={"inputs": [{"name": "a"}]}),
        client.post("/models/churn/versions/x/predict", json={"records": [ROW]}),
        client.post(
            "/models/churn/predict", json={"records": [ROW]}, headers={"X-Mloop-Priority": "urgent"}
        ),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, r.text
        error_of(r)


def test_unknown_model_and_route_list_the_served_models(client: TestClient) -> None:
    r = client.post("/models/nope/predict", json={"records": [ROW]})
    assert r.status_code == 404 and error_of(r)["known_models"] == ["churn", "numeric"]
    r = client.get("/nowhere")
    assert r.status_code == 404 and "churn" in error_of(r)["message"]
    r = client.post("/models/churn/versions/99/predict", json={"records": [ROW]})
    assert r.status_code == 404
    r = client.get("/models/churn/predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert "use POST" in error_of(r)["message"] and error_of(r)["type"] == "user_fixable"


def test_v2_json_per_column_and_2d_tensor(client: TestClient) -> None:
    body = {
        "id": "req-1",
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, -3.0]},
            {"name": "b", "shape": [2], "datatype": "FP64", "data": [1.0, -3.0]},
            {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["pro", "basic"]},
        ],
    }
    r = client.post("/v2/models/churn/infer", json=body)
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert r.json()["id"] == "req-1"
    assert out["label"]["data"] == ["yes", "no"] and out["label"]["datatype"] == "BYTES"
    assert out["probabilities"]["shape"] == [2, 2]
    tensor = {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [[1, 0, 0, 0]]}]
    }
    r = client.post("/v2/models/numeric/infer", json=tensor)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == ["1"]


def test_v2_health_and_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    meta = client.get("/v2/models/churn").json()
    assert [i["datatype"] for i in meta["inputs"]] == ["FP64", "FP64", "BYTES"]
    assert client.get("/v2/models/churn/versions/2").json()["versions"] == ["2"]
    assert client.get("/v2/models/churn/ready").json()["ready"] is True


def test_metrics_docs_and_websocket(client: TestClient) -> None:
    client.post("/models/churn/predict", json={"records": [ROW]})
    text = client.get("/metrics").text
    for name in (
        "mloop_requests_total",
        "mloop_request_latency_seconds_bucket",
        "mloop_batch_rows",
        "mloop_pool_loads_total",
        "mloop_resident_memory_bytes",
        "mloop_cache_total",
    ):
        assert name in text
    assert "/models/{name}/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    with client.websocket_connect("/models/churn/stream") as ws:
        ws.send_json({"id": 7, "records": [ROW]})
        assert ws.receive_json()["predictions"][0]["label"] == "yes"
        ws.send_json(ROW)
        assert ws.receive_json()["version"] == 1
        ws.send_text("{bad")
        assert ws.receive_json()["error"]["type"] == "user_fixable"


def test_body_limit_is_413(serving_settings: Settings) -> None:
    s = replace(serving_settings, serving=replace(serving_settings.serving, max_body_bytes=100))
    body = orjson.dumps({"records": [ROW] * 20})
    with TestClient(create_app(s, auth=False)) as c:
        r = c.post("/models/churn/predict", content=body)
        assert r.status_code == 413 and error_of(r)["type"] == "user_fixable"
        # Without a Content-Length (chunked), the body is counted as it arrives.
        chunked = c.post("/models/churn/predict", content=iter([body[:60], body[60:]]))
        assert "content-length" not in chunked.request.headers
        assert chunked.status_code == 413 and error_of(chunked)["type"] == "user_fixable"
        small = orjson.dumps({"records": [ROW]})
        r = c.post("/models/churn/predict", content=iter([small[:10], small[10:]]))
        assert r.status_code == 200, r.text


def test_full_queue_is_429_with_retry_after_and_slow_requests_504(
    serving_settings: Settings,
) -> None:
    s = replace(
        serving_settings,
        serving=replace(serving_settings.serving, queue_limit=1, cache_size=0, predict_threads=1),
    )
    app = create_app(s, auth=False)
    release = threading.Event()
    with TestClient(app) as c:
        engine = app.state.serving.engine
        served = engine.pool.peek("churn", 1)
        original = served.batcher.run

        def slow(jobs: Any) -> Any:
            release.wait(5)
            return original(jobs)

        served.batcher.run = slow
        results: list[int] = []

        def call(row: dict[str, Any]) -> None:
            results.append(c.post("/models/churn/predict", json={"records": [row]}).status_code)

        threads = [threading.Thread(target=call, args=({**ROW, "a": float(i)},)) for i in range(2)]
        # One request in the worker, then one queued behind it (sent together, the two
        # would form one batch and nothing would queue).
        threads[0].start()
        while not served.batcher.busy:
            time.sleep(0.001)
        threads[1].start()
        while served.batcher.depth < 1:
            time.sleep(0.001)
        r = c.post("/models/churn/predict", json={"records": [ROW]})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert error_of(r)["retryable"] is True
        r = c.post(
            "/models/numeric/predict",
            json={"records": [{"f0": 1, "f1": 0, "f2": 0, "f3": 0}]},
        )
        assert r.status_code == 200
        release.set()
        for t in threads:
            t.join()
        assert results == [200, 200]
        served.batcher.run = lambda jobs: (release.clear(), release.wait(2), original(jobs))[2]
        r = c.post(
            "/models/churn/predict", json={"records": [ROW]}, headers={"X-Mloop-Timeout-Ms": "50"}
        )
        assert r.status_code == 504 and error_of(r)["type"] == "retryable"
        release.set()
