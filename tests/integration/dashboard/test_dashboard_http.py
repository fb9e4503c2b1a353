"""The dashboard mounted by the full server: pages, JSON twins, keys and escaping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mloop.auth import KeyStore
from mloop.config import Settings
from mloop.pipelines import RunStore
from mloop.registry import Registry
from mloop.rollout import CanaryPolicy, Rollouts
from mloop.server import build_app

HOSTILE = "<script>alert('x')</script>"
PAGES = [
    "/ui/",
    "/ui/models/iris",
    "/ui/models/iris/versions/1",
    "/ui/models/iris/compare?a=1&b=2",
    "/ui/models/iris/monitor?since=1h&window=5m",
    "/ui/models/iris/rollout",
    "/ui/activity",
    "/ui/gateway",
]


@pytest.fixture
def registry(settings: Settings) -> Registry:
    x, y = load_iris(return_X_y=True, as_frame=True)
    reg = Registry(settings)
    reg.register(
        LogisticRegression(max_iter=300).fit(x, y),
        "iris",
        training_data=x,
        metrics={"accuracy": 0.95},
        tags={"note": HOSTILE},
        description=HOSTILE,
        alias="production",
    )
    reg.register(
        LogisticRegression(C=0.05, max_iter=300).fit(x, y),
        "iris",
        training_data=x,
        metrics={"accuracy": 0.8},
    )
    return reg


@pytest.fixture
def open_client(settings: Settings, registry: Registry) -> Iterator[TestClient]:
    with TestClient(build_app(settings, registry=registry, auth=False)) as client:
        yield client


@pytest.fixture
def keyed(settings: Settings, registry: Registry) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = KeyStore(registry.store)
    tokens = {
        scope: store.create(f"{scope}-key", [scope])[1] for scope in ("view", "predict", "deploy")
    }
    with TestClient(build_app(settings, registry=registry, auth=True)) as client:
        yield client, tokens


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_page_renders_keyless_on_loopback(open_client: TestClient) -> None:
    x, _ = load_iris(return_X_y=True, as_frame=True)
    assert (
        open_client.post(
            "/models/iris/predict", json={"records": x.head(5).to_dict("records")}
        ).status_code
        == 200
    )
    for path in PAGES:
        response = open_client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        # Every asset is ours: no page names another site.
        assert "http://" not in response.text and "https://" not in response.text
        assert 'src="/ui/static/dashboard.js"' in response.text


def test_json_twins_hold_the_numbers_the_pages_show(open_client: TestClient) -> None:
    [row] = open_client.get("/ui/api/models").json()
    assert row["name"] == "iris" and row["serving_version"] == 1
    model = open_client.get("/ui/api/models/iris").json()
    assert [v["metrics"]["accuracy"] for v in model["versions"]] == [0.95, 0.8]
    contract = open_client.get("/ui/models/iris/versions/1/contract.json")
    assert contract.headers["content-disposition"].startswith("attachment")
    assert contract.json()["columns"][0]["name"] == "sepal length (cm)"


def test_hostile_tag_and_description_render_inert(open_client: TestClient) -> None:
    for path in ("/ui/models/iris/versions/1", "/ui/models/iris/compare?a=1&b=2"):
        text = open_client.get(path).text
        assert HOSTILE not in text
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    # In the JSON block for the scripts, "<" is escaped so no value can close it.
    text = open_client.get("/ui/models/iris").text
    assert "<script>alert" not in text
    assert (
        open_client.get("/ui/").headers["content-security-policy"].startswith("default-src 'self'")
    )


def test_runs_show_their_steps_and_why_they_stopped(
    open_client: TestClient, registry: Registry
) -> None:
    runs = RunStore(registry.store)
    trigger = {"kind": "alert", "key": "iris-drift", "at": 1.0, "details": {}}
    steps = ["snapshot", "validate", "train", "gate"]
    runs.create_run(
        "r1",
        pipeline="iris-retrain",
        model="iris",
        trigger=trigger,
        params={},
        steps=steps,
        now=2.0,
    )
    runs.update_step("r1", "snapshot", status="succeeded")
    runs.update_step("r1", "gate", status="failed", error="challenger 0.80 < champion 0.95")
    runs.update_run("r1", status="rejected", error=f"gate refused it {HOSTILE}")
    [run] = open_client.get("/ui/api/activity").json()["runs"]
    assert run["stopped_because"] == f"gate refused it {HOSTILE}"
    assert [s["status"] for s in run["steps"]] == ["succeeded", "pending", "pending", "failed"]
    text = open_client.get("/ui/activity").text
    assert "snapshot:succeeded → validate:pending → train:pending → gate:failed" in text
    assert "gate refused it &lt;script&gt;" in text and HOSTILE not in text


def test_unknown_model_is_a_404_page_and_a_json_error(open_client: TestClient) -> None:
    page = open_client.get("/ui/models/nope")
    assert page.status_code == 404 and "nope" in page.text
    api = open_client.get("/ui/api/models/nope")
    assert api.status_code == 404 and api.json()["error"]["type"]


def test_keys_view_scope_reads_and_others_are_refused(
    keyed: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = keyed
    missing = client.get("/ui/")
    assert missing.status_code == 401 and 'id="login"' in missing.text
    assert client.get("/ui/api/models").json()["error"]["code"]
    assert client.get("/ui/", headers=_bearer(tokens["predict"])).status_code == 403
    for token in (tokens["view"], tokens["deploy"]):
        for path in PAGES:
            assert client.get(path, headers=_bearer(token)).status_code == 200, path


def test_login_keeps_the_key_in_a_same_site_cookie(
    keyed: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = keyed
    assert client.post("/ui/login", json={"api_key": "mlp_bad_key"}).status_code == 401
    as_form = client.post("/ui/login", data={"api_key": tokens["view"]})
    assert as_form.status_code == 422 and "set-cookie" not in as_form.headers
    answer = client.post("/ui/login", json={"api_key": tokens["view"]})
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/ui/models/iris").status_code == 200


def test_rollback_needs_deploy_and_the_dashboard_header(
    keyed: tuple[TestClient, dict[str, str]], registry: Registry
) -> None:
    client, tokens = keyed
    Rollouts(registry).deploy("iris:2", CanaryPolicy(steps=(10.0, 100.0)), actor="ana")
    url = "/ui/api/models/iris/rollout/rollback"
    ui = {"X-Mloop-UI": "1"}
    refused = client.post(url, headers={**_bearer(tokens["view"]), **ui}, json={})
    assert refused.status_code == 403
    assert "deploy" in refused.json()["error"]["message"]
    no_header = client.post(url, headers=_bearer(tokens["deploy"]), json={})
    assert no_header.status_code == 422
    done = client.post(url, headers={**_bearer(tokens["deploy"]), **ui}, json={"reason": "p99"})
    assert done.status_code == 200 and done.json()["rollout"]["phase"] == "rolled_back"
    timeline = client.get("/ui/api/models/iris/rollout", headers=_bearer(tokens["view"])).json()
    assert timeline["timeline"][-1]["actor"] == "dashboard:deploy-key"
    assert timeline["timeline"][-1]["reason"] == "p99"


def test_a_version_without_training_data_says_what_is_missing(
    open_client: TestClient, registry: Registry
) -> None:
    x, y = load_iris(return_X_y=True, as_frame=True)
    registry.register(LogisticRegression(max_iter=300).fit(x, y), "iris")
    page = open_client.get("/ui/models/iris/versions/3")
    assert page.status_code == 200
    assert "No contract: register iris with training_data" in page.text
    assert "No reference profile" in page.text
    download = open_client.get("/ui/models/iris/versions/3/contract.json")
    assert download.status_code == 404
    assert "training_data" in download.json()["error"]["message"]


def test_a_firing_alert_shows_on_models_and_activity(
    settings: Settings, registry: Registry
) -> None:
    rule = {
        "name": "iris-traffic",
        "model": "iris",
        "metric": "rows",
        "op": ">",
        "threshold": 0,
        "window": "1h",
    }
    configured = replace(settings, raw={**settings.raw, "alerts": [rule]})
    x, _ = load_iris(return_X_y=True, as_frame=True)
    with TestClient(build_app(configured, registry=registry, auth=False)) as client:
        # The request goes out at least 20 s before its hour ends: the server's own alert
        # loop (real time) cannot see that hour complete before this test evaluates it at
        # its end, so the firing event is this evaluation's, not a race with the loop.
        if time.time() % 3600 > 3580:
            time.sleep(3600.5 - time.time() % 3600)
        before = time.time()
        sent = client.post("/models/iris/predict", json={"records": x.head(3).to_dict("records")})
        assert sent.status_code == 200
        stack = client.app.state.stack  # type: ignore[attr-defined]
        stack.monitor.compact()
        # Just after that hour ends: it is the last complete window the rule reads.
        events = stack.alerter.evaluate(now=(before // 3600 + 1) * 3600 + 1)
        assert [e.kind for e in events] == ["firing"]
        [model] = client.get("/ui/api/models").json()
        assert [a["rule"] for a in model["open_alerts"]] == ["iris-traffic"]
        [alert] = client.get("/ui/api/activity").json()["alerts"]
        assert (alert["rule"], alert["kind"]) == ("iris-traffic", "firing")
        page = client.get("/ui/activity").text
        assert "iris-traffic" in page and "firing" in page


def test_the_monitor_picks_a_version_and_keeps_it_with_the_window(
    open_client: TestClient,
) -> None:
    x, _ = load_iris(return_X_y=True, as_frame=True)
    records = x.head(4).to_dict("records")
    assert open_client.post("/models/iris/predict", json={"records": records}).status_code == 200
    open_client.app.state.stack.monitor.compact()  # type: ignore[attr-defined]
    served = open_client.get("/ui/api/models/iris/monitor?since=1h&window=5m").json()
    assert (served["version"], served["rows"]) == (1, 4)  # @production answered them
    other = open_client.get("/ui/api/models/iris/monitor?since=1h&window=5m&version=2").json()
    assert (other["version"], other["rows"]) == (2, 0)
    every = open_client.get("/ui/api/models/iris/monitor?since=1h&window=5m&version=all").json()
    assert (every["version"], every["rows"]) == (None, 4)
    page = open_client.get("/ui/models/iris/monitor?since=1h&window=5m&version=2").text
    assert '<option value="2" selected>v2</option>' in page
    assert "<option selected>5m</option>" in page  # the window stays picked
    # The page refreshes from the same choice.
    assert 'data-api="/ui/api/models/iris/monitor?since=1h&amp;window=5m&amp;version=2"' in page
    bad = open_client.get("/ui/api/models/iris/monitor?version=latest")
    assert bad.status_code == 422 and "give a number" in bad.json()["error"]["message"]
    assert open_client.get("/ui/models/iris/monitor?version=latest").status_code == 422


def test_the_rollout_page_charts_each_sides_latency_from_the_fleets_tallies(
    open_client: TestClient, registry: Registry
) -> None:
    Rollouts(registry).deploy("iris:2", CanaryPolicy(steps=(50.0, 100.0)), actor="ana")
    x, _ = load_iris(return_X_y=True, as_frame=True)
    deadline = time.monotonic() + 20
    latency: dict[str, object] = {}
    while time.monotonic() < deadline:  # the server moves its tallies to the ledger each second
        for i in range(20):
            row = x.iloc[[i]].to_dict("records")
            headers = {"X-Mloop-Key": f"user-{i}"}
            sent = open_client.post("/models/iris/predict", json={"records": row}, headers=headers)
            assert sent.status_code == 200
        latency = open_client.get("/ui/api/models/iris/rollout").json()["latency"]
        if all(sum(latency[side]["requests"]) for side in ("stable", "candidate")):  # type: ignore[index]
            break
        time.sleep(0.2)
    for side, version in (("stable", 1), ("candidate", 2)):
        series = latency[side]  # type: ignore[index]
        assert series["version"] == version and sum(series["requests"]) > 0, latency
        assert any(p is not None and p > 0 for p in series["p99_ms"])
    page = open_client.get("/ui/models/iris/rollout").text
    assert 'data-chart="latency"' in page and "stable vs candidate" in page


def test_gateway_screen_says_what_to_configure(
    open_client: TestClient, settings: Settings, registry: Registry
) -> None:
    page = open_client.get("/ui/").text
    assert '<a href="/ui/gateway">Gateway</a>' in page  # one click from the first screen
    empty = open_client.get("/ui/gateway").text
    assert "No gateway configured: set [dashboard] gateway_url" in empty
    data = open_client.get("/ui/api/gateway").json()
    assert data["configured"] is False and data["status"] is None
    assert data["error"].startswith("No gateway configured")
    # A gateway that is configured but not there: the page says what to check, at once.
    nowhere = replace(
        settings,
        dashboard=replace(settings.dashboard, gateway_url="http://127.0.0.1:9", gateway_key="k"),
    )
    with TestClient(build_app(nowhere, registry=registry, auth=False)) as client:
        started = time.monotonic()
        response = client.get("/ui/gateway")
        assert time.monotonic() - started < 10  # a short timeout, never a hung page
    assert response.status_code == 200
    assert "Could not reach the gateway at http://127.0.0.1:9/v1/status" in response.text
    assert "check [dashboard] gateway_url" in response.text
