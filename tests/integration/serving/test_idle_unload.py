"""``serving.idle_unload_s``: a version nobody asked for is unloaded; the next requests load it once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from fastapi.testclient import TestClient

from mloop.config import Settings
from mloop.serving import create_app

ROW = {"a": 0.3, "b": -0.2, "plan": "pro"}


def test_an_idle_model_unloads_and_concurrent_requests_reload_it_once(
    serving_settings: Settings,
) -> None:
    settings = replace(
        serving_settings, serving=replace(serving_settings.serving, idle_unload_s=0.5)
    )
    app = create_app(settings, auth=False)
    with TestClient(app) as client:
        engine = app.state.serving.engine
        assert client.post("/models/churn/predict", json={"records": [ROW]}).status_code == 200
        loads = engine.pool.stats.loads
        deadline = time.monotonic() + 10
        while ("churn", 1) in engine.pool and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("churn", 1) not in engine.pool, "an idle model stays loaded"
        assert client.get("/v2/health/ready").status_code == 200  # unloaded is not unhealthy

        def predict(_i: int) -> int:
            return client.post("/models/churn/predict", json={"records": [ROW]}).status_code

        with ThreadPoolExecutor(8) as threads:
            assert list(threads.map(predict, range(8))) == [200] * 8
        assert engine.pool.stats.loads == loads + 1
