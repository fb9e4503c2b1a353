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


def test_the_heads_read_from_the_scripts_are_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from mloop.store._metadata import _MIGRATIONS, script_heads

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    assert script_heads() == frozenset(ScriptDirectory.from_config(cfg).get_heads())


def test_a_store_at_its_heads_opens_without_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'm.db'}"
    fresh = MetadataStore(url, migrate=False)
    assert not fresh.at_heads()
    fresh.upgrade()
    assert fresh.at_heads()
    code = (
        "import sys; from mloop.store import MetadataStore; "
        f"MetadataStore({url!r}); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", "a current store imported Alembic"
