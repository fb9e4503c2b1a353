"""Throughput cost of the durable prediction log at full load (in-process serving loop).

Runs the same predict loop (1-row requests against a small sklearn pipeline, the
serving hot path minus HTTP) with and without ``PredictionLog.submit`` and prints
requests/s and the ratio. Also measures raw submit throughput and the time until a
record is durable (fsync'd). Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitoring/log_overhead.py [--requests 4000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from mloop.config import load_settings
from mloop.monitor.live import PredictionLog
from mloop.registry import Registry


def build(home: str) -> tuple[object, list[dict[str, float]]]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(4000, 20)), columns=[f"f{i}" for i in range(20)])
    y = (x["f0"] + x["f1"] > 0).astype(int)
    reg = Registry(load_settings(env={}, home=home))
    reg.register(HistGradientBoostingClassifier(max_iter=50).fit(x, y), "bench", training_data=x)
    rows: list[dict[str, float]] = x.head(500).to_dict("records")
    return reg.load("bench"), rows


def run(
    predictor: object, rows: list[dict[str, float]], n: int, log: PredictionLog | None
) -> float:
    start = time.perf_counter()
    for i in range(n):
        record = [rows[i % len(rows)]]
        out = predictor.predict(record).to_records()  # type: ignore[attr-defined]
        if log is not None:
            log.submit(
                {
                    "request_id": uuid.uuid4().hex,
                    "ts": time.time(),
                    "model": "bench",
                    "version": 1,
                    "inputs": record,
                    "outputs": out,
                    "latency_ms": 0.5,
                    "entity_keys": None,
                }
            )
    elapsed = time.perf_counter() - start
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        predictor, rows = build(home)
        settings = load_settings(env={}, home=home)
        log = PredictionLog(settings)
        run(predictor, rows, 300, None)  # warm up
        base, logged = [], []
        for _ in range(args.rounds):  # interleave to share machine noise
            base.append(run(predictor, rows, args.requests, None))
            logged.append(run(predictor, rows, args.requests, log))
            log.flush()
        b, w = statistics.median(base), statistics.median(logged)
        print(f"predict loop, no log     : {b:8.0f} req/s")
        print(f"predict loop, with log   : {w:8.0f} req/s")
        print(f"throughput cost of log   : {100 * (1 - w / b):6.2f} %")

        record = {
            "request_id": "x", "ts": 0.0, "model": "bench", "version": 1,
            "inputs": [rows[0]], "outputs": [{"label": 1, "probabilities": {"0": 0.2, "1": 0.8}}],
            "latency_ms": 0.5, "entity_keys": None,
        }  # fmt: skip
        n = 50_000
        start = time.perf_counter()
        for i in range(n):
            log.submit({**record, "request_id": str(i)})
        submit_s = time.perf_counter() - start
        log.flush()
        durable_s = time.perf_counter() - start
        print(
            f"submit only              : {n / submit_s:8.0f} records/s ({1e6 * submit_s / n:.2f} µs each)"
        )
        print(f"submit + fsync'd         : {n / durable_s:8.0f} records/s")
        lat = []
        for i in range(200):
            t0 = time.perf_counter()
            log.submit({**record, "request_id": f"lat{i}"})
            log.wait_durable(f"lat{i}")
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        print(
            f"durable ack latency      : p50 {lat[100]:.2f} ms, p99 {lat[197]:.2f} ms (1 in flight)"
        )
        log.close()


if __name__ == "__main__":
    main()
