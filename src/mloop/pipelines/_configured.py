"""The pipelines a deployment has: ``mloop pipelines add`` definitions and ``[[pipelines]]``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mloop.config import Settings
from mloop.pipelines._spec import Pipeline, load_pipeline, pipeline_from_table
from mloop.pipelines._store import RunStore

if TYPE_CHECKING:
    from mloop.registry import Registry

__all__ = ["configured_pipelines"]

_log = logging.getLogger("mloop.pipelines")


def configured_pipelines(
    settings: Settings, registry: Registry, *, skip_broken: bool = False
) -> dict[str, Pipeline]:
    """Pipelines by name; ``skip_broken`` logs and skips one that fails to import (servers)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # pipelines live in the user's project
    found: dict[str, Pipeline] = {}
    for d in RunStore(registry.store).definitions():
        try:
            found[d.name] = load_pipeline(d.path).with_options(name=d.name)
        except Exception:
            if not skip_broken:
                raise
            _log.exception("pipeline %s (%s) could not be loaded; it will not run", d.name, d.path)
    tables = settings.raw.get("pipelines", [])
    for table in [tables] if isinstance(tables, Mapping) else tables:
        p = pipeline_from_table(table)
        found[p.name] = p
    return found
