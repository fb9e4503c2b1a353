"""Live per-(model, version) statistics over a sliding window, for rollout guards.

Observations land in one-second buckets; a snapshot merges the buckets inside
the window. Shadow comparisons count how often a shadow version agreed with the
version that answered.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mloop._clock import Clock, SystemClock

__all__ = ["ServingStats"]


@dataclass
class _Bucket:
    second: int
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    shadow_pairs: int = 0
    shadow_agree: int = 0


class ServingStats:
    """Requests, errors, latency percentiles and shadow agreement per model version."""

    def __init__(self, window_s: float = 60.0, *, clock: Clock | None = None) -> None:
        self.window_s = window_s
        self.clock = clock or SystemClock()
        self._series: dict[tuple[str, int], deque[_Bucket]] = {}
        self._lock = threading.Lock()

    def _bucket(self, model: str, version: int) -> _Bucket:
        second = int(self.clock.monotonic())
        series = self._series.setdefault((model, version), deque())
        if not series or series[-1].second != second:
            series.append(_Bucket(second))
            horizon = second - self.window_s
            while series and series[0].second < horizon:
                series.popleft()
        return series[-1]

    def observe(self, model: str, version: int, latency_ms: float, ok: bool = True) -> None:
        """Record one request."""
        with self._lock:
            b = self._bucket(model, version)
            b.requests += 1
            if ok:
                b.latencies.append(latency_ms)
            else:
                b.errors += 1

    def observe_shadow(self, model: str, version: int, agreed: int, compared: int) -> None:
        """Record how many of ``compared`` shadow rows of ``version`` agreed with the answer."""
        with self._lock:
            b = self._bucket(model, version)
            b.shadow_pairs += compared
            b.shadow_agree += agreed

    def snapshot(self, model: str) -> dict[int, dict[str, Any]]:
        """``{version: {requests, errors, error_rate, p50_ms, p99_ms, shadow_*}}`` over the window."""
        horizon = int(self.clock.monotonic()) - self.window_s
        out: dict[int, dict[str, Any]] = {}
        with self._lock:
            items = [(k, list(v)) for k, v in self._series.items() if k[0] == model]
        for (_, version), buckets in items:
            live = [b for b in buckets if b.second >= horizon]
            requests = sum(b.requests for b in live)
            errors = sum(b.errors for b in live)
            lat = np.fromiter((x for b in live for x in b.latencies), dtype=float)
            pairs = sum(b.shadow_pairs for b in live)
            agree = sum(b.shadow_agree for b in live)
            out[version] = {
                "requests": requests,
                "errors": errors,
                "error_rate": errors / requests if requests else 0.0,
                "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
                "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
                "shadow_compared": pairs,
                "shadow_agreement": agree / pairs if pairs else None,
            }
        return out
