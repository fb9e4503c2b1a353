"""Cost of one request through mloop's full server in-process, without HTTP or a client.

Builds a home with the benchmark model (HistGradientBoostingClassifier, 20 numeric
features), runs ``build_app`` under its lifespan and calls the ASGI app directly, one
request at a time (concurrency 1) or ``--concurrency`` at once. Prints microseconds per
request next to a bare ``predict_proba`` of one row, so the framework's share is visible.

    .venv/bin/python benchmarks/serving/profile_request.py            # timing only
    .venv/bin/python benchmarks/serving/profile_request.py --profile  # plus cProfile top 30
    .venv/bin/python benchmarks/serving/profile_request.py --frame    # model fitted on a frame
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mloop.server._process import pin_threads


def _model(named: bool) -> tuple[Any, Any, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)])
    model = HistGradientBoostingClassifier(random_state=0).fit(frame if named else X, y)
    return model, frame, np.asarray(y)


def _bodies(n: int) -> list[bytes]:
    rng = random.Random(42)
    return [
        json.dumps(
            {"records": [{f"f{j}": round(rng.uniform(-2, 2), 5) for j in range(20)}]}
        ).encode()
        for _ in range(n)
    ]


async def _call(app: Any, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/models/hgb/predict",
        "raw_path": b"/models/hgb/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _drive(
    app: Any, bodies: list[bytes], n: int, concurrency: int, gap_s: float = 0.0
) -> tuple[float, float]:
    """Wall (minus idle gaps) and CPU (all threads of this process) seconds per request."""

    async def one(k: int) -> None:
        for i in range(k, n, concurrency):
            status = await _call(app, bodies[i % len(bodies)])
            assert status == 200, status
            if gap_s:
                time.sleep(gap_s)  # an idle client: threads and vCPUs go to sleep meanwhile

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(k) for k in range(concurrency)))
    idle = gap_s * n / concurrency
    return (time.perf_counter() - started - idle) / n, (time.process_time() - cpu) / n


async def _main(args: argparse.Namespace) -> None:
    from mloop.config import load_settings
    from mloop.registry import Registry
    from mloop.server import build_app

    home = Path(tempfile.mkdtemp(prefix="mloop-prof-")) / "home"
    s = load_settings(env={}, config_file=None, home=home)
    model, frame, y = _model(args.frame)
    Registry(s).register(model, "hgb", training_data=frame, target=y, alias="production")
    s = replace(
        s,
        serving=replace(
            s.serving, cache_size=0, access_log=False, predict_threads=args.predict_threads
        ),
    )
    app = build_app(s)
    bodies = _bodies(2000)
    x = frame.to_numpy()[:1]
    one = frame.iloc[:1] if args.frame else x
    cpu = time.process_time()
    for _ in range(2000):
        model.predict_proba(one)
    bare = (time.process_time() - cpu) / 2000
    async with app.router.lifespan_context(app):
        await _drive(app, bodies, 500, args.concurrency)  # warm
        wall, per = await _drive(app, bodies, args.n, args.concurrency, args.gap_ms / 1000)
        print(
            f"c={args.concurrency}: CPU {per * 1e6:.0f} us/request (wall {wall * 1e6:.0f} us); "
            f"bare predict_proba CPU {bare * 1e6:.0f} us; framework {(per - bare) * 1e6:.0f} us"
        )
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            await _drive(app, bodies, args.n, args.concurrency)
            prof.disable()
            stats = pstats.Stats(prof).sort_stats(args.sort)
            stats.print_stats(args.filter, 45)
            if args.callers:
                stats.print_callers(args.callers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("--predict-threads", type=int, default=2)
    parser.add_argument("--frame", action="store_true", help="Fit the model on a DataFrame.")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="Idle time between requests.")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--callers", default="", help="Show who calls functions matching this.")
    parser.add_argument("--filter", default="", help="Only functions whose path matches.")
    args = parser.parse_args()
    pin_threads()
    import uvloop

    uvloop.install()
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
