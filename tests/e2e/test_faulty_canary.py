"""A canary whose model raises is rolled back by the real server, whatever blinds it.

``mloop serve --workers 2`` with the prediction cache on (the default) serves a
production model and a candidate that raises on a third of the distinct inputs.
Clients repeat a small set of records, as real traffic does, so the cache could
replay the candidate's earlier successes, and the controller lease sits in one of
the two worker processes while the other serves half the traffic. The canary must
still be rolled back within two step durations, and the history must name the
error rate it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from processes import free_port, wait_ready
from sklearn.linear_model import LogisticRegression

from mloop.config import load_settings
from mloop.registry import Registry

STEP_S = 4.0
RECORDS = [{"x1": round(0.37 * i - 3.0, 2), "x2": round(0.11 * i, 2)} for i in range(20)]


class Flaky:
    """The production model, except that it raises on about a third of the inputs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_

    def _check(self, X: pd.DataFrame) -> None:
        for x1 in X["x1"].to_numpy():
            cents = abs(x1) * 100
            # Only values with two decimals (the clients' records, not training data).
            if abs(cents - round(cents)) < 1e-6 and round(cents) % 3 == 0:
                raise RuntimeError(f"flaky model cannot score x1={x1}")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self._check(X)
        return np.asarray(self.model.predict(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self._check(X)
        return np.asarray(self.model.predict_proba(X))


def _mloop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mloop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


class Clients:
    """Threads posting one record at a time, drawn in turn from ``RECORDS``."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.statuses: list[int] = []
        self.failures: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, offset: int) -> None:
        i = offset
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self._stop.is_set():
                record = RECORDS[i % len(RECORDS)]
                i += 1
                try:
                    r = http.post("/models/churn/predict", json={"records": [record]})
                except httpx.TransportError:
                    continue
                with self._lock:
                    self.statuses.append(r.status_code)
                    if r.status_code >= 500:
                        self.failures.append(r.json())

    def __enter__(self) -> Clients:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


@pytest.mark.slow
def test_a_faulty_canary_is_rolled_back_across_workers_with_the_cache_on(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = Registry(load_settings(env={}, config_file=None, home=home))
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
    y = np.where(x["x1"] + x["x2"] > 0, "yes", "no")
    good = LogisticRegression().fit(x, y)
    registry.register(good, "churn", training_data=x, target=y, alias="production")
    registry.register(Flaky(good), "churn", training_data=x, target=y)
    registry.store.dispose()

    port = free_port()
    env = {
        **os.environ,
        "MLOOP_HOME": str(home),
        "MLOOP_SERVING__ACCESS_LOG": "false",
        "MLOOP_SERVING__ALIAS_POLL_S": "0.2",
        "OMP_NUM_THREADS": "1",
    }
    log = (tmp_path / "server.log").open("w")  # a pipe nobody reads would fill and stall it
    server = subprocess.Popen(
        [sys.executable, "-m", "mloop", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/v2/health/ready", server, 90, status=200)
        with Clients(url) as clients:
            deployed = _mloop(
                env,
                "deploy",
                "churn:2",
                "--strategy",
                "canary",
                "--steps",
                "50,100",
                "--step-duration",
                f"{STEP_S:g}s",
                "--min-requests",
                "30",
                "--guard",
                "error_rate<0.05",
            )
            assert deployed.returncode == 0, deployed.stderr
            started = time.monotonic()
            while True:
                status = _mloop(env, "rollout", "status", "churn", "--json")
                assert status.returncode == 0, status.stderr
                if '"rolled_back"' in status.stdout:
                    break
                assert '"promoted"' not in status.stdout, "the faulty canary was promoted"
                # Two steps, plus the time one `mloop rollout status` takes to start (~2 s).
                assert time.monotonic() - started < 2 * STEP_S + 4, (
                    f"not rolled back within two step durations: {status.stdout}"
                )
                time.sleep(0.3)
        history = _mloop(env, "rollout", "history", "churn", "--json")
        assert history.returncode == 0, history.stderr
        (rollback,) = [e for e in json.loads(history.stdout) if e["action"] == "rollback"]
        assert "error_rate" in rollback["reason"], rollback
        assert rollback["observations"]["metrics"]["error_rate"] > 0.05, rollback
        assert registry.get("churn@production").version == 1
        assert clients.failures, "the candidate never answered with its error"
        for failure in clients.failures:
            error = failure["error"]
            assert (error["type"], error["code"]) == ("operator_fixable", "model_failed"), error
            assert "churn:2" in error["message"] and "RuntimeError" in error["message"], error
            assert "bug" not in error["message"] and error["request_id"], error
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
