"""A second load generator to cross-check wrk: N keep-alive connections on raw asyncio streams.

    .venv/bin/python benchmarks/serving/rawclient.py http://127.0.0.1:8000/models/hgb/predict -c 64 -d 8
    .venv/bin/python benchmarks/serving/rawclient.py http://127.0.0.1:8080/v2/models/hgb/infer --v2

Sends one-row records bodies (20 features, random values) and prints req/s, p50, p99 and
the Little's-law check. uvloop keeps the client's own cost per request low.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from urllib.parse import urlsplit

import numpy as np


def _bodies(n: int, features: int, v2: bool = False) -> list[bytes]:
    rng = random.Random(42)
    out = []
    for _ in range(n):
        values = [round(rng.uniform(-2, 2), 5) for _ in range(features)]
        if v2:
            tensor = {"name": "input-0", "shape": [1, features], "datatype": "FP64", "data": values}
            body: dict[str, object] = {"inputs": [tensor]}
        else:
            body = {"records": [{f"f{j}": v for j, v in enumerate(values)}]}
        out.append(json.dumps(body).encode())
    return out


async def _worker(
    host: str, port: int, path: str, bodies: list[bytes], stop: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    i = random.randrange(len(bodies))
    while time.perf_counter() < stop:
        body = bodies[i % len(bodies)]
        i += 1
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        writer.write(head + body)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:].strip())
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if b" 200 " not in status_line:
            errors += 1
    writer.close()
    return errors


async def run(url: str, concurrency: int, duration: float, v2: bool = False) -> dict[str, float]:
    """Drive ``url`` with ``concurrency`` connections for ``duration`` seconds."""
    parts = urlsplit(url)
    bodies = _bodies(2000, 20, v2)
    latencies: list[float] = []
    stop = time.perf_counter() + duration
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(
            _worker(
                parts.hostname or "127.0.0.1", parts.port or 80, parts.path, bodies, stop, latencies
            )
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    rps = len(lat) / elapsed
    return {
        "rps": rps,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": int(sum(errors)),
        "little": rps * float(lat.mean()) / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=8.0)
    parser.add_argument("--v2", action="store_true", help="Send v2 tensors instead of records.")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(args.url, args.concurrency, args.duration, args.v2))))


if __name__ == "__main__":
    main()
