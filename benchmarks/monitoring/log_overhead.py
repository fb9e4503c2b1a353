"""Throughput cost of the durable prediction log at full load (in-process serving loop).

Two measurements, each with and without ``PredictionLog`` as the prediction sink:

* in-process: the same predict loop (1-row requests against a HistGradientBoosting
  model, the serving hot path minus HTTP) with and without ``submit``;
* HTTP (``--http``): the real server (``mloop.serving``) in a subprocess, saturated by
  client threads in this process, with ``prediction_sink=PredictionLog`` or none.

Also raw submit throughput and the time until a record is durable (fsync'd). Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitoring/log_overhead.py [--http]
"""

from __future__ import annotations

import argparse
import dataclasses
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
    model = HistGradientBoostingClassifier(max_iter=50).fit(x, y)
    reg.register(model, "bench", training_data=x, alias="production")
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


_SERVER = """
import sys, time
from mloop.config import load_settings
from mloop.monitor.live import PredictionLog
from mloop.registry import Registry
from mloop.server import run_in_background
settings = load_settings(env={}, home=sys.argv[1])
sink = PredictionLog(settings) if sys.argv[2] == "log" else None
h = run_in_background(settings, registry=Registry(settings), prediction_sink=sink, auth=False,
                      host="127.0.0.1")
print(h.url, flush=True)
time.sleep(3600)
"""


def http_round(home: str, with_log: bool, seconds: float, clients: int) -> float:
    import subprocess
    import sys
    import threading

    import httpx

    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, home, "log" if with_log else "none"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    # the server logs every request to stdout: drain it or the pipe fills and stalls it
    threading.Thread(target=server.stdout.read, daemon=True).start()
    body = {"records": [{f"f{i}": 0.1 * i for i in range(20)}]}
    counts = [0] * clients
    stop = threading.Event()

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                if http.post("/models/bench/predict", json=body).status_code == 200:
                    counts[k] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm-up
    start_counts, start = sum(counts), time.perf_counter()
    time.sleep(seconds)
    done, elapsed = sum(counts) - start_counts, time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    server.terminate()
    server.wait()
    return done / elapsed


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _paced(submit: object, record: dict[str, object], rate: float, n: int) -> float:
    start = _cpu()
    t0 = time.perf_counter()
    for i in range(n):
        if submit is not None:
            submit({**record, "request_id": f"cpu{rate}-{i}"})  # type: ignore[operator]
        delay = t0 + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return _cpu() - start


def log_cpu_per_record(log: PredictionLog, record: dict[str, object], rate: float, n: int) -> float:
    """Process CPU seconds (submit + writer thread + fsync) per record at ``rate`` records/s.

    The same paced loop without ``submit`` is subtracted, so pacing costs do not count.
    """
    dry = _paced(None, record, rate, n)
    wet = _paced(log.submit, record, rate, n)
    start = _cpu()
    log.flush()
    wet += _cpu() - start
    return max(wet - dry, 0.0) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--http", action="store_true", help="Also measure through the server.")
    parser.add_argument("--http-rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--flush-ms", type=float, default=200.0, help="monitor.spool_flush_ms")
    parser.add_argument("--skip-cpu", action="store_true", help="Only the A/B throughput runs.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        predictor, rows = build(home)
        settings = load_settings(env={}, home=home)
        settings = dataclasses.replace(
            settings, monitor=dataclasses.replace(settings.monitor, spool_flush_ms=args.flush_ms)
        )
        log = PredictionLog(settings)
        record = {
            "request_id": "x", "ts": 0.0, "model": "bench", "version": 1,
            "inputs": [rows[0]], "outputs": [{"label": 1, "probabilities": {"0": 0.2, "1": 0.8}}],
            "latency_ms": 0.5, "entity_keys": None,
        }  # fmt: skip

        # 1. what one logged record costs the process, all threads included
        if args.skip_cpu:
            predict_cpu = 0.0
        start = _cpu()
        for i in range(0 if args.skip_cpu else 2000):
            predictor.predict([rows[i % len(rows)]])  # type: ignore[attr-defined]
        if not args.skip_cpu:
            predict_cpu = (_cpu() - start) / 2000
            print(f"in-process predict CPU    : {1e3 * predict_cpu:7.3f} ms per 1-row request")
        for rate in () if args.skip_cpu else (300.0, 3000.0):
            per = log_cpu_per_record(log, record, rate, int(rate * 2))
            print(
                f"log CPU at {rate:5.0f} rec/s   : {1e6 * per:7.1f} µs per record "
                f"({100 * per / predict_cpu:.2f} % of in-process predict)"
            )

        # 2. A/B throughput, interleaved rounds, median of per-pair ratios
        run(predictor, rows, 300, None)  # warm up
        ratios, base, logged = [], [], []
        for _ in range(args.rounds):
            b = run(predictor, rows, args.requests, None)
            w = run(predictor, rows, args.requests, log)
            base.append(b)
            logged.append(w)
            ratios.append(w / b)
        log.flush()
        print(f"predict loop, no log      : {statistics.median(base):8.0f} req/s")
        print(f"predict loop, with log    : {statistics.median(logged):8.0f} req/s")
        print(f"throughput cost (median)  : {100 * (1 - statistics.median(ratios)):6.2f} %")

        # 3. raw log throughput and durable-ack latency
        n = 50_000
        start_t = time.perf_counter()
        for i in range(n):
            log.submit({**record, "request_id": str(i)})
        submit_s = time.perf_counter() - start_t
        log.flush()
        durable_s = time.perf_counter() - start_t
        print(f"submit only               : {n / submit_s:8.0f} records/s")
        print(f"submit + fsync'd          : {n / durable_s:8.0f} records/s")
        lat = []
        for i in range(200):
            t0 = time.perf_counter()
            log.submit({**record, "request_id": f"lat{i}"})
            log.wait_durable(f"lat{i}")
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        print(f"durable ack latency       : p50 {lat[100]:.2f} ms, p99 {lat[197]:.2f} ms")
        log.close()

        if args.http:
            http_ratios, plain, with_log = [], [], []
            for _ in range(args.http_rounds):
                p = http_round(home, False, args.seconds, args.clients)
                w = http_round(home, True, args.seconds, args.clients)
                plain.append(p)
                with_log.append(w)
                http_ratios.append(w / p)
            print(f"HTTP server, no log       : {statistics.median(plain):8.0f} req/s")
            print(f"HTTP server, with log     : {statistics.median(with_log):8.0f} req/s")
            print(
                f"throughput cost (HTTP)    : {100 * (1 - statistics.median(http_ratios)):6.2f} %"
            )


if __name__ == "__main__":
    main()
