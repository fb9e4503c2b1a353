"""What Prometheus multiprocess mode costs a request and a scrape.

``mloop serve --workers N`` keeps metric values in memory-mapped files so ``/metrics``
sums every worker; a single worker keeps them in memory. This runs the same per-request
metric updates (request counter, latency histogram, batch-size histogram, cache counter)
and the same scrape in both modes, each in a fresh process (prometheus-client picks its
value store at import), and prints microseconds and the ratio.

    python benchmarks/scale_out/metrics_multiprocess.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = """
import json, sys, time
from mloop.serving._metrics import ServingMetrics

n = int(sys.argv[1])
m = ServingMetrics()
batch = m.batch_size.labels("churn")
hit = m.cache.labels("miss")
for i in range(1000):  # warm the label children
    m.observe("churn", 1, "records", 200, 0.001)
t0 = time.perf_counter()
for i in range(n):
    m.observe("churn", 1, "records", 200, 0.0012)
    batch.observe(1)
    hit.inc()
per_request = (time.perf_counter() - t0) / n
scrapes = 200
t0 = time.perf_counter()
for _ in range(scrapes):
    body = m.render()
per_scrape = (time.perf_counter() - t0) / scrapes
print(json.dumps({"request_us": per_request * 1e6, "scrape_us": per_scrape * 1e6,
                  "bytes": len(body)}))
"""


def _run(requests: int, multiproc_dir: str | None) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiproc_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(requests)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    single = _run(args.requests, None)
    with tempfile.TemporaryDirectory() as folder:
        multi = _run(args.requests, folder)
    print(f"{'mode':<26}{'us per request':>16}{'us per scrape':>16}")
    print(
        f"{'one process (in memory)':<26}{single['request_us']:>16.2f}{single['scrape_us']:>16.0f}"
    )
    print(
        f"{'multiprocess (mmap files)':<26}{multi['request_us']:>16.2f}{multi['scrape_us']:>16.0f}"
    )
    print(
        f"multiprocess / one process: {multi['request_us'] / single['request_us']:.2f}x per "
        f"request, {multi['scrape_us'] / single['scrape_us']:.2f}x per scrape"
    )


if __name__ == "__main__":
    main()
