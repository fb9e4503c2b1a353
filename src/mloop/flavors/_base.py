"""What every flavor provides: save a model to a folder, load it back as a ``Model``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mloop.types import ArrayModel, Model, Predictions, Task

__all__ = ["ArrayModel", "Flavor", "Model", "Predictions", "Task"]


class Flavor(Protocol):
    """Knows how to persist one kind of model."""

    name: str

    def accepts(self, model: object) -> bool:
        """True if this flavor can save ``model``."""
        ...

    def save(self, model: object, folder: Path, *, trust: bool = False) -> Mapping[str, Any]:
        """Write ``model`` into the empty ``folder``; return JSON-ready flavor metadata."""
        ...

    def load(self, folder: Path, meta: Mapping[str, Any], *, trust: bool = False) -> Model:
        """Load the model written by ``save`` from ``folder``."""
        ...
