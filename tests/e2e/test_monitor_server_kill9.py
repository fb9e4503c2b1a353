"""The real server logs predictions through PredictionLog; SIGKILL under load loses none.

Serving writes each prediction's record to the spool file (write-through) before it
answers, so every prediction a client saw answered is in the log after a restart,
and none is logged twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from mloop.config import load_settings
from mloop.journal._compact import compact_stream
from mloop.journal._log import PredictionLog
from mloop.journal._logstore import ParquetLogStore
from mloop.registry import Registry

SERVER = textwrap.dedent(
    """
    import sys, time
    from mloop.config import load_settings
    from mloop.monitor.live import PredictionLog
    from mloop.registry import Registry
    from mloop.server import run_in_background

    settings = load_settings(env={}, home=sys.argv[1])
    log = PredictionLog(settings)
    handle = run_in_background(settings, registry=Registry(settings), prediction_sink=log,
                               auth=False, host="127.0.0.1")
    print(handle.url, flush=True)
    time.sleep(300)
    """
)


def test_server_killed_under_load_keeps_every_answered_prediction_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(env={}, home=home)
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = (x["a"] > 0).astype(int)
    registry = Registry(settings)
    registry.register(LogisticRegression().fit(x, y), "churn", training_data=x, alias="production")
    registry.store.dispose()

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert server.stdout is not None and server.stderr is not None
    url = server.stdout.readline().strip()
    assert url.startswith("http://"), server.stderr.read()
    # the server logs each request: drain its pipes or they fill up and stall it
    drains = [threading.Thread(target=p.read, daemon=True) for p in (server.stdout, server.stderr)]
    for d in drains:
        d.start()

    answered: list[tuple[str, float]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.post("/models/churn/predict", json={"records": [{"a": 0.1, "b": 1.0}]})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    with lock:
                        answered.append((r.json()["request_id"], time.monotonic()))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(3.0)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    for d in drains:
        d.join(10)

    PredictionLog(settings).close()  # restart: recover the spool
    store = ParquetLogStore(settings.home)
    compact_stream(store, settings.home / "spool", "predictions")
    logged = store.predictions("churn", 0, 4e9)

    acknowledged = {rid for rid, _at in answered}
    assert len(acknowledged) > 200
    assert acknowledged <= set(logged["request_id"])
    assert not logged.duplicated(["request_id", "row"]).any()
