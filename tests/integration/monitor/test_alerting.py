"""An alert fires on drift and resolves when the data calms down; the webhook and gauges see it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mloop._clock import ManualClock
from mloop.journal._log import PredictionLog
from mloop.monitor._alerting import Alerter
from mloop.monitor._alerts import rules_from_config
from mloop.monitor._service import Monitor
from mloop.monitor._sinks import LogSink, PrometheusSink, WebhookSink

from .conftest import START, World, make_data


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that records JSON bodies; the first POST gets a 503."""
    received: list[dict[str, Any]] = []
    calls = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls["n"] += 1
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if calls["n"] == 1:
                self.send_response(503)
            else:
                received.append(json.loads(body))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_drift_alert_fires_and_resolves(
    world: World, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    rules = rules_from_config(
        {
            "alerts": [
                {"name": "age-drift", "model": "churn", "metric": "feature_drift:age",
                 "op": ">", "threshold": 0.2, "window": "1h", "for": 2},
                {"name": "low-accuracy", "model": "churn", "metric": "estimated_accuracy",
                 "op": "<", "threshold": 0.5, "window": "1h"},
            ]
        }
    )  # fmt: skip
    clock = ManualClock(START)
    monitor = Monitor(world.settings, world.registry, clock=clock)
    gauges = CollectorRegistry()
    sink = WebhookSink(url, sleep=lambda s: None)
    alerter = Alerter(monitor, rules, sinks=[LogSink(), sink], gauges=PrometheusSink(gauges))

    log = PredictionLog(world.settings)
    hours = [("calm", 0.0), ("shifted", 15.0), ("shifted", 15.0), ("calm", 0.0)]
    kinds = []
    for h, (_name, shift) in enumerate(hours):
        frame, _ = make_data(400, seed=10 + h, shift=shift)
        world.log(log, frame, START + h * 3600 + 10, batch=4)
        clock.advance(3600)
        kinds.append([e.kind for e in alerter.evaluate()])
        if h == 2:
            assert alerter.evaluate() == []  # the same window is not counted twice
            value = gauges.get_sample_value(
                "mloop_alert_firing", {"rule": "age-drift", "model": "churn"}
            )
            assert value == 1.0
            drift = gauges.get_sample_value(
                "mloop_monitor_feature_drift", {"model": "churn", "feature": "age"}
            )
            assert drift is not None and drift > 0.2
    log.close()
    monitor.close()
    sink.close()
    assert kinds == [[], [], ["firing"], ["resolved"]]
    assert [b["alert"]["kind"] for b in received] == ["firing", "resolved"]
    assert received[0]["text"].startswith("[WARNING] age-drift: churn feature_drift:age=")
    assert alerter.state("age-drift").status == "ok"
    assert [h["kind"] for h in alerter.history()] == ["resolved", "firing"]
    assert (
        gauges.get_sample_value("mloop_alert_firing", {"rule": "age-drift", "model": "churn"})
        == 0.0
    )
