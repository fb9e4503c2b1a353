"""Shared fixtures: isolated settings per test, and real PostgreSQL / Redis when present.

A test that needs a server skips with the reason when the server is absent,
except under ``CI=true``, where the missing server fails the run instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.config import Settings, load_settings

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
