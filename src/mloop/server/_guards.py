"""What the rollout controller sees from a running server: fleet traffic plus monitoring.

One store of traffic statistics: ``GuardStats`` is serving's ``ServingStats`` (the
last minute, for ``/models/{name}/stats``) that also tallies every request and
shadow pair in the rollout area's ``TrafficRecorder``, which the server flushes
about once a second into the shared ``TrafficCounts`` (the database ledger, or
``MemoryTraffic`` in one process). ``LiveObservations`` is the
``ObservationSource``: requests, errors, latency and shadow agreement of every
process since a step started, from those counts; readiness from the model pool; and prediction drift, realized and
estimated accuracy from the monitor's read of the prediction log (refreshed in a
background thread and cached for a few seconds, since reading the log is far dearer
than a controller tick).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mloop._clock import Clock, SystemClock
from mloop.rollout import Totals, TrafficCounts, TrafficRecorder, VersionStats
from mloop.serving import ServingStats

if TYPE_CHECKING:
    from mloop.monitor.live import Monitor

__all__ = ["GuardStats", "LiveObservations"]

_log = logging.getLogger("mloop.serving")

ReadyCheck = Callable[[str, int], bool]


class GuardStats(ServingStats):
    """``ServingStats`` that also tallies every request and shadow pair for the guards."""

    def __init__(
        self, recorder: TrafficRecorder, window_s: float = 60.0, *, clock: Clock | None = None
    ) -> None:
        super().__init__(window_s, clock=clock)
        self.recorder = recorder

    def observe(self, model: str, version: int, latency_ms: float, ok: bool = True) -> None:
        """Record one request in the window and in the tallies."""
        super().observe(model, version, latency_ms, ok)
        self.recorder.record(model, version, latency_ms, ok)

    def observe_shadow(self, model: str, version: int, agreed: int, compared: int) -> None:
        """Record shadow rows of ``version`` in the window and in the tallies."""
        super().observe_shadow(model, version, agreed, compared)
        self.recorder.record_shadow(model, version, agreed, compared)


class LiveObservations:
    """The controller's ``ObservationSource`` for one server process."""

    def __init__(
        self,
        traffic: TrafficCounts,
        *,
        is_ready: ReadyCheck,
        monitor: Monitor | None = None,
        clock: Clock | None = None,
        monitor_ttl_s: float = 10.0,
    ) -> None:
        self.traffic = traffic
        self.is_ready = is_ready
        self.monitor = monitor
        self.clock = clock or SystemClock()
        self.monitor_ttl_s = monitor_ttl_s
        self._cache: dict[tuple[str, int, float], tuple[float, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()
        self._pending: set[tuple[str, tuple[int, ...], float]] = set()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="mloop-guards")

    def observe(self, model: str, versions: Sequence[int], since: float) -> dict[int, VersionStats]:
        """Stats per version over the seconds from ``since`` (epoch seconds) on."""
        # Every worker's and replica's requests and shadow pairs, not only this one's.
        fleet = self.traffic.observe(model, versions, since)
        guards = self._monitored(model, versions, since)
        out = {}
        for v in versions:
            totals = fleet.get(v, Totals())
            extra: dict[str, Any] = {
                "ready": self.is_ready(model, v),
                "requests": totals.requests,
                "errors": totals.errors,
                "p50_ms": totals.p50_ms,
                "p99_ms": totals.p99_ms,
                "shadow_pairs": totals.shadow_pairs,
                "agreement": totals.agreement,
            }
            found = guards.get(v)
            if found:
                extra["prediction_drift"] = found.get("prediction_drift")
                extra["estimated_accuracy"] = found.get("estimated_accuracy")
                # Realized accuracy needs labels; without them it stays unknown.
                if found.get("labels"):
                    extra["labels"] = int(found["labels"])
                    extra["accuracy"] = found.get("accuracy")
            out[v] = dataclasses.replace(VersionStats(), **extra)
        return out

    def _monitored(
        self, model: str, versions: Sequence[int], since: float
    ) -> dict[int, Mapping[str, Any]]:
        """Cached monitor numbers; stale or missing ones are refreshed in the background.

        The controller never waits on a log read: what is not measured yet is unknown
        (guards that need it hold the rollout), and arrives a tick or two later.
        """
        if self.monitor is None:
            return {}
        now = self.clock.monotonic()
        found: dict[int, Mapping[str, Any]] = {}
        stale = []
        with self._lock:
            for v in versions:
                hit = self._cache.get((model, v, since))
                if hit is not None:
                    found[v] = hit[1]
                if hit is None or now - hit[0] >= self.monitor_ttl_s:
                    stale.append(v)
            key = (model, tuple(stale), since)
            if stale and key not in self._pending:
                self._pending.add(key)
                self._reader.submit(self._refresh, model, stale, since)
        return found

    def _refresh(self, model: str, versions: list[int], since: float) -> None:
        try:
            windows = self.monitor.observe_versions(model, versions, since=since)  # type: ignore[union-attr]
        except Exception:  # a log read failure leaves those guards unknown, not the rollout dead
            _log.warning("monitor read for rollout guards failed", exc_info=True)
            windows = {}
        with self._lock:
            self._pending.discard((model, tuple(versions), since))
            if len(self._cache) > 1024:
                self._cache.clear()
            at = self.clock.monotonic()
            for v, window in windows.items():
                self._cache[(model, v, since)] = (at, window.guard_metrics())

    def close(self) -> None:
        """Stop the background reader."""
        self._reader.shutdown(wait=False, cancel_futures=True)
