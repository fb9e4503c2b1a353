"""A real server in a thread: tritonclient conformance, alias switch under load, Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import numpy as np
import pytest

from mloop.config import Settings
from mloop.registry import Registry
from mloop.server import ServerHandle, run_in_background

ROW = {"a": 1.0, "b": 2.0, "plan": "pro"}


@pytest.fixture
def server(serving_settings: Settings) -> Iterator[ServerHandle]:
    handle = run_in_background(serving_settings, auth=False)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_works_unchanged(server: ServerHandle, binary: bool) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn")
    meta = client.get_model_metadata("churn")
    assert [i["name"] for i in meta["inputs"]] == ["a", "b", "plan"]
    inputs = []
    for name, arr, dtype in (
        ("a", np.array([1.0, -3.0]), "FP64"),
        ("b", np.array([1.0, -3.0]), "FP64"),
        ("plan", np.array([b"pro", b"basic"], dtype=object), "BYTES"),
    ):
        tensor = httpclient.InferInput(name, list(arr.shape), dtype)
        tensor.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(tensor)
    outputs = [
        httpclient.InferRequestedOutput("label", binary_data=binary),
        httpclient.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = client.infer("churn", inputs, outputs=outputs, request_id="r1")
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()]
    assert labels == ["yes", "no"]
    probs = result.as_numpy("probabilities")
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0)
    tensor = httpclient.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.array([[1, 0, 0, 0]], dtype=np.float32), binary_data=binary)
    out = client.infer("numeric", [tensor]).as_numpy("label").tolist()
    assert [v.decode() if isinstance(v, bytes) else v for v in out] == ["1"]


def test_alias_switch_under_load_loses_nothing(
    server: ServerHandle, serving_settings: Settings
) -> None:
    registry = Registry(serving_settings)
    answers: list[tuple[float, float, int]] = []  # (sent, received, version)
    failures: list[Any] = []
    stop = threading.Event()

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=server.url, timeout=10) as c:
            while not stop.is_set():
                row = {**ROW, "a": float(rng.normal())}
                sent = time.monotonic()
                r = c.post("/models/churn/predict", json={"records": [row]})
                received = time.monotonic()
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    answers.append((sent, received, r.json()["version"]))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(answers) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    registry.set_alias("churn", "production", 2)
    deadline = time.monotonic() + 10
    while not any(v == 2 for _, _, v in answers) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    versions = [v for _, _, v in sorted(answers)]
    assert versions[0] == 1 and 2 in versions
    # Once switched, it stays switched: a request sent after any answer came from
    # version 2 is answered by version 2 (order of sending, not of the threads' appends).
    switched = min(received for _, received, v in answers if v == 2)
    assert {v for sent, _, v in answers if sent > switched} == {2}


@pytest.mark.redis
def test_redis_cache_and_rate_limit_are_shared(serving_settings: Settings, redis_url: str) -> None:
    import uuid

    s = replace(
        serving_settings,
        redis_url=redis_url,
        serving=replace(serving_settings.serving, rate_limit_per_s=0.001, rate_limit_burst=3),
    )
    import redis

    redis.Redis.from_url(redis_url).delete("mloop:rl:anonymous")  # a bucket left by an earlier run
    row = {**ROW, "a": float(uuid.uuid4().int % 1000)}
    statuses = []
    with run_in_background(s, auth=False) as one, run_in_background(s, auth=False) as two:
        for url in (one.url, two.url, one.url, two.url):
            statuses.append(
                httpx.post(f"{url}/models/churn/predict", json={"records": [row]}).status_code
            )
        metrics = httpx.get(f"{two.url}/metrics").text
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429
    assert 'mloop_cache_total{result="hit"} 1.0' in metrics
