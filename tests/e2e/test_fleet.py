"""A fleet on one machine: three ``mloop serve`` replicas on PostgreSQL, Redis and S3 (moto's
S3 server) behind a load balancer run a canary under load; the replica holding the
controller lease is killed.

Checked: no request fails beyond the ones in flight on the killed replica; another
replica takes the lease over and finishes the rollout; exactly one controller acted on
each step (no transition twice); the alias moved once; and the guards were computed
from every replica's traffic (each wrote its own tallies to the shared ledger).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from processes import free_port, wait_ready
from sklearn.linear_model import LogisticRegression

from mloop.config import load_settings
from mloop.registry import Registry
from s3_server import S3Server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

REPLICAS = 3
CLIENTS = 4
STEP_S = 4.0


class RoundRobin:
    """A TCP load balancer on loopback: each connection to the next live replica, in turn.

    A replica that refuses the connection is skipped (nothing was sent to it yet), as
    a real balancer's health-checked pool would; a connection cut mid-request is the
    client's failure, as it would be behind any balancer.
    """

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.port = free_port()
        self._turn = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(len(self.ports)):
            port = self.ports[self._turn % len(self.ports)]
            self._turn += 1
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            return
        writer.close()

    def __enter__(self) -> RoundRobin:
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        )
        self._thread.start()
        self._server = server.result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class Load:
    """Client threads posting one row per request, each on a new connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self.failed_at: list[float] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def _run(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.url, timeout=10, limits=limits) as http:
            while not self._stop.is_set():
                row = {"x1": float(rng.normal()), "x2": float(rng.normal())}
                try:
                    r = http.post("/models/churn/predict", json={"records": [row]})
                    failure = None if r.status_code == 200 else f"{r.status_code} {r.text[:200]}"
                except httpx.TransportError as exc:
                    failure = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if failure is None:
                        self.ok += 1
                    else:
                        self.failures.append(failure)
                        self.failed_at.append(time.monotonic())

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(20)


def _mloop(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mloop", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def fleet_env(
    tmp_path: Path, postgres_url: str, redis_url: str, s3_server: S3Server, s3_bucket: str
) -> dict[str, str]:
    return {
        **os.environ,
        **s3_server.env,
        "MLOOP_HOME": str(tmp_path / "home"),
        "MLOOP_DATABASE_URL": postgres_url,
        "MLOOP_REDIS_URL": redis_url,
        "MLOOP_ARTIFACTS_URL": f"{s3_bucket}/mloop",
        "MLOOP_SERVING__ACCESS_LOG": "false",
        "MLOOP_SERVING__ALIAS_POLL_S": "0.2",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture
def replicas(
    fleet_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[subprocess.Popen[Any]]]:
    settings = load_settings(
        env={k: v for k, v in fleet_env.items() if k.startswith("MLOOP_")}, config_file=None
    )
    for name, value in fleet_env.items():
        if name.startswith("AWS_"):  # this process registers through the same bucket
            monkeypatch.setenv(name, value)
    registry = Registry(settings)
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400)})
    y = np.where(x["x1"] + x["x2"] > 0, "yes", "no")
    registry.register(
        LogisticRegression().fit(x, y), "churn", training_data=x, target=y, alias="production"
    )
    registry.register(LogisticRegression(C=0.5).fit(x, y), "churn", training_data=x, target=y)
    registry.store.dispose()
    ports = [free_port() for _ in range(REPLICAS)]
    procs = []
    for i, port in enumerate(ports):
        log = (tmp_path / f"replica-{i}.log").open("w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "mloop", "serve", "--port", str(port)],
                env=fleet_env,
                stdout=log,
                stderr=log,
            )
        )
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", proc, 90, status=200)
        for proc, port in zip(procs, ports, strict=True):
            proc.port = port  # type: ignore[attr-defined]
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _lease_holder_pid(url: str) -> int | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT holder FROM rollout_leases WHERE name = 'rollout-controller'")
            ).first()
    finally:
        engine.dispose()
    return None if row is None else int(str(row[0]).split(":")[1])


def _ledger_writers(url: str, version: int) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT writer, SUM(requests) FROM rollout_traffic "
                    "WHERE model = 'churn' AND version = :v GROUP BY writer"
                ),
                {"v": version},
            ).all()
    finally:
        engine.dispose()
    return {str(w): int(n) for w, n in rows}


def test_a_canary_survives_losing_the_replica_that_runs_the_controller(
    fleet_env: dict[str, str], replicas: list[subprocess.Popen[Any]], postgres_url: str
) -> None:
    ports = [p.port for p in replicas]  # type: ignore[attr-defined]
    with RoundRobin(ports) as balancer, Load(f"http://127.0.0.1:{balancer.port}") as load:
        time.sleep(2.0)
        _mloop(
            fleet_env,
            "deploy",
            "churn:2",
            "--strategy",
            "canary",
            "--steps",
            "30,60,100",
            "--step-duration",
            f"{STEP_S:g}s",
            "--min-requests",
            "20",
            "--guard",
            "error_rate<0.05",
        )
        deadline = time.monotonic() + 30
        holder = None
        while holder is None and time.monotonic() < deadline:
            holder = _lease_holder_pid(postgres_url)
            time.sleep(0.2)
        assert holder is not None, "no replica took the controller lease"
        (leader,) = [p for p in replicas if p.pid == holder]
        time.sleep(STEP_S / 2)  # mid first step
        os.kill(leader.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        leader.wait(10)
        deadline = time.monotonic() + 90
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = json.loads(_mloop(fleet_env, "rollout", "status", "churn", "--json"))
            if status["phase"] in ("promoted", "rolled_back"):
                break
            time.sleep(0.5)
        served_after = load.ok
    assert status.get("phase") == "promoted", status
    assert served_after > 200, "the fleet kept serving"
    # Only requests in flight on the killed replica may fail, and only at the kill.
    assert len(load.failures) <= CLIENTS, load.failures
    assert all(abs(at - killed_at) < 2.0 for at in load.failed_at), load.failures

    history = json.loads(_mloop(fleet_env, "rollout", "history", "churn", "--json"))
    actions = [e["action"] for e in history]
    assert actions == ["create", "start", "advance", "advance", "promote"], actions
    assert {e["actor"] for e in history[1:]} == {"rollout-controller"}
    moves = [
        e
        for e in json.loads(_mloop(fleet_env, "alias", "history", "churn", "--json"))
        if e["action"] == "alias.set"
        and e["details"].get("alias") == "production"
        and e["details"].get("to") == 2
    ]
    assert len(moves) == 1, moves
    # Every replica, the killed one included, added its own tallies of the candidate.
    writers = _ledger_writers(postgres_url, 2)
    assert len(writers) == REPLICAS, writers
    assert any(str(holder) in w for w in writers), writers
