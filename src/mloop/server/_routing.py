"""The serving side of rollouts: route by the rollout table in the database, warm before switching.

Every replica polls the same database state (production aliases and active
rollouts) on the engine's reconcile loop, builds the rollout area's
``RoutingTable`` from it, loads and warms every version that table needs, and only
then swaps it in. Candidates and shadows are also gated per request by the pool's
readiness, so no request ever waits on a cold version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from mloop.errors import NotFound
from mloop.registry import parse_ref
from mloop.rollout import RolloutStore, RouteDecision, RoutingTable
from mloop.store import MetadataStore

__all__ = ["RolloutRouter", "rollout_refs"]

EnsureReady = Callable[[str, int], Awaitable[None]]
ReadyCheck = Callable[[str, int], bool]


def rollout_refs(refs: Iterable[str]) -> tuple[str, ...] | None:
    """Model names when every ref follows ``production`` (rollouts apply), else None."""
    names = []
    for ref in refs:
        parsed = parse_ref(ref)
        if parsed.version is not None or (parsed.alias or "production") != "production":
            return None
        names.append(parsed.name)
    return tuple(names)


class RolloutRouter:
    """A serving ``TrafficRouter`` over the rollout table (``models`` limits what is served)."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        is_ready: ReadyCheck | None = None,
        models: Iterable[str] = (),
    ) -> None:
        self._rollouts = RolloutStore(store)
        self._models = frozenset(models)
        self.is_ready: ReadyCheck = is_ready or (lambda _m, _v: True)
        self._table = RoutingTable({})

    def _ready(self, model: str, version: int) -> bool:
        return self.is_ready(model, version)

    def route(self, model: str, key: str | None) -> RouteDecision:
        """The version for one request (a dict lookup and at most one hash; no database)."""
        if self._models and model not in self._models:
            raise NotFound(
                f"Model {model!r} is not served here. Served models: "
                f"{', '.join(sorted(self._models))}.",
                known_models=sorted(self._models),
            )
        return self._table.route(model, key)

    def versions_in_use(self) -> dict[str, set[int]]:
        """Every version that must be loaded and warm now, per served model."""
        return self._table.versions_in_use()

    def table(self) -> RoutingTable:
        """Read rollout state now and build the table it implies (not yet active)."""
        production, states = self._rollouts.routing_snapshot()
        if self._models:
            production = {m: v for m, v in production.items() if m in self._models}
            states = [s for s in states if s.model in self._models]
        return RoutingTable(production, states, is_ready=self._ready)

    async def refresh(self, ensure_ready: EnsureReady | None = None) -> dict[str, int]:
        """Poll the database; warm what the new table needs, then switch to it."""
        table = await asyncio.to_thread(self.table)
        before = self._table.versions_in_use()
        after = table.versions_in_use()
        if ensure_ready is not None:
            for model, versions in after.items():
                for version in sorted(versions - before.get(model, set())):
                    await ensure_ready(model, version)
        self._table = table  # one reference assignment: route() sees old or new, never half
        return {m: max(v) for m, v in after.items() if v != before.get(m)}
