"""OpenTelemetry spans of a prediction: one per request, through admission, batch,
predict and log, under the caller's trace; nothing is imported or traced when off."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mloop.config import Settings
from mloop.serving import create_app

ROW = {"a": 0.5, "b": 1.0, "plan": "pro"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class ListSink:
    def __init__(self) -> None:
        self.records: list[Mapping[str, Any]] = []

    def submit(self, record: Mapping[str, Any]) -> None:
        self.records.append(record)


@pytest.fixture(params=[True, False], ids=["fast-routes", "fastapi-routes"])
def traced(
    serving_settings: Settings, exporter: InMemorySpanExporter, request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, ListSink]]:
    settings = replace(
        serving_settings,
        serving=replace(serving_settings.serving, traces=True, fast_routes=request.param),
    )
    sink = ListSink()
    exporter.clear()
    with TestClient(create_app(settings, prediction_sink=sink)) as client:
        yield client, sink


def _spans(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert len(spans) == len(exporter.get_finished_spans()), "one span of each name"
    return spans


def test_a_prediction_is_one_span_with_admission_batch_predict_and_log(
    traced: tuple[TestClient, ListSink], exporter: InMemorySpanExporter
) -> None:
    client, sink = traced
    answer = client.post(
        "/models/churn/predict", json={"records": [ROW, ROW]}, headers={"traceparent": PARENT}
    )
    assert answer.status_code == 200 and len(sink.records) == 1
    spans = _spans(exporter)
    assert set(spans) == {
        "mloop.prediction",
        "mloop.admission",
        "mloop.batch",
        "mloop.predict",
        "mloop.log",
    }
    root = spans["mloop.prediction"]
    assert format(root.context.trace_id, "032x") == TRACE_ID  # under the caller's trace
    assert root.kind == trace.SpanKind.SERVER
    attrs = dict(root.attributes or {})
    assert attrs["mloop.model"] == "churn" and attrs["mloop.version"] == 1
    assert attrs["mloop.rows"] == 2 and attrs["mloop.cached"] is False
    assert not any(key.startswith("gen_ai.") for s in spans.values() for key in s.attributes or {})
    order = ["mloop.admission", "mloop.batch", "mloop.predict", "mloop.log"]
    for name in order:
        child = spans[name]
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    for first, then in itertools.pairwise(order):
        assert spans[first].end_time <= spans[then].start_time
    predict = dict(spans["mloop.predict"].attributes or {})
    assert predict["mloop.batch.rows"] >= 2 and predict["mloop.batch.requests"] >= 1


def test_a_cache_hit_has_no_batch_and_a_failure_marks_the_stage_it_happened_in(
    traced: tuple[TestClient, ListSink], exporter: InMemorySpanExporter
) -> None:
    client, _sink = traced
    body = {"records": [{**ROW, "a": 0.25}]}
    assert client.post("/models/churn/predict", json=body).status_code == 200
    exporter.clear()
    assert client.post("/models/churn/predict", json=body).status_code == 200
    spans = _spans(exporter)
    assert dict(spans["mloop.prediction"].attributes or {})["mloop.cached"] is True
    assert set(spans) == {"mloop.prediction", "mloop.log"}

    exporter.clear()
    assert client.post("/models/nope/predict", json=body).status_code == 404
    spans = _spans(exporter)
    assert set(spans) == {"mloop.prediction", "mloop.admission"}
    assert all(s.status.status_code == trace.StatusCode.ERROR for s in spans.values())

    exporter.clear()  # rows the contract refuses fail in the micro-batch's run
    assert client.post("/models/churn/predict", json={"records": [{"a": "x"}]}).status_code == 422
    spans = _spans(exporter)
    failed = {n for n, s in spans.items() if s.status.status_code == trace.StatusCode.ERROR}
    assert failed == {"mloop.prediction", "mloop.predict"}


def test_with_traces_off_no_sdk_or_exporter_is_loaded(tmp_path: Path) -> None:
    # FastAPI itself imports the OpenTelemetry API; mloop adds nothing unless asked.
    code = (
        "import sys; from mloop.config import load_settings; from mloop.serving import create_app;"
        f"create_app(load_settings(env={{}}, config_file=None, home={str(tmp_path)!r}));"
        "from opentelemetry import trace;"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))];"
        "assert not loaded, loaded;"
        "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


_OTLP_CLIENT = """
import sys
from fastapi.testclient import TestClient
from mloop.config import load_settings
from mloop.serving import create_app
settings = load_settings(home=sys.argv[1])
with TestClient(create_app(settings)) as client:
    row = {"a": 0.5, "b": 1.0, "plan": "pro"}
    assert client.post("/models/churn/predict", json={"records": [row]}).status_code == 200
from opentelemetry import trace
trace.get_tracer_provider().shutdown()  # flush the batch exporter
"""


def test_spans_reach_an_otlp_collector_named_by_the_standard_variables(
    serving_settings: Settings,
) -> None:
    import http.server
    import os
    import threading

    received: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/traces"
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "OTEL_"))},
        "MLOOP_SERVING__TRACES": "true",
        "MLOOP_SERVING__ACCESS_LOG": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
        "OTEL_SERVICE_NAME": "mloop-test",
    }
    try:
        subprocess.run(
            [sys.executable, "-c", _OTLP_CLIENT, str(serving_settings.home)],
            env=env,
            check=True,
            timeout=120,
        )
    finally:
        server.shutdown()
    body = b"".join(received)
    for name in (b"mloop.prediction", b"mloop.admission", b"mloop.predict", b"mloop-test"):
        assert name in body
