"""Prediction routes answered past FastAPI's router behave exactly like the FastAPI routes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient

from mloop.auth import KeyStore
from mloop.config import Settings
from mloop.registry import Registry
from mloop.serving import create_app
from mloop.serving._fast_routes import FastRoutes, match_prediction

ROW = {"a": 1.0, "b": 2.0, "plan": "pro"}
V2 = {
    "id": "r1",
    "inputs": [
        {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "b", "shape": [1], "datatype": "FP64", "data": [2.0]},
        {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
    ],
}

# (method, path, body, headers): successes and every kind of user mistake.
REQUESTS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("POST", "/models/churn/predict", {"records": [ROW, {**ROW, "a": -5.0, "b": -5.0}]}, {}),
    ("POST", "/models/churn/versions/2/predict", {"records": [ROW]}, {}),
    ("POST", "/models/churn/versions/02/predict", {"records": [ROW]}, {}),
    ("POST", "/models/churn/predict", {"records": [{"a": "x", "plan": "pro"}]}, {}),
    ("POST", "/models/churn/predict", b"{not json", {}),
    ("POST", "/models/churn/predict", {"rows": []}, {}),
    ("POST", "/models/churn/predict", {"records": [1, 2]}, {}),
    ("POST", "/models/nope/predict", {"records": [ROW]}, {}),
    ("POST", "/models/churn/versions/99/predict", {"records": [ROW]}, {}),
    ("POST", "/models/churn/versions/x/predict", {"records": [ROW]}, {}),
    ("POST", "/models/churn/predict/", {"records": [ROW]}, {}),
    ("GET", "/models/churn/predict", None, {}),
    ("POST", "/models/churn/predict", {"records": [ROW]}, {"X-Mloop-Priority": "urgent"}),
    ("POST", "/models/churn/predict", {"records": [ROW]}, {"X-Mloop-Timeout-Ms": "soon"}),
    ("POST", "/models/churn/predict", {"records": [ROW] * 100}, {}),  # over the body limit
    ("POST", "/v2/models/churn/infer", V2, {}),
    ("POST", "/v2/models/churn/versions/1/infer", V2, {}),
    ("POST", "/v2/models/churn/infer", {"inputs": "x"}, {}),
    ("POST", "/v2/models/nope/infer", V2, {}),
    ("POST", "/v2/models/churn/infer", V2, {"Inference-Header-Content-Length": "lots"}),
    (
        "POST",
        "/v2/models/numeric/infer",
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 0, 0, 0]}]},
        {},
    ),
]


def _settings(base: Settings, fast: bool) -> Settings:
    return replace(
        base, serving=replace(base.serving, fast_routes=fast, max_body_bytes=2000, cache_size=0)
    )


def _answer(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": {**headers, "X-Request-Id": "fixed"}}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    r = client.request(method, path, **kwargs)
    # The request id is the server's own (random): equal answers carry it in the same
    # places, and the client's id comes back beside it.
    rid = r.headers["x-request-id"]
    assert rid != "fixed" and r.headers["x-client-request-id"] == "fixed"
    kept = {
        k: "<server id>" if k == "x-request-id" else v
        for k, v in r.headers.items()
        if k
        in (
            "content-type",
            "retry-after",
            "x-mloop-version",
            "x-mloop-arm",
            "x-request-id",
            "x-client-request-id",
        )
    }
    return r.status_code, json.loads(r.text.replace(rid, "<server id>")), kept


def test_match_prediction_names_exactly_the_prediction_routes() -> None:
    assert match_prediction("/models/churn/predict") == ("predict", "churn", None)
    assert match_prediction("/models/churn/versions/12/predict") == ("predict", "churn", 12)
    assert match_prediction("/v2/models/churn/infer") == ("infer", "churn", None)
    assert match_prediction("/v2/models/churn/versions/3/infer") == ("infer", "churn", 3)
    for other in (
        "",
        "/",
        "/models",
        "/models//predict",
        "/models/churn/predict/",
        "/models/churn/infer",
        "/v2/models/churn/predict",
        "/models/churn/versions/x/predict",
        "/models/churn/versions/²/predict",
        "/models/churn/versions/1/ready",
        "/v2/models/churn",
        "/v2/repository/models/churn/load",
    ):
        assert match_prediction(other) is None, other


def test_both_paths_answer_every_request_identically(serving_settings: Settings) -> None:
    answers: dict[bool, list[Any]] = {}
    for fast in (True, False):
        with TestClient(create_app(_settings(serving_settings, fast), auth=False)) as c:
            answers[fast] = [_answer(c, *request) for request in REQUESTS]
    for request, fast, plain in zip(REQUESTS, answers[True], answers[False], strict=True):
        assert fast == plain, request
    statuses = [status for status, _, _ in answers[True]]
    assert statuses.count(200) == 7 and 500 not in statuses
    assert {404, 405, 413, 422} <= set(statuses)


def test_both_paths_check_the_key_scope(serving_settings: Settings) -> None:
    registry = Registry(serving_settings)
    store = KeyStore(registry.store)
    predict = store.create("p", ["predict"])[1]
    feedback = store.create("f", ["feedback"])[1]
    for fast in (True, False):
        app = create_app(_settings(serving_settings, fast), registry=registry, auth=True)
        with TestClient(app) as c:
            for path, body in (
                ("/models/churn/predict", {"records": [ROW]}),
                ("/v2/models/churn/infer", V2),
            ):
                assert c.post(path, json=body).status_code == 401
                wrong = c.post(path, json=body, headers={"Authorization": f"Bearer {feedback}"})
                assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "user_fixable"
                ok = c.post(path, json=body, headers={"Authorization": f"Bearer {predict}"})
                assert ok.status_code == 200


def test_predictions_skip_the_fastapi_router(serving_settings: Settings) -> None:
    passed: list[str] = []
    app = create_app(_settings(serving_settings, True), auth=False)
    with TestClient(app) as c:
        layer = app.middleware_stack
        while not isinstance(layer, FastRoutes):
            layer = layer.app  # type: ignore[union-attr]
        inner = layer.app

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            passed.append(scope["path"])
            await inner(scope, receive, send)

        layer.app = recording
        assert c.post("/models/churn/predict", json={"records": [ROW]}).status_code == 200
        assert c.post("/v2/models/churn/infer", json=V2).status_code == 200
        assert c.get("/v2/models/churn/ready").status_code == 200
        assert "/models/{name}/predict" in c.get("/openapi.json").json()["paths"]
    assert passed == ["/v2/models/churn/ready", "/openapi.json"]


def test_a_bug_answers_a_fatal_json_error_on_both_paths(serving_settings: Settings) -> None:
    for fast in (True, False):
        app = create_app(_settings(serving_settings, fast), auth=False)
        with TestClient(app, raise_server_exceptions=False) as c:
            served = app.state.serving.engine.pool.peek("churn", 1)
            served.batcher.run = lambda jobs: 1 / 0
            r = c.post("/models/churn/predict", json={"records": [ROW]})
        assert r.status_code == 500, fast
        error = r.json()["error"]
        assert error["type"] == "fatal" and "ZeroDivisionError" in error["message"]


def test_a_client_gone_before_its_body_gets_no_answer(serving_settings: Settings) -> None:
    sent: list[Any] = []
    app = create_app(_settings(serving_settings, True), auth=False)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    async def call() -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/models/churn/predict",
            "root_path": "",
            "headers": [],
            "state": {"request_id": "gone"},
        }
        fast = FastRoutes(app.router, ctx=app.state.serving, on_error=lambda exc: None)
        await fast(scope, receive, send)

    asyncio.run(call())
    assert sent == []
