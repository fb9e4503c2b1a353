"""Migrations run on open, repeatedly and from several processes at once."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import sqlalchemy as sa

from mloop.store import MetadataStore


def _open(url: str) -> None:
    MetadataStore(url).dispose()


def test_migrations_are_idempotent_and_safe_to_race(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(url,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = MetadataStore(url)
    with store.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert {"models", "model_versions", "aliases", "audit_events", "api_keys"} <= tables
    assert mode == "wal"


def test_postgres_store_migrates(postgres_url: str) -> None:
    store = MetadataStore(postgres_url)
    store.upgrade()
    with store.read() as conn:
        assert "model_versions" in sa.inspect(conn).get_table_names()
    store.dispose()
