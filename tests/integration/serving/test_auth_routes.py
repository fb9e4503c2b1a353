"""Every route checked for the scope it needs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mloop.auth import KeyStore
from mloop.config import Settings
from mloop.registry import Registry
from mloop.serving import create_app

ROW = {"a": 1.0, "b": 2.0, "plan": "pro"}
V2 = {
    "inputs": [
        {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "b", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
    ]
}

# (method, path, json body, scope needed; None = public)
ROUTES = [
    ("GET", "/v2/health/live", None, None),
    ("GET", "/v2/health/ready", None, None),
    ("GET", "/healthz", None, None),
    ("GET", "/docs", None, None),
    ("GET", "/openapi.json", None, None),
    ("GET", "/v2", None, "predict"),
    ("GET", "/v2/models/churn", None, "predict"),
    ("GET", "/v2/models/churn/versions/1", None, "predict"),
    ("GET", "/v2/models/churn/ready", None, "predict"),
    ("GET", "/v2/models/churn/versions/1/ready", None, "predict"),
    ("POST", "/v2/models/churn/infer", V2, "predict"),
    ("POST", "/v2/models/churn/versions/1/infer", V2, "predict"),
    ("POST", "/models/churn/predict", {"records": [ROW]}, "predict"),
    ("POST", "/models/churn/versions/1/predict", {"records": [ROW]}, "predict"),
    ("GET", "/models", None, "predict"),
    ("GET", "/stats/churn", None, "deploy"),
    ("POST", "/v2/repository/index", None, "deploy"),
    ("POST", "/v2/repository/models/churn/load", None, "deploy"),
    ("POST", "/v2/repository/models/churn/unload", None, "deploy"),
    ("GET", "/metrics", None, "admin"),
]


@pytest.fixture
def keyed(serving_settings: Settings) -> tuple[TestClient, dict[str, str]]:
    registry = Registry(serving_settings)
    store = KeyStore(registry.store)
    tokens = {s: store.create(s, [s])[1] for s in ("predict", "feedback", "deploy", "admin")}
    return TestClient(create_app(serving_settings, registry=registry, auth=True)), tokens


def test_every_route_needs_its_scope(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = keyed
    with client:
        for method, path, body, scope in ROUTES:
            anonymous = client.request(method, path, json=body)
            if scope is None:
                assert anonymous.status_code == 200, (path, anonymous.text)
                continue
            assert anonymous.status_code == 401, path
            assert anonymous.json()["error"]["code"] == "unauthenticated"
            for held, token in tokens.items():
                r = client.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {token}"}
                )
                allowed = held in (scope, "admin")
                assert (r.status_code != 403) == allowed, (path, held, r.status_code)
                if allowed:
                    assert r.status_code == 200, (path, held, r.text)
        bad = client.post(
            "/models/churn/predict", json={"records": [ROW]}, headers={"X-Api-Key": "mlp_x_y"}
        )
        assert bad.status_code == 401


def test_websocket_needs_a_predict_key(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = keyed
    with client:
        with client.websocket_connect("/models/churn/stream") as ws:
            assert ws.receive_json()["error"]["code"] == "unauthenticated"
        with client.websocket_connect(f"/models/churn/stream?api_key={tokens['predict']}") as ws:
            ws.send_json({"records": [ROW]})
            assert ws.receive_json()["predictions"][0]["label"] == "yes"


def test_auth_auto_is_open_on_loopback_only(serving_settings: Settings) -> None:
    from mloop.auth import auth_required

    assert auth_required("auto", "127.0.0.1") is False
    assert auth_required("auto", "::1") is False
    assert auth_required("auto", "0.0.0.0") is True
    assert auth_required("off", "0.0.0.0") is False
    with TestClient(create_app(serving_settings)) as client:  # default host is loopback
        assert client.post("/models/churn/predict", json={"records": [ROW]}).status_code == 200
