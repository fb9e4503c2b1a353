"""State shared by every command: settings built once at the entry point, the registry on demand."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from mloop.config import Settings

if TYPE_CHECKING:
    from mloop.registry import Registry

__all__ = ["CliState", "state", "when"]


@dataclass
class CliState:
    """Per-invocation state hung on the Typer context."""

    settings: Settings
    debug: bool = False
    _registry: Registry | None = field(default=None, repr=False)

    @functools.cached_property
    def registry(self) -> Registry:
        """The registry for these settings, opened on first use."""
        from mloop.registry import Registry

        return Registry(self.settings)


def state(ctx: typer.Context) -> CliState:
    """The ``CliState`` of the running command."""
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


def when(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A timestamp in local time for tables (``-`` when unknown)."""
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime(fmt)
