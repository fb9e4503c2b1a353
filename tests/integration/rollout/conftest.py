"""Fixtures for rollout integration tests: a registry with versions 1-4 of ``churn`` (3 in production)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop._clock import ManualClock
from mloop.config import load_settings
from mloop.registry import Registry
from mloop.store import model_versions, models


def seed(registry: Registry, name: str = "churn", versions: int = 4, production: int = 3) -> None:
    """Insert version rows directly: rollouts need versions to exist, not real artifacts."""
    now = registry.clock.now()
    with registry.store.write() as conn:
        conn.execute(models.insert().values(name=name, description="", created_at=now))
        for v in range(1, versions + 1):
            conn.execute(
                model_versions.insert().values(
                    model_name=name,
                    version=v,
                    flavor="sklearn",
                    task="classification",
                    classes=[0, 1],
                    artifacts={},
                    flavor_meta={},
                    schema=None,
                    profile=None,
                    metrics={},
                    params={},
                    tags={},
                    lineage={},
                    description="",
                    created_at=now,
                    created_by="test",
                )
            )
    registry.set_alias(name, "production", production, actor="test")


def open_registry(tmp_path: Path, database_url: str | None, clock: ManualClock) -> Registry:
    """A registry on SQLite in ``tmp_path`` or on the given database URL."""
    overrides = {"database_url": database_url} if database_url else {}
    settings = load_settings(env={}, config_file=None, home=tmp_path / "home", **overrides)
    return Registry(settings, clock=clock)


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
