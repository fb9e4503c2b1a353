"""The dashboard in a real browser (Debian's Chromium driven by Playwright) on a real server.

A model with traffic, labels and a running canary; the test opens ``/ui/``, clicks
through Model, Compare, Version, Monitor (picking a version with the keyboard), Rollout
(the latency chart of both sides) and Alerts & runs, watches a number change without a
reload, rolls the canary back from its button, and checks that no page asked any
host but the server. A second walk opens the Gateway screen of a real ``mloop gateway
serve`` on the mock provider. Screenshots land in the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from processes import free_port, wait_ready
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mloop.auth import KeyStore, Limits, LimitStore
from mloop.config import DashboardSettings, Settings
from mloop.pipelines import RunStore
from mloop.registry import Registry
from mloop.rollout import CanaryPolicy, Guard, Rollouts
from mloop.server import ServerHandle, run_in_background
from mloop.store import MetadataStore

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 20_000


def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it.")
    pytest.skip(reason)


@pytest.fixture
def sync_playwright() -> Any:
    _need(shutil.which(CHROMIUM) is not None, f"no Chromium at {CHROMIUM} (apt install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        _need(False, "playwright is not installed (pip install 'mloop[test]')")
    return sync_playwright


def _serve(settings: Settings, *, auth: bool) -> tuple[ServerHandle, Registry]:
    settings = replace(
        settings,
        serving=replace(settings.serving, alias_poll_s=0.2, cache_size=0, access_log=False),
        monitor=replace(settings.monitor, compact_interval_s=0.5),
    )
    x, y = load_iris(return_X_y=True, as_frame=True)
    registry = Registry(settings)
    registry.register(
        LogisticRegression(max_iter=300).fit(x, y),
        "iris",
        training_data=x,
        metrics={"accuracy": 0.96},
        alias="production",
    )
    registry.register(
        LogisticRegression(C=0.05, max_iter=300).fit(x, y),
        "iris",
        training_data=x,
        metrics={"accuracy": 0.84},
    )
    handle = run_in_background(settings, registry=registry, auth=auth, controller_tick_s=0.2)
    return handle, registry


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[ServerHandle, Registry]]:
    handle, registry = _serve(settings, auth=False)
    try:
        yield handle, registry
    finally:
        handle.stop()
        registry.store.dispose()


@pytest.fixture
def served_with_keys(settings: Settings) -> Iterator[tuple[ServerHandle, Registry]]:
    handle, registry = _serve(settings, auth=True)
    try:
        yield handle, registry
    finally:
        handle.stop()
        registry.store.dispose()


def _traffic(url: str, n: int) -> None:
    x, y = load_iris(return_X_y=True, as_frame=True)
    sample = x.sample(n=n, random_state=n)
    with httpx.Client(base_url=url, timeout=10) as http:
        labels = []
        for index, row in zip(sample.index, sample.to_dict("records"), strict=True):
            answer = http.post("/models/iris/predict", json={"records": [row]})
            assert answer.status_code == 200, answer.text
            labels.append({"request_id": answer.json()["request_id"], "label": int(y[index])})
        labels = labels[: n // 2]  # half the labels have arrived
        assert http.post("/feedback", json=labels).status_code == 202


def _canary_traffic(url: str) -> None:
    """Keyed requests until both sides of the canary have answered some (and were tallied)."""
    x, _ = load_iris(return_X_y=True, as_frame=True)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    with httpx.Client(base_url=url, timeout=10) as http:
        for i in range(10_000):
            assert time.monotonic() < deadline, "the candidate answered nothing"
            row = x.iloc[[i % len(x)]].to_dict("records")
            headers = {"X-Mloop-Key": f"user-{i}"}
            answer = http.post("/models/iris/predict", json={"records": row}, headers=headers)
            assert answer.status_code == 200, answer.text
            if i % 20 == 19:
                latency = http.get("/ui/api/models/iris/rollout").json()["latency"]
                if all(sum(latency[side]["requests"]) for side in ("stable", "candidate")):
                    return


def test_walk_the_dashboard_and_roll_back_a_canary(
    sync_playwright: Any, served: tuple[ServerHandle, Registry], tmp_path: Path
) -> None:
    handle, registry = served
    _traffic(handle.url, 30)
    policy = CanaryPolicy(
        steps=(20.0, 100.0),
        step_duration_s=3600.0,
        guards=(Guard("error_rate", "<", 0.5),),
        min_requests=1,
        interval_s=1.0,
    )
    Rollouts(registry).deploy("iris:2", policy, actor="test")
    # A finished retraining run the gate stopped (as the runner records one).
    runs = RunStore(registry.store)
    trigger = {"kind": "alert", "key": "iris-drift", "at": 0.0, "details": {}}
    runs.create_run(
        "run-1",
        pipeline="iris-retrain",
        model="iris",
        trigger=trigger,
        params={},
        steps=["snapshot", "validate", "train", "gate"],
        now=time.time(),
    )
    for step in ("snapshot", "validate", "train"):
        runs.update_step("run-1", step, status="succeeded")
    runs.update_step("run-1", "gate", status="failed", error="challenger 0.84 < champion 0.96")
    runs.update_run("run-1", status="rejected", error="gate: challenger 0.84 < champion 0.96")
    server = urlsplit(handle.url).netloc
    asked: list[str] = []

    from playwright.sync_api import expect

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda request: asked.append(request.url))
            page.on("dialog", lambda dialog: dialog.accept())

            # Models: the served model with its traffic; a live value moves without reload.
            page.goto(handle.url + "/ui/")
            row = page.locator("tbody tr", has_text="iris")
            assert "@production→v1" in row.inner_text()
            # (Locator waits: the page's CSP forbids the eval a wait_for_function needs.)
            page.locator("body[data-refreshed]").wait_for(state="attached")
            rate = page.locator('[data-field="0.request_rate"]')
            before = rate.inner_text()
            _traffic(handle.url, 40)
            expect(rate).not_to_have_text(before, timeout=TIMEOUT_MS)
            assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
            page.screenshot(path=str(tmp_path / "models.png"), full_page=True)

            # Model: versions and the metric-over-versions chart.
            page.get_by_role("link", name="iris", exact=True).first.click()
            page.wait_for_url("**/ui/models/iris")
            assert page.locator("[data-chart=metrics] svg path").count() == 1
            page.screenshot(path=str(tmp_path / "model.png"), full_page=True)

            # Compare (the form on the Model page), then back.
            page.get_by_role("button", name="Compare").click()
            page.wait_for_url("**/compare?a=1&b=2")
            assert "0.96" in page.locator("section", has_text="Metrics").inner_text()
            assert "The contracts are the same." in page.content()
            page.go_back()

            # Version: lineage and contract.
            page.get_by_role("link", name="v1", exact=True).click()
            page.wait_for_url("**/versions/1")
            assert "sepal length (cm)" in page.locator("section", has_text="Contract").inner_text()
            assert page.locator("section", has_text="Lineage").locator("dd").count() > 0
            page.screenshot(path=str(tmp_path / "version.png"), full_page=True)

            # Monitor: drift per feature, predictions, labels; charts drawn from the data.
            page.get_by_role("link", name="Monitor", exact=True).click()
            page.wait_for_url("**/monitor")
            page.locator("[data-chart=drift] svg").wait_for()
            assert page.locator("[data-chart=labels] svg rect").count() >= 1
            # The version picker: the serving version by default, picked with the keyboard,
            # submitted with the window picker's choice, kept by the live refresh.
            picker = page.get_by_label("Traffic of")
            expect(picker).to_have_value("1")
            assert "v1 (production, serving)" in picker.locator("option:checked").inner_text()
            page.get_by_label("in windows of").select_option("15m")
            picker.focus()
            page.keyboard.press("ArrowUp")  # v2, the newest, is listed first
            expect(picker).to_have_value("2")
            page.keyboard.press("Tab")  # "last" span
            page.keyboard.press("Tab")  # window
            page.keyboard.press("Tab")  # Show
            page.keyboard.press("Enter")
            page.wait_for_url("**/monitor?version=2&since=24h&window=15m")
            expect(page.get_by_label("Traffic of")).to_have_value("2")
            expect(page.get_by_label("in windows of")).to_have_value("15m")
            assert "v2" in page.locator("dl").first.inner_text()
            page.locator("body[data-refreshed]").wait_for(state="attached")
            assert "version=2" in (page.locator("body").get_attribute("data-api") or "")
            expect(page.get_by_label("Traffic of")).to_have_value("2")
            page.get_by_label("Traffic of").select_option("1")
            page.get_by_role("button", name="Show").click()
            page.wait_for_url("**/monitor?version=1&since=24h&window=15m")
            page.locator("[data-chart=drift] svg").wait_for()
            page.screenshot(path=str(tmp_path / "monitor.png"), full_page=True)

            # Rollout: both sides, the guard with its value, then roll back from the button.
            page.get_by_role("link", name="Rollout", exact=True).click()
            page.wait_for_url("**/rollout")
            assert "error_rate" in page.locator("section", has_text="Guards").inner_text()
            # Rendered by the server, then redrawn from the JSON: both read 80 % / 20 %.
            page.locator("body[data-refreshed]").wait_for(state="attached")
            expect(page.locator('[data-field="rollout.stable_traffic"]')).to_have_text("80.0%")
            expect(page.locator('[data-field="rollout.candidate_traffic"]')).to_have_text("20.0%")
            # Latency per interval, stable vs candidate: p50 and p99 lines of each side.
            _canary_traffic(handle.url)
            latency = page.locator("[data-chart=latency]")
            expect(latency.locator("svg path")).to_have_count(4, timeout=TIMEOUT_MS)
            legend = latency.locator(".legend").inner_text()
            for line in ("stable v1 p50", "stable v1 p99", "candidate v2 p50", "candidate v2 p99"):
                assert line in legend, legend
            page.screenshot(path=str(tmp_path / "rollout.png"), full_page=True)
            page.get_by_role("button", name="Rollback").click()
            page.locator('[data-field="rollout.phase"]', has_text="rolled_back").wait_for()
            expect(page.locator('[data-field="rollout.candidate_traffic"]')).to_have_text("0.0%")
            page.screenshot(path=str(tmp_path / "rolled-back.png"), full_page=True)
            page.get_by_role("link", name="Alerts & runs").click()
            page.wait_for_url("**/ui/activity")
            run = page.locator("tbody tr", has_text="run-1").inner_text()
            assert "gate:failed" in run and "challenger 0.84 < champion 0.96" in run
            page.screenshot(path=str(tmp_path / "activity.png"), full_page=True)

            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            page.goto(handle.url + "/ui/")
            page.screenshot(path=str(tmp_path / "models-phone.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.emulate_media(color_scheme="dark")
            page.goto(handle.url + "/ui/models/iris/monitor")
            page.locator("[data-chart=drift] svg").wait_for()
            page.screenshot(path=str(tmp_path / "monitor-dark.png"), full_page=True)
        finally:
            browser.close()

    state, _ = Rollouts(registry).status("iris")
    assert state.phase == "rolled_back"
    assert Rollouts(registry).history("iris")[-1]["actor"].startswith("dashboard:")
    off_machine = [u for u in asked if urlsplit(u).netloc != server]
    assert off_machine == []
    assert all((tmp_path / f).stat().st_size > 10_000 for f in ("models.png", "rollout.png"))


def test_a_view_key_cannot_roll_back_and_a_deploy_key_can(
    sync_playwright: Any, served_with_keys: tuple[ServerHandle, Registry]
) -> None:
    from playwright.sync_api import expect

    handle, registry = served_with_keys
    keys = KeyStore(registry.store)
    view = keys.create("viewer", ["view"])[1]
    deploy = keys.create("operator", ["deploy"])[1]
    Rollouts(registry).deploy("iris:2", CanaryPolicy(steps=(20.0, 100.0)), actor="test")

    def log_in(page: Any, token: str) -> None:
        page.goto(handle.url + "/ui/models/iris/rollout")
        page.get_by_label("API key").fill(token)
        page.get_by_role("button", name="Use this key").click()
        page.get_by_role("heading", name="iris: rollout").wait_for()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(handle.url + "/ui/")
            assert "lacks" not in page.content() and page.get_by_label("API key").count() == 1

            log_in(page, view)
            page.get_by_role("button", name="Rollback").click()
            expect(page.locator("#command-result")).to_contain_text("lacks scope 'deploy'")
            assert Rollouts(registry).status("iris")[0].active

            page.context.clear_cookies()
            log_in(page, deploy)
            page.get_by_role("button", name="Rollback").click()
            page.locator('[data-field="rollout.phase"]', has_text="rolled_back").wait_for()
        finally:
            browser.close()
    assert Rollouts(registry).status("iris")[0].phase == "rolled_back"
    assert Rollouts(registry).history("iris")[-1]["actor"] == "dashboard:operator"


GATEWAY_CONFIG = """
[[deployments]]
name = "big"
base_url = "{provider}/v1"
model = "big"
input_cost_per_1k = 1.0
output_cost_per_1k = 2.0

