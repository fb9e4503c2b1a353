"""Shared fixtures: isolated settings per test, and real PostgreSQL / Redis when present.

A test that needs a server skips with the reason when the server is absent,
except under ``CI=true``, where the missing server fails the run instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mloop.config import Settings, load_settings
from s3_server import S3Server

os.environ.setdefault("OMP_NUM_THREADS", "1")

POSTGRES_URL = os.environ.get(
    "MLOOP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/"
)
REDIS_URL = os.environ.get("MLOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Skip (or, under CI=true, fail) when a real server is not listening."""
    if _reachable(host, port):
        return
    reason = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it (start it, see README 'Tests').")
    pytest.skip(reason)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose home, database and artifacts live in a fresh temp folder."""
    return load_settings(env={}, config_file=None, home=tmp_path / "home")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """Base URL of the real PostgreSQL server."""
    require_server("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    name = f"mloop_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_server + name
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


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The real Redis server, with a key prefix unique to this test."""
    require_server("Redis", "127.0.0.1", 6379)
    yield REDIS_URL


def _moto_port() -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 5000))
            return 5000
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server as a child process for the session (a real HTTP S3 API)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("moto[server] is not installed; CI=true requires it (mloop[test]).")
        pytest.skip("moto[server] is not installed (pip install 'mloop[test]')")
    port = _moto_port()
    folder = tmp_path_factory.mktemp("moto")
    log = folder / "moto.log"
    env = {
        **os.environ,
        "MOTO_ENABLE_RECORDING": "True",  # the request log tests count GETs in
        "MOTO_RECORDER_FILEPATH": str(folder / "requests.jsonl"),
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )
    server = S3Server(endpoint=f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while not _reachable("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto's S3 server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        import httpx

        httpx.post(f"{server.endpoint}/moto-api/recorder/start-recording").raise_for_status()
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the S3 server, as ``s3://name``."""
    import s3fs

    name = f"mloop-test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(**s3_server.storage_options, skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def exporter() -> Any:
    """Spans of this process, kept in memory (one OpenTelemetry SDK provider per process,
    shared by every tracing test)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory
