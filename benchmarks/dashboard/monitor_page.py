"""How long the dashboard's Monitor page takes for a week of hourly windows and ~1M predictions.

A model with 8 numeric features is registered with its training data; 1,008,000
predictions (168 hours x 60 requests of 100 rows, the last day shifted so drift shows)
are logged through the monitor's own ``PredictionLog`` and compacted into the Parquet
log store, with labels for 5 % of the requests. Then the real server (``build_app``,
in process through ``TestClient``) is asked for ``/ui/models/bench/monitor?since=7d&window=1h``
(the page) and for its JSON twin; the script prints the first (computed) load, the
loads within the dashboard's shared TTL (what a polling page costs), and how much of
a computed load is ``Monitor.status`` (the library's own computation, which the page
only regroups and renders). Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dashboard/monitor_page.py [--hours 168]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from mloop.config import load_settings
from mloop.dashboard import Sources, monitor_view
from mloop.monitor.live import Monitor
from mloop.registry import Registry
from mloop.server import build_app

FEATURES = [f"f{i}" for i in range(8)]
ROWS_PER_REQUEST = 100
REQUESTS_PER_HOUR = 60


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(rng.normal(loc=shift, size=(n, len(FEATURES))), columns=FEATURES)


def fill(home: str, hours: int, database_url: str | None = None) -> tuple[Registry, int]:
    """Register the model and log ``hours`` of traffic ending now; return rows logged."""
    extra = {"database_url": database_url} if database_url else {}
    settings = load_settings(env={}, config_file=None, home=home, **extra)
    registry = Registry(settings)
    rng = np.random.default_rng(0)
    x = _frame(rng, 5000)
    y = np.where(x["f0"] + x["f1"] > 0, "yes", "no")
    registry.register(LogisticRegression().fit(x, y), "bench", training_data=x, alias="production")
    predictor = registry.load("bench")
    batches = []
    for shift in (0.0, 0.8):  # normal traffic, and a drifted last day
        frame = _frame(rng, ROWS_PER_REQUEST, shift)
        outputs = predictor.predict(frame).to_records()
        batches.append((frame.to_dict("records"), outputs))
    monitor = Monitor(settings, registry)
    log = monitor.serving_sink()
    now = time.time()
    start = now - hours * 3600
    logged = 0
    labels = []
    for hour in range(hours):
        inputs, outputs = batches[1 if hour >= hours - 24 else 0]
        records = []
        for i in range(REQUESTS_PER_HOUR):
            rid = uuid.uuid4().hex[:16]
            ts = start + hour * 3600 + i * (3600 / REQUESTS_PER_HOUR)
            records.append(
                {
                    "request_id": rid,
                    "ts": ts,
                    "model": "bench",
                    "version": 1,
                    "inputs": inputs,
                    "outputs": outputs,
                    "latency_ms": 1.0,
                    "entity_keys": None,
                }
            )
            if i % 20 == 0:
                labels.append({"request_id": rid, "label": "yes", "row": 0})
            logged += ROWS_PER_REQUEST
        log.submit_many(records)
    monitor.feedback(labels)
    monitor.compact()
    monitor.close()
    return registry, logged


@contextlib.contextmanager
def scratch(server: str | None) -> Iterator[str | None]:
    """A fresh database on ``server`` for the run, dropped afterwards (None: no server)."""
    if not server:
        yield None
        return
    import sqlalchemy as sa

    name = f"mloop_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server + name
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="log into a scratch database on this PostgreSQL server "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/) instead of Parquet",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="mloop-dash-bench-") as home,
        scratch(args.postgres) as database_url,
    ):
        t0 = time.perf_counter()
        registry, logged = fill(home, args.hours, database_url)
        print(
            f"logged {logged:,} predictions over {args.hours} h in {time.perf_counter() - t0:.1f} s"
        )
        settings = registry.settings
        path = "/ui/models/bench/monitor?since=7d&window=1h"
        app = build_app(settings, registry=registry, auth=False)
        with TestClient(app) as client:
            first = time.perf_counter()
            page = client.get(path)
            first = time.perf_counter() - first
            assert page.status_code == 200, page.text[:500]
            assert client.get("/ui/api" + path[3:]).json()["rows"] == logged
            # Within the dashboard's TTL every reader shares that result (what a polling
            # page gets); past it, one reader recomputes (what the first load costs).
            pages = timed(lambda: client.get(path), args.repeat)
            apis = timed(lambda: client.get("/ui/api" + path[3:]), args.repeat)
            monitor = app.state.stack.monitor
            status = timed(lambda: monitor.status("bench", since="7d", window="1h"), args.repeat)
            view = timed(
                lambda: monitor_view(
                    Sources(registry=registry, monitor=monitor), "bench", since="7d", window="1h"
                ),
                args.repeat,
            )

    def line(name: str, xs: list[float]) -> str:
        return f"{name:<44} median {statistics.median(xs) * 1000:7.0f} ms   worst {max(xs) * 1000:7.0f} ms"

    print(f"{'GET page, computed (first load)':<44} {first * 1000:7.0f} ms")
    print(line("GET page again within the TTL (HTML)", pages))
    print(line("GET JSON twin within the TTL (the poll)", apis))
    print(line("Monitor.status alone (the library)", status))
    print(line("page data uncached (status + regrouping)", view))
    print(f"page size {len(page.content) / 1024:.0f} KiB, {args.hours} hourly windows with data")


if __name__ == "__main__":
    main()
