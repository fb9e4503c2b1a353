"""A replica's model load from S3: first start (download), restart (local cache), no cache.

Starts moto's S3 server on loopback (``mloop[test]``), registers a random forest of a
few tens of MB with artifacts in a bucket, then loads it in fresh processes the way a
replica does (``mloop.load`` configured by the environment) and prints the load time
and how many artifact GETs the server saw for each. Loopback S3 is the best case for
downloading; a real bucket across a network only widens the gap.

    python benchmarks/scale_out/artifact_cold_start.py [--trees 300]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

_LOAD = """
import json, time
import mloop
t0 = time.perf_counter()
mloop.load("forest@production")
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={
                **os.environ,
                "MOTO_ENABLE_RECORDING": "True",
                "MOTO_RECORDER_FILEPATH": str(root / "requests.jsonl"),
            },
        )
        try:
            _run(root, endpoint, args.trees, args.repeat)
        finally:
            moto.terminate()
            moto.wait()


def _gets(endpoint: str) -> int:
    # A pattern, not JSON lines: moto appends concurrent requests' entries from threads.
    text = httpx.get(f"{endpoint}/moto-api/recorder/download-recording").text
    return len(re.findall(r'"method": "GET", "url": "[^"]*/sha256/', text))


def _run(root: Path, endpoint: str, trees: int, repeat: int) -> None:
    import numpy as np
    import s3fs
    from sklearn.ensemble import RandomForestClassifier

    from mloop.config import load_settings
    from mloop.registry import Registry

    for _ in range(100):
        try:
            httpx.get(endpoint)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    httpx.post(f"{endpoint}/moto-api/recorder/start-recording")
    aws = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3fs.S3FileSystem(endpoint_url=endpoint, key="bench", secret="bench").mkdir("bench")
    db = f"sqlite:///{root / 'shared.db'}"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 20))
    y = (X[:, 0] + rng.normal(size=20_000) > 0).astype(int)
    model = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1).fit(X, y)
    trainer = load_settings(
        env={},
        home=root / "trainer",
        database_url=db,
        artifacts_url="s3://bench/artifacts",
        storage={"endpoint_url": endpoint, "key": "bench", "secret": "bench"},
    )
    mv = Registry(trainer).register(model, "forest", training_data=X[:1000], target=y[:1000])
    Registry(trainer).set_alias("forest", "production", mv.version)
    httpx.post(f"{endpoint}/moto-api/recorder/reset-recording")  # drop the upload's bodies
    size = sum(
        p.stat().st_size for p in (root / "trainer" / "artifact-cache").rglob("*") if p.is_file()
    )

    def load(home: str, cache: str = "") -> tuple[float, int]:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "AWS_"))},
            **aws,
            "MLOOP_HOME": str(root / home),
            "MLOOP_DATABASE_URL": db,
            "MLOOP_ARTIFACTS_URL": "s3://bench/artifacts",
            "OMP_NUM_THREADS": "1",
        }
        if cache:
            env["MLOOP_ARTIFACTS_CACHE"] = cache
        before = _gets(endpoint)
        out = subprocess.run(
            [sys.executable, "-c", _LOAD], env=env, check=True, capture_output=True, text=True
        ).stdout
        return float(json.loads(out)["seconds"]), _gets(endpoint) - before

    rows = []
    for i in range(repeat):
        rows.append(("first start (download, verify, cache)", *load(f"replica-{i}")))
        rows.append(("restart (verified local cache)", *load(f"replica-{i}")))
        rows.append(("no cache (artifacts_cache=off)", *load(f"nocache-{i}", cache="off")))
    print(f"model: random forest, {trees} trees, artifacts {size / 1e6:.1f} MB")
    print(f"{'load':<40}{'seconds':>10}{'GETs':>8}")
    for name, seconds, gets in rows:
        print(f"{name:<40}{seconds:>10.3f}{gets:>8}")
    first = sorted(s for n, s, _ in rows if n.startswith("first"))[repeat // 2]
    again = sorted(s for n, s, _ in rows if n.startswith("restart"))[repeat // 2]
    print(f"median restart / first start: {again / first:.2f}x")


if __name__ == "__main__":
    main()
