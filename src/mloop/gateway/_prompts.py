"""The prompt registry: immutable, numbered prompt versions with aliases, diffs and lineage.

A version is a ``PromptTemplate`` (system text, few-shot turns, user wrapper) plus the
deployment it was written for and the version it was derived from. Versions never
change; an alias (``support-answer@production``) names one version and moves. A route
refers to a prompt by reference (``[routes.r.templates.big] prompt = "name@alias"``)
and the gateway resolves it per request from a cache of ``cache_ttl_s``, so moving an
alias takes effect on every replica within that time, with no restart. When the
database cannot be read, the last version resolved keeps serving.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from mloop._clock import Clock, SystemClock
from mloop.errors import ConfigurationError, InvalidInput, NotFound
from mloop.gateway._config import PromptTemplate
from mloop.store import MetadataStore, audit_events

__all__ = [
    "PromptRegistry",
    "PromptSource",
    "PromptVersion",
    "gateway_prompt_aliases",
    "gateway_prompts",
    "parse_ref",
    "template_from",
]

_meta = sa.MetaData()

gateway_prompts = sa.Table(
    "gateway_prompts",
    _meta,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("template", sa.JSON, nullable=False),
    sa.Column("deployment", sa.String(200), nullable=True),
    sa.Column("parent", sa.Integer, nullable=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)

gateway_prompt_aliases = sa.Table(
    "gateway_prompt_aliases",
    _meta,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("alias", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def parse_ref(ref: str) -> tuple[str, str]:
    """``"name@alias"`` / ``"name@3"`` / ``"name"`` (latest) -> (name, alias or version)."""
    name, _, selector = ref.partition("@")
    if not _NAME.match(name) or (selector and not _NAME.match(selector)):
        raise InvalidInput(
            f"Prompt reference {ref!r} must read NAME, NAME@ALIAS or NAME@VERSION, e.g. "
            "support-answer@production."
        )
    return name, selector or "latest"


def template_from(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validated template fields (system, few_shot, user) from user data."""
    unknown = set(data) - {"system", "few_shot", "user"}
    if unknown:
        raise InvalidInput(
            f"Unknown prompt field(s) {sorted(unknown)}; use system, few_shot, user."
        )
    few_shot = data.get("few_shot") or []
    if not isinstance(few_shot, list) or not all(
        isinstance(m, Mapping) and "role" in m and "content" in m for m in few_shot
    ):
        raise InvalidInput("few_shot must be a list of {role, content} objects.")
    user = data.get("user")
    if user is not None and "{content}" not in str(user):
        raise InvalidInput(f"user={user!r} must contain {{content}} where the caller's text goes.")
    return {
        "system": None if data.get("system") is None else str(data["system"]),
        "few_shot": [{"role": str(m["role"]), "content": str(m["content"])} for m in few_shot],
        "user": None if user is None else str(user),
    }


