"""The registry: the only writer of model metadata."""

from __future__ import annotations

import getpass
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mloop._clock import Clock, SystemClock
from mloop.config import Settings, load_settings
from mloop.contracts import Profile, Schema
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.registry._lineage import collect_lineage
from mloop.registry._model_version import ModelVersion, RegisteredModel
from mloop.registry._predictor import Predictor
from mloop.registry._refs import parse_ref, validate_name
from mloop.store import ArtifactStore, MetadataStore, aliases, audit_events, model_versions, models

__all__ = ["Registry", "current_actor"]

_PROFILE_SAMPLE_ROWS = 100_000
MAX_VERSION = 2**31 - 1  # the version column is a 32-bit integer on PostgreSQL


def current_actor(actor: str | None = None) -> str:
    """``actor`` if given, else the OS user name: who the audit trail records."""
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _as_frame(data: Any, names: list[str] | None = None) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, np.ndarray):
        columns = names or [f"f{i}" for i in range(data.shape[1])]
        return pd.DataFrame(data, columns=columns)
    return pd.DataFrame(data)


class Registry:
    """Register model versions, resolve references, move aliases, load predictors."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        metadata: MetadataStore | None = None,
        artifacts: ArtifactStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.store = metadata or MetadataStore.from_settings(self.settings)
        self.artifacts = artifacts or ArtifactStore.from_settings(self.settings)
        self.clock = clock or SystemClock()

    # --- writing -------------------------------------------------------------------

    def register(
        self,
        model: object,
        name: str,
        *,
        training_data: Any = None,
        target: Any = None,
        reference_data: Any = None,
        reference_target: Any = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        description: str = "",
        flavor: str | None = None,
        trust: bool = False,
        actor: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        contract: Schema | None = None,
        reference_profile: Profile | None = None,
    ) -> ModelVersion:
        """Save ``model`` as the next version of ``name`` with its contract and profile.

        ``training_data`` gives the input contract; ``reference_data`` (default: the
        training data) gives the reference profile monitoring compares against, and with
        ``reference_target`` the calibration for label-free performance estimates.
        Without training data, ``contract`` and ``reference_profile`` are recorded as
        given (a version derived from another, as by ``mloop optimize``, keeps its parent's).
        """
        from mloop.contracts import build_profile, infer_schema
        from mloop.flavors import flavor_for, get_flavor, task_from_target

        validate_name(name)
        if alias is not None:
            validate_name(alias, "alias")
        chosen = get_flavor(flavor) if flavor else flavor_for(model)
        with tempfile.TemporaryDirectory(prefix="mloop-register-") as tmp:
            folder = Path(tmp) / "model"
            folder.mkdir()
            flavor_meta = dict(chosen.save(model, folder, trust=trust))
            if chosen.name == "pyfunc":
                flavor_meta = task_from_target(model, flavor_meta, target)
            manifest = {
                str(path.relative_to(folder)): self.artifacts.put_file(path)
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            }
            # Predict through the saved copy: a model that does not round-trip fails here,
            # at registration, not later in production.
            loaded = chosen.load(folder, flavor_meta, trust=trust)

        schema, profile = contract, reference_profile
        if training_data is not None:
            schema = infer_schema(training_data)
            names = [c.name for c in schema.columns]
            ref = _as_frame(training_data if reference_data is None else reference_data, names)
            ref_target = target if reference_data is None else reference_target
            if len(ref) > _PROFILE_SAMPLE_ROWS:
                keep = np.random.default_rng(0).choice(
                    len(ref), _PROFILE_SAMPLE_ROWS, replace=False
                )
                ref = ref.iloc[np.sort(keep)]
                ref_target = None if ref_target is None else np.asarray(ref_target)[np.sort(keep)]
            frame = _reference_frame(schema, ref)
            predictions = loaded.predict(frame)
            profile = build_profile(frame, schema, predictions=predictions, target=ref_target)

        now = self.clock.now()
        who = current_actor(actor)
        row = {
            "model_name": name,
            "flavor": chosen.name,
            "task": loaded.task,
            "classes": [_plain(c) for c in loaded.classes],
            "artifacts": manifest,
            "flavor_meta": flavor_meta,
            "schema": None if schema is None else schema.to_dict(),
            "profile": None if profile is None else profile.to_dict(),
            "metrics": {k: float(v) for k, v in (metrics or {}).items()},
            "params": {k: _plain(v) for k, v in (params or {}).items()},
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "lineage": collect_lineage(training_data, target, dict(lineage or {})),
            "description": description,
            "created_at": now,
            "created_by": who,
        }
        with self.store.write() as conn:
            self._ensure_model(conn, name, now)
            latest = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.model_name == name
                )
            ).scalar()
            version = (latest or 0) + 1
            conn.execute(model_versions.insert().values(version=version, **row))
            self._audit(conn, who, "version.register", name, {"version": version})
            if alias is not None:
                self.set_alias_in(conn, name, alias, version, who, "set at registration")
        return self.get(f"{name}:{version}")

    def _ensure_model(self, conn: Connection, name: str, now: float) -> None:
        insert: Any
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        conn.execute(
            insert(models)
            .values(name=name, description="", created_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        if conn.dialect.name == "postgresql":
            # Serialise version numbering per model name across processes.
            conn.execute(sa.select(models.c.name).where(models.c.name == name).with_for_update())

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None = None, reason: str = ""
    ) -> int | None:
        """Point ``name@alias`` at ``version`` atomically; return the previous version."""
        validate_name(alias, "alias")
        with self.store.write() as conn:
            return self.set_alias_in(conn, name, alias, version, current_actor(actor), reason)

    def set_alias_in(
        self, conn: Connection, name: str, alias: str, version: int, who: str, reason: str
    ) -> int | None:
        """``set_alias`` inside the caller's write transaction (rollouts commit state with it)."""
        self._require_version(conn, name, version)
        previous = conn.execute(
            sa.select(aliases.c.version).where(
                aliases.c.model_name == name, aliases.c.alias == alias
            )
        ).scalar()
        now = self.clock.now()
        if previous is None:
            conn.execute(
                aliases.insert().values(
                    model_name=name, alias=alias, version=version, updated_at=now
                )
            )
        else:
            conn.execute(
                aliases.update()
                .where(aliases.c.model_name == name, aliases.c.alias == alias)
                .values(version=version, updated_at=now)
            )
        details = {"alias": alias, "from": previous, "to": version, "reason": reason}
        self._audit(conn, who, "alias.set", name, details)
        return int(previous) if previous is not None else None

    def remove_alias(self, name: str, alias: str, *, actor: str | None = None) -> int:
        """Remove ``name@alias``; return the version it pointed at."""
        with self.store.write() as conn:
            previous = conn.execute(
                sa.select(aliases.c.version).where(
                    aliases.c.model_name == name, aliases.c.alias == alias
                )
            ).scalar()
            if previous is None:
                raise self._no_alias(conn, name, alias)
            conn.execute(
                aliases.delete().where(aliases.c.model_name == name, aliases.c.alias == alias)
            )
            details = {"alias": alias, "from": previous, "to": None}
            self._audit(conn, current_actor(actor), "alias.remove", name, details)
            return int(previous)

    def delete_version(self, name: str, version: int, *, actor: str | None = None) -> None:
        """Delete a version's metadata; refused while an alias points at it."""
        with self.store.write() as conn:
            self._require_version(conn, name, version)
            pointing = (
                conn.execute(
                    sa.select(aliases.c.alias).where(
                        aliases.c.model_name == name, aliases.c.version == version
                    )
                )
                .scalars()
                .all()
            )
            if pointing:
                names = ", ".join(f"{name}@{a}" for a in sorted(pointing))
                raise Conflict(
                    f"Version {name}:{version} is in use by alias {names}. Move the alias first: "
                    f"mloop alias set {name} {sorted(pointing)[0]} <other version>, "
                    f"or remove it: mloop alias rm {name} {sorted(pointing)[0]}.",
                    aliases=sorted(pointing),
                )
            conn.execute(
                model_versions.delete().where(
                    model_versions.c.model_name == name, model_versions.c.version == version
                )
            )
            self._audit(conn, current_actor(actor), "version.delete", name, {"version": version})

    def record_event(
        self, subject: str, action: str, details: Mapping[str, Any], *, actor: str | None = None
    ) -> None:
        """Append an audit event (used by rollouts, pipelines and operators)."""
        with self.store.write() as conn:
            self._audit(conn, current_actor(actor), action, subject, dict(details))

    def _audit(
        self, conn: Connection, who: str, action: str, subject: str, details: dict[str, Any]
    ) -> None:
        conn.execute(
            audit_events.insert().values(
                at=self.clock.now(), actor=who, action=action, subject=subject, details=details
            )
        )

    # --- reading -------------------------------------------------------------------

    def get(self, ref: str) -> ModelVersion:
        """Resolve ``name``, ``name@alias`` or ``name:version`` to a ``ModelVersion``.

        A bare name resolves to the ``production`` alias if set, else the latest version.
        """
        parsed = parse_ref(ref)
        with self.store.read() as conn:
            version = parsed.version
            if parsed.alias is not None:
                version = conn.execute(
                    sa.select(aliases.c.version).where(
                        aliases.c.model_name == parsed.name, aliases.c.alias == parsed.alias
                    )
                ).scalar()
                if version is None:
                    raise self._no_alias(conn, parsed.name, parsed.alias)
            elif version is None:
                version = (
                    conn.execute(
                        sa.select(aliases.c.version).where(
                            aliases.c.model_name == parsed.name, aliases.c.alias == "production"
                        )
                    ).scalar()
                    or conn.execute(
                        sa.select(sa.func.max(model_versions.c.version)).where(
                            model_versions.c.model_name == parsed.name
                        )
                    ).scalar()
                )
                if version is None:
                    raise self._no_model(conn, parsed.name)
            return self._version(conn, parsed.name, int(version))

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(model_versions)
                .where(model_versions.c.model_name == name)
                .order_by(model_versions.c.version)
            ).all()
            if not rows:
                raise self._no_model(conn, name)
            by_version = self._aliases_by_version(conn, name)
            return [_to_version(r, by_version.get(r.version, ())) for r in rows]

    def label_spaces(self) -> dict[str, tuple[frozenset[str], frozenset[Any]]]:
        """Per model: the tasks of its versions and the classes any of its classifiers has."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(
                    model_versions.c.model_name, model_versions.c.task, model_versions.c.classes
                )
            ).all()
        tasks: dict[str, set[str]] = {}
        classes: dict[str, set[Any]] = {}
        for name, task, found in rows:
            tasks.setdefault(name, set()).add(str(task))
            classes.setdefault(name, set()).update(found or ())
        return {n: (frozenset(t), frozenset(classes.get(n, ()))) for n, t in tasks.items()}

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model with its latest version and aliases."""
        with self.store.read() as conn:
            latest = dict(
                conn.execute(
                    sa.select(
                        model_versions.c.model_name, sa.func.max(model_versions.c.version)
                    ).group_by(model_versions.c.model_name)
                ).all()
            )
            alias_rows = conn.execute(sa.select(aliases)).all()
            rows = conn.execute(sa.select(models).order_by(models.c.name)).all()
        by_model: dict[str, dict[str, int]] = {}
        for a in alias_rows:
            by_model.setdefault(a.model_name, {})[a.alias] = a.version
        return [
            RegisteredModel(
                name=r.name,
                description=r.description,
                created_at=r.created_at,
                latest_version=latest.get(r.name),
                aliases=by_model.get(r.name, {}),
            )
            for r in rows
        ]

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` for one model."""
        with self.store.read() as conn:
            rows = conn.execute(sa.select(aliases).where(aliases.c.model_name == name)).all()
        return {r.alias: r.version for r in rows}

    def with_alias(self, alias: str) -> dict[str, int]:
        """``{model name: version}`` for every model that has ``alias``."""
        with self.store.read() as conn:
            rows = conn.execute(sa.select(aliases).where(aliases.c.alias == alias)).all()
        return {r.model_name: r.version for r in rows}

    def history(self, name: str, limit: int = 200) -> list[dict[str, Any]]:
        """Audit events about ``name``, newest first."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(audit_events)
                .where(audit_events.c.subject == name)
                .order_by(audit_events.c.id.desc())
                .limit(limit)
            ).all()
        return [
            {"at": r.at, "actor": r.actor, "action": r.action, "details": r.details} for r in rows
        ]

    # --- loading -------------------------------------------------------------------

    def load(self, ref: str | ModelVersion, *, trust: bool = False) -> Predictor:
        """A ``Predictor`` for ``ref``, after checking every artifact's sha256."""
        from mloop.flavors import get_flavor

        mv = ref if isinstance(ref, ModelVersion) else self.get(ref)
        with tempfile.TemporaryDirectory(prefix="mloop-load-") as tmp:
            folder = Path(tmp)
            for relative, digest in mv.artifacts.items():
                self.artifacts.fetch(digest, folder / relative, name=f"{mv.ref}/{relative}")
            model = get_flavor(mv.flavor).load(folder, mv.flavor_meta, trust=trust)
        return Predictor(mv, model)

    # --- helpers -------------------------------------------------------------------

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        if not 0 < version <= MAX_VERSION:  # beyond the column's range no version can exist
            raise self._no_version(conn, name, version)
        row = conn.execute(
            sa.select(model_versions).where(
                model_versions.c.model_name == name, model_versions.c.version == version
            )
        ).first()
        if row is None:
            raise self._no_version(conn, name, version)
        return _to_version(row, self._aliases_by_version(conn, name).get(version, ()))

    def _require_version(self, conn: Connection, name: str, version: int) -> None:
        if not 0 < version <= MAX_VERSION:
            raise self._no_version(conn, name, version)
        exists = conn.execute(
            sa.select(model_versions.c.id).where(
                model_versions.c.model_name == name, model_versions.c.version == version
            )
        ).first()
        if exists is None:
            raise self._no_version(conn, name, version)

    def _aliases_by_version(self, conn: Connection, name: str) -> dict[int, tuple[str, ...]]:
        result: dict[int, list[str]] = {}
        for r in conn.execute(sa.select(aliases).where(aliases.c.model_name == name)).all():
            result.setdefault(r.version, []).append(r.alias)
        return {v: tuple(sorted(a)) for v, a in result.items()}

    def _no_model(self, conn: Connection, name: str) -> NotFound:
        known = conn.execute(sa.select(models.c.name).order_by(models.c.name)).scalars().all()
        hint = f"Known models: {', '.join(known)}." if known else "No models are registered yet."
        return NotFound(f"Model {name!r} is not registered. {hint}", known_models=list(known))

    def _no_version(self, conn: Connection, name: str, version: int) -> NotFound:
        known = (
            conn.execute(
                sa.select(model_versions.c.version)
                .where(model_versions.c.model_name == name)
                .order_by(model_versions.c.version)
            )
            .scalars()
            .all()
        )
        if not known:
            return self._no_model(conn, name)
        return NotFound(
            f"Model {name!r} has no version {version}; versions: {', '.join(map(str, known))}.",
            known_versions=list(known),
        )

    def _no_alias(self, conn: Connection, name: str, alias: str) -> NotFound:
        known = self._aliases_by_version(conn, name)
        exists = conn.execute(sa.select(models.c.name).where(models.c.name == name)).first()
        if exists is None:
            return self._no_model(conn, name)
        names = sorted(a for group in known.values() for a in group)
        have = f" Its aliases: {', '.join(names)}." if names else ""
        return NotFound(
            f"Model {name!r} has no alias {alias!r}.{have} "
            f"Set one with: mloop alias set {name} {alias} <version>",
            known_aliases=names,
        )


def _reference_frame(schema: Schema, data: pd.DataFrame) -> pd.DataFrame:
    """Reference rows in contract form; gaps the training data happened not to have are fine."""
    frame, violations = schema.coerce(data)
    fatal = [v for v in violations if v.kind in ("missing_column", "wrong_type")]
    if fatal:
        raise InvalidInput(
            "The reference data does not match the training data's columns: "
            + "; ".join(v.message for v in fatal[:5]),
            violations=[v.to_dict() for v in fatal[:50]],
        )
    return frame


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _to_version(row: Row[Any], alias_names: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        name=row.model_name,
        version=row.version,
        flavor=row.flavor,
        task=row.task,
        classes=tuple(row.classes or ()),
        artifacts=row.artifacts,
        flavor_meta=row.flavor_meta,
        schema_dict=row.schema,
        profile_dict=row.profile,
        metrics=row.metrics,
        params=row.params,
        tags=row.tags,
        lineage=row.lineage,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        aliases=alias_names,
    )
