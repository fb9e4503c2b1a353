"""The metadata database: one SQLAlchemy engine, migrated by Alembic, SQLite or PostgreSQL.

SQLite runs in WAL mode and write transactions take the write lock up front
(``BEGIN IMMEDIATE``), so two processes that read-then-write (e.g. "next version
number") serialise instead of failing halfway. PostgreSQL gets row locks
(``SELECT … FOR UPDATE``) from the callers and an advisory lock around migrations.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from mloop.config import Settings
from mloop.errors import ConfigurationError

__all__ = ["MetadataStore"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x6D6C6F6F70  # "mloop"
_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)


@functools.cache
def script_heads() -> frozenset[str]:
    """The newest migration of every branch, read from the scripts' own lines.

    A store already at these heads needs no Alembic at all (importing and running it
    costs half a second of every server's and CLI command's start).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text()
        found = _REVISION.search(text)
        down = _DOWN.search(text)
        if found is None or down is None:
            raise ConfigurationError(f"Migration {path.name} has no revision/down_revision line.")
        revisions.add(found.group(1))
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return frozenset(revisions - parents)


def _normalise_url(url: str) -> str:
    # Users write postgresql://…; psycopg 3 is the driver we ship in the extra.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class MetadataStore:
    """Connections, transactions and migrations for the metadata database."""

    def __init__(self, url: str, *, home: Path | None = None, migrate: bool = True) -> None:
        self.url = _normalise_url(url)
        self._home = home
        self.engine = self._create_engine()
        if migrate:
            self.upgrade()

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> MetadataStore:
        """Open the store named by ``settings.database_url``."""
        return cls(settings.database_url, home=settings.home, migrate=migrate)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def _create_engine(self) -> Engine:
        if self.url.startswith("sqlite"):
            return self._create_sqlite_engine()
        if self.url.startswith("postgresql"):
            from mloop._deps import require

            require("psycopg", "PostgreSQL metadata")
            return sa.create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        raise ConfigurationError(
            f"Unsupported database URL {self.url!r}: use sqlite:///path or postgresql://…"
        )

    def _create_sqlite_engine(self) -> Engine:
        path = self.url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(self.url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = "IMMEDIATE" if conn.info.get("mloop_write") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self.engine.connect() as conn:
            conn.info["mloop_write"] = False
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that holds the write lock from its first statement."""
        with self.engine.connect() as conn:
            conn.info["mloop_write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info["mloop_write"] = False

    def at_heads(self) -> bool:
        """True when every migration is applied already (a read, no Alembic)."""
        try:
            with self.engine.connect() as conn:
                applied = {
                    r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                }
        except sa.exc.DBAPIError:  # a new database: no version table yet
            return False
        return applied == script_heads()

    def upgrade(self) -> None:
        """Apply every pending Alembic migration (all branches); safe to call concurrently."""
        if self.at_heads():
            return
        from alembic import command
        from alembic.config import Config

        # Alembic narrates every run at INFO; the migrations are mloop's business, not the log's.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.set_main_option("path_separator", "os")
        with self._migration_lock(), self.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
            conn.commit()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                try:
                    yield
                finally:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                    conn.commit()
            return
        path = self.url.split("sqlite:///", 1)[-1]
        if not path or path == ":memory:":
            yield
            return
        with open(path + ".migrate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