@dataclass(frozen=True)
class PromptVersion:
    """One immutable prompt version."""

    name: str
    version: int
    fields: Mapping[str, Any]
    deployment: str | None
    parent: int | None
    description: str
    created_at: float
    created_by: str

    @property
    def ref(self) -> str:
        """``name@version``: what responses report as their template version."""
        return f"{self.name}@{self.version}"

    @property
    def template(self) -> PromptTemplate:
        """The template the gateway renders."""
        return PromptTemplate(
            version=self.ref,
            system=self.fields.get("system"),
            few_shot=tuple(self.fields.get("few_shot") or ()),
            user=self.fields.get("user"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "template": dict(self.fields),
            "deployment": self.deployment,
            "parent": self.parent,
            "description": self.description,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


class PromptSource(Protocol):
    """Where the gateway resolves prompt references."""

    def resolve(self, ref: str, key: str | None = None) -> PromptVersion:
        """The version ``ref`` names now (for ``key``'s arm when the alias is under live A/B)."""
        ...


def _version(row: Any) -> PromptVersion:
    return PromptVersion(
        row.name,
        int(row.version),
        dict(row.template),
        row.deployment,
        row.parent,
        row.description,
        row.created_at,
        row.created_by,
    )


class PromptRegistry:
    """Prompt versions and aliases in the metadata database."""

    def __init__(
        self, store: MetadataStore, *, clock: Clock | None = None, cache_ttl_s: float = 2.0
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, PromptVersion]] = {}
        self._lock = threading.Lock()

    def create(
        self,
        name: str,
        fields: Mapping[str, Any],
        *,
        deployment: str | None = None,
        parent: int | None = None,
        description: str = "",
        actor: str = "cli",
    ) -> PromptVersion:
        """Store a new version (the next number); versions are never changed afterwards."""
        parse_ref(name)
        clean = template_from(fields)
        p = gateway_prompts
        now = self.clock.now()
        with self.store.write() as conn:
            latest = conn.execute(sa.select(sa.func.max(p.c.version)).where(p.c.name == name))
            number = (latest.scalar() or 0) + 1
            if parent is None and number > 1:
                parent = number - 1
            row = {
                "name": name,
                "version": number,
                "template": clean,
                "deployment": deployment,
                "parent": parent,
                "description": description,
                "created_at": now,
                "created_by": actor,
            }
            conn.execute(p.insert().values(**row))
            self._audit(conn, actor, "prompt.create", name, {"version": number, "parent": parent})
        return PromptVersion(name, number, clean, deployment, parent, description, now, actor)

    def get(self, name: str, version: int) -> PromptVersion:
        """Version ``version`` of prompt ``name``."""
        p = gateway_prompts
        with self.store.read() as conn:
            row = conn.execute(sa.select(p).where(p.c.name == name, p.c.version == version)).first()
        if row is None:
            raise NotFound(
                f"Prompt {name!r} has no version {version}. List them with: "
                f"mloop gateway prompt list {name}",
                param="prompt",
            )
        return _version(row)

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of ``name``, oldest first."""
        p = gateway_prompts
        with self.store.read() as conn:
            rows = conn.execute(sa.select(p).where(p.c.name == name).order_by(p.c.version)).all()
        return [_version(r) for r in rows]

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` of prompt ``name``."""
        a = gateway_prompt_aliases
        with self.store.read() as conn:
            rows = conn.execute(sa.select(a).where(a.c.name == name).order_by(a.c.alias)).all()
        return {r.alias: int(r.version) for r in rows}

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str = "cli", why: str = ""
    ) -> int | None:
        """Point ``name@alias`` at ``version``; returns the version it pointed at before."""
        if alias == "latest" or alias.isdigit():
            raise InvalidInput(f"Alias {alias!r} is reserved; choose a name like production.")
        parse_ref(f"{name}@{alias}")
        self.get(name, version)
        with self.store.write() as conn:
            before = self.move_alias(conn, name, alias, version, actor=actor, why=why)
        with self._lock:
            self._cache.clear()
        return before

    def move_alias(
        self, conn: sa.Connection, name: str, alias: str, version: int, *, actor: str, why: str
    ) -> int | None:
        """``set_alias``'s audited move inside the caller's transaction (no checks, no cache)."""
        a = gateway_prompt_aliases
        now = self.clock.now()
        before = conn.execute(
            sa.select(a.c.version).where(a.c.name == name, a.c.alias == alias)
        ).scalar()
        if before is None:
            conn.execute(a.insert().values(name=name, alias=alias, version=version, updated_at=now))
        else:
            conn.execute(
                a.update()
                .where(a.c.name == name, a.c.alias == alias)
                .values(version=version, updated_at=now)
            )
        details = {"alias": alias, "from": before, "to": version, "why": why}
        self._audit(conn, actor, "prompt.alias", name, details)
        return None if before is None else int(before)

    def forget(self) -> None:
        """Drop cached resolutions (after an alias moved in another transaction)."""
        with self._lock:
            self._cache.clear()

    def lookup(self, ref: str) -> PromptVersion:
        """The version ``ref`` names, read from the database now."""
        name, selector = parse_ref(ref)
        if selector.isdigit():
            return self.get(name, int(selector))
        if selector == "latest":
            versions = self.versions(name)
            if not versions:
                raise NotFound(f"No prompt {name!r}. Create one with: mloop gateway prompt create")
            return versions[-1]
        version = self.aliases(name).get(selector)
        if version is None:
            raise NotFound(
                f"Prompt {name!r} has no alias {selector!r}. Set one with: "
                f"mloop gateway prompt alias {name} {selector} VERSION",
                param="prompt",
            )
        return self.get(name, version)

    def resolve(self, ref: str, key: str | None = None) -> PromptVersion:
        """``lookup`` through a cache of ``cache_ttl_s``; stale but served if the database fails.

        ``key`` is ignored: the registry splits no traffic (``LiveAB`` does).
        """
        now = self.clock.monotonic()
        with self._lock:
            hit = self._cache.get(ref)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            found = self.lookup(ref)
        except NotFound as exc:
            raise ConfigurationError(
                f"A route refers to prompt {ref!r}, which does not resolve: {exc.message}"
            ) from exc
        except sa.exc.SQLAlchemyError:
            if hit is not None:
                return hit[1]  # the last version we knew beats refusing every request
            raise
        with self._lock:
            self._cache[ref] = (now + self.cache_ttl_s, found)
        return found

    def diff(self, name: str, a: int, b: int) -> str:
        """A unified diff of two versions' template fields and deployment."""
        old, new = self.get(name, a), self.get(name, b)

        def lines(v: PromptVersion) -> list[str]:
            text = json.dumps({**v.fields, "deployment": v.deployment}, indent=2, sort_keys=True)
            return text.splitlines(keepends=True)

        return "".join(difflib.unified_diff(lines(old), lines(new), f"{name}@{a}", f"{name}@{b}"))

    def history(self, name: str) -> list[dict[str, Any]]:
        """Creations and alias moves of ``name``, newest first."""
        e = audit_events
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(e).where(e.c.subject == f"prompt:{name}").order_by(e.c.id.desc())
            ).all()
        return [{"at": r.at, "actor": r.actor, "action": r.action, **dict(r.details)} for r in rows]

    def _audit(
        self, conn: sa.Connection, actor: str, action: str, name: str, details: dict[str, Any]
    ) -> None:
        conn.execute(
            audit_events.insert().values(
                at=self.clock.now(),
                actor=actor,
                action=action,
                subject=f"prompt:{name}",
                details=details,
            )
        )
