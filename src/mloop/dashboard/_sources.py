"""Where the dashboard reads from: the parts of a running server, passed in by the assembly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.dashboard._recent import Recent

if TYPE_CHECKING:
    from mloop.dashboard._gateway_views import GatewayFeed
    from mloop.monitor.live import Alerter, Monitor
    from mloop.registry import Registry
    from mloop.rollout import ObservationSource, TrafficCounts

__all__ = ["Sources", "TrafficSnapshot"]

TrafficSnapshot = Callable[[str], Mapping[int, Mapping[str, Any]]]
"""``model -> {version: {requests, errors, error_rate, p50_ms, p99_ms, shadow_agreement}}``
over the serving stats window (serving's ``ServingStats.snapshot``)."""


@dataclass(frozen=True)
class Sources:
    """The live parts every page reads; nothing here computes a number of its own."""

    registry: Registry
    monitor: Monitor
    alerter: Alerter | None = None
    observations: ObservationSource | None = None
    traffic: TrafficSnapshot | None = None
    traffic_window_s: float = 60.0
    # Every process's traffic tallies (the rollout ledger): latency per interval.
    traffic_counts: TrafficCounts | None = None
    # Monitor reads (drift of the last hour, Monitor pages) kept this long for every reader.
    recent: Recent = field(default_factory=Recent)
    # The gateway the Gateway screen reads (``[dashboard] gateway_url``), if any.
    gateway: GatewayFeed | None = None
