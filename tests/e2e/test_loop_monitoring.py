"""Monitoring through the full server: drift and accuracy alerts reach a webhook; the report renders.

The server (``run_in_background`` → ``build_app``) logs every prediction, its alert
loop evaluates ``[[alerts]]`` on 2-second windows, and a local HTTP server plays
the webhook receiver (Slack, PagerDuty …). In-distribution traffic raises nothing,
shifted traffic fires the drift alert, wrong labels sent to ``POST /feedback``
fire the accuracy alert. The HTML report then opens in headless Chromium.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mloop.config import load_settings
from mloop.registry import Registry
from mloop.server import run_in_background

WINDOW_S = 2.0
CHROMIUM = "/usr/bin/chromium"


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x1": rng.normal(shift, 1.0, n),
            "x2": rng.normal(shift, 1.0, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@dataclass
class Scenario:
    """What the run saw: webhook bodies per phase, the metrics text and the report."""

    quiet: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    metrics: str = ""
    report: str = ""
    statuses: list[int] = field(default_factory=list)


def _fired(received: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [r for r in received if r["alert"]["rule"] == rule and r["alert"]["kind"] == "firing"]


def _send(http: httpx.Client, frame: pd.DataFrame, out: Scenario) -> dict[str, Any]:
    records = frame.to_dict("records")
    r = http.post("/models/churn/predict", json={"records": records})
    out.statuses.append(r.status_code)
    return dict(r.json())


def _until(done: Any, seconds: float, step: Any) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        step()
        time.sleep(0.05)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("loop-monitoring")
    received: list[dict[str, Any]] = []
    hook = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Hook,), {"received": received}))
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    config = tmp / "mloop.toml"
    config.write_text(
        f"""
[monitor]
webhook_url = "http://127.0.0.1:{hook.server_address[1]}/hook"
window = "{WINDOW_S:g}s"

[[alerts]]
name = "churn-drift"
model = "churn"
metric = "drift_share"
threshold = 0.5
window = "{WINDOW_S:g}s"

[[alerts]]
name = "churn-accuracy"
model = "churn"
metric = "accuracy"
op = "<"
threshold = 0.6
window = "{WINDOW_S:g}s"
"""
    )
    base = load_settings(env={}, config_file=config, home=tmp / "home")
    settings = replace(base, serving=replace(base.serving, access_log=False))
    registry = Registry(settings)
    x = _frame(2000, seed=0)
    y = np.where(x["x1"] + x["x2"] > 0, "yes", "no")
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(x, y)
    registry.register(model, "churn", training_data=x, target=y, alias="production")
    out = Scenario()
    handle = run_in_background(settings, registry=registry, auth=False)
    seed = iter(range(1, 100_000))
    try:
        with httpx.Client(base_url=handle.url, timeout=30) as http:
            # 1. In distribution for two whole windows: nothing fires.
            quiet_until = time.time() + 2 * WINDOW_S + 1.5
            _until(
                lambda: time.time() > quiet_until,
                30,
                lambda: _send(http, _frame(10, next(seed)), out),
            )
            out.quiet = list(received)

            # 2. Shifted inputs (x1 and x2 by 1.5 sd): the drift alert fires.
            _until(
                lambda: bool(_fired(received, "churn-drift")),
                6 * WINDOW_S,
                lambda: _send(http, _frame(10, next(seed), shift=1.5), out),
            )
            out.drift = _fired(received, "churn-drift")

            # 3. Feedback says most predictions were wrong: the accuracy alert fires.
            def wrong_labels() -> None:
                answer = _send(http, _frame(10, next(seed)), out)
                labels = [
                    {"request_id": answer["request_id"], "row": i, "label": _flip(p)}
                    for i, p in enumerate(answer["predictions"])
                ]
                r = http.post("/feedback", json=labels)
                out.statuses.append(r.status_code)

            _until(lambda: bool(_fired(received, "churn-accuracy")), 6 * WINDOW_S, wrong_labels)
            out.accuracy = _fired(received, "churn-accuracy")
            out.metrics = http.get("/metrics").text
            report = http.get(
                "/models/churn/monitor/report", params={"since": "1m", "window": "10s"}
            )
            out.statuses.append(report.status_code)
            out.report = report.text
        yield out
    finally:
        handle.stop()
        hook.shutdown()
        registry.store.dispose()


def _flip(prediction: dict[str, Any]) -> str:
    return "no" if prediction["label"] == "yes" else "yes"


def test_in_distribution_traffic_raises_no_alert(scenario: Scenario) -> None:
    assert scenario.quiet == []
    assert scenario.statuses and set(scenario.statuses) <= {200, 202}


def test_shifted_traffic_fires_the_drift_alert_at_the_webhook(scenario: Scenario) -> None:
    assert scenario.drift, "no drift alert reached the webhook"
    alert = scenario.drift[0]
    assert alert["alert"]["model"] == "churn" and alert["alert"]["value"] >= 0.5
    assert "churn-drift" in alert["text"]
    assert 'mloop_monitor_drift_share{model="churn"}' in scenario.metrics
    assert 'mloop_alert_firing{model="churn",rule="churn-drift"} 1.0' in scenario.metrics


def test_wrong_feedback_fires_the_accuracy_alert(scenario: Scenario) -> None:
    assert scenario.accuracy, "no accuracy alert reached the webhook"
    assert scenario.accuracy[0]["alert"]["value"] < 0.6


def _png_looks_drawn(png: bytes) -> tuple[bool, str]:
    """Decompress the image data: a blank page compresses to a handful of byte values."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data = 8, b""
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            data += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(data)
    distinct = len(set(raw))
    return distinct > 40, f"{len(png)} bytes, {distinct} distinct byte values"


def test_report_renders_in_headless_chromium(scenario: Scenario, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    assert "<svg" in scenario.report and "churn" in scenario.report
    page = tmp_path / "report.html"
    page.write_text(scenario.report)
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Uncaught" not in done.stderr
    assert shot.exists() and shot.stat().st_size > 20_000, shot.stat().st_size
    drawn, why = _png_looks_drawn(shot.read_bytes())
    assert drawn, why
