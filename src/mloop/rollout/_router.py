"""The request-path router: which version answers, which versions get a shadow copy.

``RoutingTable`` is precomputed from rollout state, so ``route`` is a dict lookup,
at most one 8-byte BLAKE2b hash of the sticky key, and an integer compare: no
database, no lock. ``DbRouter`` rebuilds the table from the database at most once
per ``ttl_s`` (in a background thread), so every replica routes by the same
state within about a second.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mloop._clock import Clock, SystemClock
from mloop.errors import NotFound
from mloop.rollout._state import RolloutState
from mloop.store import MetadataStore
from mloop.types import RouteDecision, TrafficRouter

__all__ = ["DbRouter", "RouteDecision", "RoutingTable", "TrafficRouter", "bucket"]

_log = logging.getLogger(__name__)
_BUCKETS = 10_000  # weights resolve to 0.01 %

ReadyCheck = Callable[[str, int], bool]


def _hasher(salt: str) -> Any:
    return hashlib.blake2b(digest_size=8, key=salt.encode()[:64])


def _bucket_with(hasher: Any, key: str) -> int:
    # Copying a keyed hasher skips re-processing the key block on every request.
    h = hasher.copy()
    h.update(key.encode())
    return int.from_bytes(h.digest(), "big") % _BUCKETS


def bucket(salt: str, key: str) -> int:
    """Stable bucket in [0, 10000) for ``key`` within one rollout (``salt`` = rollout id)."""
    return _bucket_with(_hasher(salt), key)


@dataclass(frozen=True)
class _Entry:
    stable: RouteDecision
    stable_mirrored: RouteDecision  # stable plus shadow copy (shadow rollouts only)
    shadow_version: int | None
    candidate: RouteDecision | None
    candidate_version: int | None
    threshold: int  # keys hashing below this bucket go to the candidate
    hasher: Any  # BLAKE2b keyed with the rollout id: assignment differs per rollout
    sticky_only: bool  # A/B: requests without a key never join an arm


def _entry(state: RolloutState) -> _Entry:
    ab = state.strategy == "ab"
    stable = RouteDecision(state.stable, (), "a" if ab and state.candidate_serves else "stable")
    mirrored, shadow = stable, None
    if state.strategy == "shadow" and state.phase == "running":
        mirrored, shadow = (
            RouteDecision(state.stable, (state.candidate,), "stable"),
            state.candidate,
        )
    # A paused rollout keeps its current split: pausing freezes, it does not roll back.
    serves = state.candidate_serves
    candidate = RouteDecision(state.candidate, (), "b" if ab else "candidate") if serves else None
    threshold = round(state.weight / 100 * _BUCKETS) if serves else 0
    return _Entry(
        stable, mirrored, shadow, candidate, state.candidate, threshold, _hasher(state.id), ab
    )


class RoutingTable:
    """An immutable, precomputed routing table for every model."""

    def __init__(
        self,
        production: Mapping[str, int],
        rollouts: Iterable[RolloutState] = (),
        *,
        is_ready: ReadyCheck | None = None,
    ) -> None:
        self._is_ready = is_ready
        self._entries: dict[str, _Entry] = {
            model: _Entry(RouteDecision(v), RouteDecision(v), None, None, None, 0, None, False)
            for model, v in production.items()
        }
        self._in_use: dict[str, set[int]] = {m: {v} for m, v in production.items()}
        for state in rollouts:
            if not state.active:
                continue
            self._entries[state.model] = _entry(state)
            self._in_use[state.model] = {state.stable, state.candidate}

    def route(self, model: str, key: str | None) -> RouteDecision:
        """Pick the version for one request; sticky when ``key`` is given."""
        entry = self._entries.get(model)
        if entry is None:
            served = sorted(self._entries)
            known = f"Served models: {', '.join(served)}. " if served else "No model is served. "
            raise NotFound(
                f"Model {model!r} is not served: it has no production version and no active "
                f"rollout. {known}To serve it: mloop alias set {model} production <version>",
                known_models=served,
            )
        ready = self._is_ready
        version = entry.candidate_version
        if entry.candidate is None or version is None:
            shadow = entry.shadow_version
            if shadow is not None and (ready is None or ready(model, shadow)):
                return entry.stable_mirrored
            return entry.stable
        if key is None:
            if entry.sticky_only:
                # No key, no arm: answering from stable keeps the A/B samples clean.
                return RouteDecision(entry.stable.version, (), "stable")
            point = random.randrange(_BUCKETS)
        else:
            point = _bucket_with(entry.hasher, key)
        if point < entry.threshold and (ready is None or ready(model, version)):
            return entry.candidate
        return entry.stable

    def versions_in_use(self) -> dict[str, set[int]]:
        """Every version that must be loaded and warm, per model."""
        return {m: set(v) for m, v in self._in_use.items()}


class DbRouter:
    """A ``TrafficRouter`` that follows rollout state in the metadata database.

    ``is_ready(model, version)`` is serving's warm-up check: a version that is not
    ready never answers and never gets a shadow copy; stable answers instead.
    """

    def __init__(
        self,
        store: MetadataStore,
        *,
        clock: Clock | None = None,
        ttl_s: float = 1.0,
        is_ready: ReadyCheck | None = None,
        auto_refresh: bool = True,
    ) -> None:
        from mloop.rollout._store import RolloutStore

        self._rollouts = RolloutStore(store)
        self._clock = clock or SystemClock()
        self._ttl = ttl_s
        self._is_ready = is_ready
        self._auto = auto_refresh
        self._table: RoutingTable | None = None
        self._loaded_at = float("-inf")
        self._refreshing = threading.Lock()

    def refresh(self) -> RoutingTable:
        """Read state now and swap in a new table (one read transaction)."""
        production, states = self._rollouts.routing_snapshot()
        table = RoutingTable(production, states, is_ready=self._is_ready)
        self._table = table  # one reference assignment: readers see old or new, never half
        self._loaded_at = self._clock.monotonic()
        return table

    def _current(self) -> RoutingTable:
        table = self._table
        if table is None:
            return self.refresh()
        stale = self._clock.monotonic() - self._loaded_at >= self._ttl
        if self._auto and stale and self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._background_refresh, daemon=True).start()
        return table

    def _background_refresh(self) -> None:
        try:
            self.refresh()
        except Exception:  # the old table keeps serving; a later request retries
            _log.warning("rollout routing table refresh failed", exc_info=True)
        finally:
            self._refreshing.release()

    def route(self, model: str, key: str | None) -> RouteDecision:
        """Pick the version for one request (no database access)."""
        return self._current().route(model, key)

    def versions_in_use(self) -> dict[str, set[int]]:
        """Every version that must be loaded and warm, per model."""
        return self._current().versions_in_use()
