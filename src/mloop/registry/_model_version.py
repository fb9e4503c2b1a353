"""What the registry knows about one model version."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.contracts import Profile, Schema

__all__ = ["ModelVersion", "RegisteredModel"]


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a registered model."""

    name: str
    version: int
    flavor: str
    task: str
    classes: tuple[Any, ...]
    artifacts: Mapping[str, str]  # file name inside the model folder -> sha256
    flavor_meta: Mapping[str, Any]
    schema_dict: Mapping[str, Any] | None
    profile_dict: Mapping[str, Any] | None
    metrics: Mapping[str, float]
    params: Mapping[str, Any]
    tags: Mapping[str, str]
    lineage: Mapping[str, Any]
    description: str
    created_at: float
    created_by: str
    aliases: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"

    @functools.cached_property
    def schema(self) -> Schema | None:
        """The input contract inferred at registration, if training data was given."""
        from mloop.contracts import Schema

        return None if self.schema_dict is None else Schema.from_dict(self.schema_dict)

    @functools.cached_property
    def profile(self) -> Profile | None:
        """The reference profile computed at registration, if training data was given."""
        from mloop.contracts import Profile

        return None if self.profile_dict is None else Profile.from_dict(self.profile_dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready overview (no schema or profile bodies)."""
        return {
            "name": self.name,
            "version": self.version,
            "flavor": self.flavor,
            "task": self.task,
            "classes": list(self.classes),
            "aliases": list(self.aliases),
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "tags": dict(self.tags),
            "lineage": dict(self.lineage),
            "description": self.description,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class RegisteredModel:
    """A model name with its versions and aliases."""

    name: str
    description: str
    created_at: float
    latest_version: int | None
    aliases: Mapping[str, int]
