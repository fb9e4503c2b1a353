"""Inputs a hostile or careless client sends get a 4xx in the error shape, never a 500.

Each row is a request that once answered 500 (or one of its near relatives); the
assembled server (monitoring routes included) must answer it with a 4xx whose body
is ``{"error": {type, code, message, retryable, ...}}`` of a user-fixable type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mloop.config import Settings
from mloop.server import build_app

ROW = {"a": 1.0, "b": 2.0, "plan": "pro"}
HUGE = "99999999999999999999"


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _v2(**spec: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0], **spec}]}


CASES: list[tuple[str, str, Any]] = [
    ("POST", f"/models/churn/versions/{HUGE}/predict", {"records": [ROW]}),
    ("POST", f"/v2/models/churn/versions/{HUGE}/infer", {"inputs": []}),
    ("GET", f"/v2/models/churn/versions/{HUGE}", None),
    ("GET", f"/v2/models/churn/versions/{HUGE}/ready", None),
    ("POST", "/models/churn:²/predict", {"records": [ROW]}),
    ("GET", "/v2/models/churn:²", None),
    ("POST", "/models/churn/predict", _deep(300)),
    ("POST", "/models/churn/predict", '{"records": ' + _deep(1000) + "}"),
    ("POST", "/models/churn/predict", '{"records": [{"a": ' + _deep(300) + "}]}"),
    ("POST", "/models/churn/predict", '{"records": [{"a": 1, "zz": ' + _deep(600) + "}]}"),
    ("POST", "/models/churn/predict", '{"records": [{"a": 1e999, "b": 2, "plan": "pro"}]}'),
    ("POST", "/models/churn/predict", '{"records": [{"a": NaN, "b": 2, "plan": "pro"}]}'),
    ("POST", "/models/churn/predict", {"records": "x"}),
    ("POST", "/models/churn/predict", {"records": [[1, 2]]}),
    ("POST", "/models/churn/predict", {"columns": {"a": [1], "b": [1, 2], "plan": ["pro"]}}),
    ("POST", "/v2/models/churn/infer", _v2(shape=["x"])),
    ("POST", "/v2/models/churn/infer", _v2(shape=[-1])),
    ("POST", "/v2/models/churn/infer", _v2(shape=[True])),
    ("POST", "/v2/models/churn/infer", _v2(shape=[1] * 20)),
    ("POST", "/v2/models/churn/infer", _v2(shape=[99999999999])),
    ("POST", "/v2/models/churn/infer", _v2(parameters={"binary_data_size": "x"})),
    ("POST", "/v2/models/churn/infer", _v2(parameters={"binary_data_size": -5})),
    ("POST", "/v2/models/churn/infer", _v2(parameters={"binary_data_size": 10**12})),
    ("POST", "/v2/models/churn/infer", _v2(parameters="x")),
    ("POST", "/v2/models/churn/infer", _v2(data=[[[[1.0]]]])),
    (
        "POST",
        "/v2/models/churn/infer",
        '{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": ' + _deep(900) + "}]}",
    ),
    ("POST", "/v2/models/churn/infer", _v2(datatype="BOOL", data=["x"])),
    ("GET", "/models/churn/monitor/status?window=0s", None),
    ("GET", "/models/churn/monitor/report?window=0s", None),
    ("GET", "/models/churn/monitor/status?since=nan", None),
    ("GET", "/models/churn/monitor/status?since=inf", None),
    ("GET", "/models/churn/monitor/status?since=1e308", None),
    ("GET", "/models/churn/monitor/status?until=-1e308", None),
]


@pytest.fixture(scope="module")
def client(served_home: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    import shutil
    from dataclasses import replace

    from mloop.config import load_settings

    home = tmp_path_factory.mktemp("hostile") / "home"
    shutil.copytree(served_home, home)
    s: Settings = load_settings(env={}, config_file=None, home=home)
    s = replace(s, serving=replace(s.serving, access_log=False))
    with TestClient(build_app(s), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(("method", "path", "body"), CASES, ids=lambda v: str(v)[:40])
def test_a_bad_request_is_a_4xx_in_the_error_shape(
    client: TestClient, method: str, path: str, body: Any
) -> None:
    kwargs: dict[str, Any] = {}
    if isinstance(body, str):
        kwargs = {"content": body, "headers": {"content-type": "application/json"}}
    elif body is not None:
        kwargs = {"content": json.dumps(body), "headers": {"content-type": "application/json"}}
    r = client.request(method, path, **kwargs)
    assert 400 <= r.status_code < 500, r.text[:300]
    error = r.json()["error"]
    assert error["type"] == "user_fixable", error
    assert error["message"] and "bug" not in error["message"]


def test_a_version_whose_artifact_was_tampered_with_is_not_ready(
    served_home: Any, tmp_path: Any
) -> None:
    import shutil

    from mloop.config import load_settings

    home = tmp_path / "home"
    shutil.copytree(served_home, home)
    s = load_settings(env={}, config_file=None, home=home)
    with TestClient(build_app(s), raise_server_exceptions=False) as c:
        assert c.get("/v2/models/churn/versions/2/ready").status_code == 200
        c.app.state.serving.engine.pool.evict("churn", 2)  # type: ignore[attr-defined]
        for blob in (home / "artifacts" / "sha256").rglob("*"):
            if blob.is_file():
                blob.write_bytes(blob.read_bytes() + b"tampered")
        r = c.get("/v2/models/churn/versions/2/ready")
        assert r.status_code == 503, r.text
        assert c.get("/v2/health/ready").status_code == 200  # v2 takes no traffic
        c.app.state.serving.engine.pool.evict("churn", 1)  # type: ignore[attr-defined]
        c.post("/models/churn/predict", json={"records": [ROW]})  # production fails to load
        whole = c.get("/v2/health/ready")
        assert whole.status_code == 503 and whole.json()["failing"] == ["churn:1"]
        body = r.json()
        assert body["ready"] is False
        assert body["error"]["type"] == "operator_fixable"
        assert "modified after registration" in body["error"]["message"]


def test_extra_columns_and_huge_text_never_reach_the_log(serving_settings: Settings) -> None:
    from mloop.serving import create_app

    records: list[Any] = []

    class Sink:
        def submit(self, record: Any) -> None:
            records.append(record)

    app = create_app(serving_settings, auth=False, prediction_sink=Sink())
    wide = {**ROW, **{f"extra_{i}": i for i in range(8000)}}
    with TestClient(app) as c:
        assert c.post("/models/churn/predict", json={"records": [wide]}).status_code == 200
        long_plan = {**ROW, "plan": "p" * 100_000}
        c.post("/models/churn/predict", json={"records": [long_plan]})
    logged = [r["inputs"][0] for r in records]
    assert logged[0] == ROW  # the contract's columns only
    assert set(logged[1]) == set(ROW) and len(logged[1]["plan"]) == 1024


def test_an_unknown_url_lists_served_models_only_without_keys(serving_settings: Settings) -> None:
    from mloop.serving import create_app

    with TestClient(create_app(serving_settings, auth=True)) as keyed:
        body = keyed.get("/no/such/thing").json()["error"]
    assert "churn" not in body["message"] and "known_models" not in body
    assert "GET /models" in body["message"]
    with TestClient(create_app(serving_settings, auth=False)) as open_:
        assert "churn" in open_.get("/no/such/thing").json()["error"]["message"]