[[deployments]]
name = "small"
base_url = "{provider}/v1"
model = "small"
input_cost_per_1k = 0.5
output_cost_per_1k = 1.0

[routes.smart]
chain = ["big", "small"]
"""
HELLO = {"model": "smart", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes the test starts; each is stopped (by its own handle) at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start(procs: list[subprocess.Popen[bytes]], args: list[str], ready: str, **env: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    procs.append(proc)
    wait_ready(ready, proc)


def test_walk_the_gateway_screen_of_a_real_gateway(
    sync_playwright: Any,
    settings: Settings,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    # Keys in the home the gateway serves from: an admin key for the dashboard, a budgeted bot.
    store = MetadataStore.from_settings(settings)
    keys = KeyStore(store)
    admin = keys.create("dashboard", ["admin"])[1]
    bot_info, bot = keys.create("search-bot", ["gateway"])
    LimitStore(store).set_team("search", Limits(budgets_usd={"week": 50.0}))
    LimitStore(store).set_key(bot_info.key_id, Limits(budgets_usd={"day": 5.0}), team="search")
    store.dispose()

    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    models = json.dumps({"big": {"rpm": 1}, "small": {}})  # "big": one request a minute
    _start(
        processes,
        ["-m", "mloop.gateway.testing", "--port", str(port), "--models", models],
        f"{provider}/v1/models",
    )
    # Someone else takes "big"'s one request: the gateway's first call there is a 429.
    assert httpx.post(f"{provider}/v1/chat/completions", json={**HELLO, "model": "big"}).is_success
    config = tmp_path / "gateway.toml"
    config.write_text(GATEWAY_CONFIG.format(provider=provider))
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    _start(
        processes,
        ["-m", "mloop.cli._gateway", "serve", "--config", str(config), "--port", str(port)],
        f"{gateway}/healthz",
        MLOOP_HOME=str(settings.home),
        MLOOP_GATEWAY__AUTH="on",
    )
    as_bot = {"authorization": f"Bearer {bot}"}
    with httpx.Client(base_url=gateway, headers=as_bot, timeout=30) as http:
        for _ in range(2):
            answer = http.post("/v1/chat/completions", json=HELLO)
            assert answer.status_code == 200 and answer.headers["x-mloop-deployment"] == "small"
        job = http.post("/v1/jobs", json=HELLO).json()
        for _ in range(200):
            if http.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded":
                break
            time.sleep(0.05)

    dashboard = DashboardSettings(gateway_url=gateway, gateway_key=admin)
    handle, registry = _serve(replace(settings, dashboard=dashboard), auth=False)
    server = urlsplit(handle.url).netloc
    asked: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(TIMEOUT_MS)
                page.on("request", lambda request: asked.append(request.url))
                page.goto(handle.url + "/ui/")
                page.get_by_role("link", name="Gateway", exact=True).click()  # one click
                page.wait_for_url("**/ui/gateway")
                deployments = page.locator("section", has_text="Deployments")
                big = deployments.locator("tbody tr", has_text="big").inner_text()
                assert "openai · big" in big and "closed" in big
                field = 'data-field="status.deployments.{}"'.format
                expect(page.locator(f"[{field('0.provider_429')}]")).to_have_text("1")
                expect(page.locator(f"[{field('1.fallbacks')}]")).to_have_text("3")
                expect(page.locator('[data-field="status.jobs.succeeded"]')).to_have_text("1")
                expect(page.locator('[data-field="status.queue.interactive"]')).to_have_text("0")
                fallbacks = page.locator("section", has_text="Requests and fallbacks").inner_text()
                assert "smart" in fallbacks and "small" in fallbacks
                spend = page.locator("section", has_text="Spend").inner_text()
                assert f"key:{bot_info.key_id}" in spend and "team:search" in spend
                assert "route:smart" in spend and "deployment:small" in spend

                # Live: one more request through the gateway shows up without a reload.
                calls = page.locator(f"[{field('1.calls.ok')}]")
                expect(calls).to_have_text("3")
                answer = httpx.post(f"{gateway}/v1/chat/completions", json=HELLO, headers=as_bot)
                assert answer.status_code == 200
                expect(calls).to_have_text("4", timeout=TIMEOUT_MS)
                assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
                page.screenshot(path=str(tmp_path / "gateway.png"), full_page=True)
            finally:
                browser.close()
    finally:
        handle.stop()
        registry.store.dispose()
    # The page read the gateway through the server: the browser asked no other host.
    assert [u for u in asked if urlsplit(u).netloc != server] == []
    assert (tmp_path / "gateway.png").stat().st_size > 10_000
