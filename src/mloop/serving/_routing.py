"""Which version answers a request: the router protocol and serving's default alias router.

The default ``AliasRouter`` follows an alias (``production`` unless refs say
otherwise) by polling the registry. When an alias moves, the new version is loaded
and warmed through ``ensure_ready`` *before* the route switches, so no request
waits on a cold model and requests already in flight finish on the old version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from mloop.errors import NotFound
from mloop.registry import parse_ref
from mloop.types import RouteDecision, TrafficRouter

__all__ = ["AliasRouter", "RouteDecision", "TrafficRouter"]

EnsureReady = Callable[[str, int], Awaitable[None]]


class AliasRouter:
    """Serves each model's alias (default ``production``), following moves after warm-up.

    ``refs`` limits serving to those models: ``"churn"`` (production alias),
    ``"churn@staging"`` (another alias, also followed) or ``"churn:3"`` (fixed).
    Without refs every model that has the alias is served, new ones included.
    """

    def __init__(
        self, registry: Any, refs: Iterable[str] = (), *, alias: str = "production"
    ) -> None:
        self.registry = registry
        self.alias = alias
        self._fixed: dict[str, int] = {}
        self._followed: dict[str, str] = {}
        for ref in refs:
            parsed = parse_ref(ref)
            if parsed.version is not None:
                self._fixed[parsed.name] = parsed.version
            else:
                self._followed[parsed.name] = parsed.alias or alias
        self._all = not self._fixed and not self._followed
        self._active: dict[str, int] = {}
        self._decisions: dict[str, RouteDecision] = {}

    def route(self, model: str, key: str | None) -> RouteDecision:
        """The active version of ``model``; ``NotFound`` names the served models."""
        decision = self._decisions.get(model)
        if decision is None:
            known = sorted(self._decisions)
            raise NotFound(
                f"Model {model!r} is not served here. Served models: "
                f"{', '.join(known) if known else 'none'}.",
                known_models=known,
            )
        return decision

    def versions_in_use(self) -> dict[str, set[int]]:
        """The active version of every served model."""
        return {name: {v} for name, v in self._active.items()}

    def targets(self) -> dict[str, int]:
        """Read the registry now: ``{model: version}`` that should be served."""
        targets = dict(self._fixed)
        if self._all:
            targets.update(self.registry.with_alias(self.alias))
        else:
            by_alias: dict[str, dict[str, int]] = {}
            for name, alias in self._followed.items():
                if alias not in by_alias:
                    by_alias[alias] = self.registry.with_alias(alias)
                version = by_alias[alias].get(name)
                if version is None and alias == self.alias:
                    # A bare name with no production alias: its latest version.
                    version = self.registry.get(name).version
                if version is not None:
                    targets[name] = version
        return targets

    async def refresh(self, ensure_ready: EnsureReady | None = None) -> dict[str, int]:
        """Poll the registry; warm every new target, then switch to it. Returns changes."""
        targets = await asyncio.to_thread(self.targets)
        changed: dict[str, int] = {}
        for name, version in targets.items():
            if self._active.get(name) == version:
                continue
            if ensure_ready is not None:
                await ensure_ready(name, version)
            changed[name] = version
        self._switch({**{n: v for n, v in self._active.items() if n in targets}, **changed})
        return changed

    def _switch(self, active: Mapping[str, int]) -> None:
        # Replace whole dicts so a concurrent route() sees either the old or the new map.
        self._active = dict(active)
        self._decisions = {n: RouteDecision(version=v) for n, v in active.items()}
