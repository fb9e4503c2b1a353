"""What monitoring needs of the model registry, as Protocols (``mloop.registry.Registry`` fits).

The monitor reads a version's contract, reference profile and classes, the label
spaces of the registered models, and the metadata store its alert tables and SQL log
live in. Asking for these three things instead of the ``Registry`` keeps the import
arrows pointing one way: the registry does not need the monitor, nor the monitor it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mloop.contracts import Profile, Schema
    from mloop.journal import LabelSpaces
    from mloop.store import MetadataStore

__all__ = ["ModelCatalog", "MonitoredVersion"]


class MonitoredVersion(Protocol):
    """One registered model version, as far as monitoring reads it."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def task(self) -> str: ...
    @property
    def classes(self) -> tuple[Any, ...]: ...
    @property
    def schema(self) -> Schema | None: ...
    @property
    def profile(self) -> Profile | None: ...


class ModelCatalog(Protocol):
    """Versions by reference, the classes labels are checked against, and the metadata store."""

    @property
    def store(self) -> MetadataStore: ...

    def get(self, ref: str) -> MonitoredVersion:
        """The version ``ref`` names (``name``, ``name@alias`` or ``name:3``)."""
        ...

    def label_spaces(self) -> LabelSpaces:
        """Per model: the tasks of its versions and the classes of its classifier versions."""
        ...
