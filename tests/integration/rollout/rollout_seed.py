"""Seeding helpers shared by the rollout integration tests (imported by name, not via conftest)."""

from __future__ import annotations

from pathlib import Path

from mloop._clock import ManualClock
from mloop.config import load_settings
from mloop.registry import Registry
from mloop.store import model_versions, models

__all__ = ["open_registry", "seed"]


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
