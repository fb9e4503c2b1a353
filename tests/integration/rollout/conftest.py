"""Fixtures for rollout integration tests: a registry with versions 1-4 of ``churn`` (3 in production)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rollout_seed import open_registry, seed

from mloop._clock import ManualClock
from mloop.registry import Registry


@pytest.fixture
def clock() -> ManualClock:
    """Time that moves only when a test says so."""
    return ManualClock()


@pytest.fixture
def registry(tmp_path: Path, clock: ManualClock) -> Iterator[Registry]:
    """A seeded registry on SQLite."""
    reg = open_registry(tmp_path, None, clock)
    seed(reg)
    yield reg
    reg.store.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_registry(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Registry]:
    """A seeded registry on SQLite and on real PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    reg = open_registry(tmp_path, url, clock)
    seed(reg)
    yield reg
    reg.store.dispose()
