"""What the controller sees: per-version statistics from serving and monitoring.

``ObservationSource`` is the seam. Serving provides live request statistics
(requests, errors, latency, shadow pairs, readiness); monitoring provides
prediction drift, realized accuracy from feedback and estimated accuracy.
``InMemoryObservations`` implements it for one process and for tests.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mloop._clock import Clock, SystemClock
from mloop._sequential import MetricSummary

__all__ = [
    "InMemoryObservations",
    "ObservationSource",
    "Observations",
    "VersionStats",
]


@dataclass(frozen=True)
class VersionStats:
    """Everything known about one model version since a point in time."""

    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    prediction_drift: float | None = None
    labels: int = 0  # feedback labels joined to this version's predictions
    accuracy: float | None = None  # realized, from those labels
    estimated_accuracy: float | None = None
    shadow_pairs: int = 0  # for a shadow version: paired predictions recorded
    agreement: float | None = None
    mean_score_diff: float | None = None  # mean |p_candidate - p_stable| on the predicted class
    latency_diff_ms: float | None = None  # mean candidate latency minus stable latency
    outcomes: Mapping[str, MetricSummary] = field(default_factory=dict)
    ready: bool = True  # loaded and warm where it must serve

    @property
    def error_rate(self) -> float | None:
        """Failed share of requests, or None before the first request."""
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready snapshot (for audit rows)."""
        data: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "requests",
                "errors",
                "p50_ms",
                "p99_ms",
                "prediction_drift",
                "labels",
                "accuracy",
                "estimated_accuracy",
                "shadow_pairs",
                "agreement",
                "mean_score_diff",
                "latency_diff_ms",
                "ready",
            )
        }
        data["error_rate"] = self.error_rate
        data["outcomes"] = {
            k: {"n": m.n, "mean": m.mean, "variance": m.variance} for k, m in self.outcomes.items()
        }
        return {k: _json_safe(v) for k, v in data.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Observations:
    """Input to ``next_step``: the time of evaluation and stats for stable and candidate."""

    at: float
    stable: VersionStats
    candidate: VersionStats

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready snapshot."""
        return {
            "at": self.at,
            "stable": self.stable.to_dict(),
            "candidate": self.candidate.to_dict(),
        }


@runtime_checkable
class ObservationSource(Protocol):
    """Where the controller reads guard observations (serving stats + monitoring)."""

    def observe(
        self, model: str, versions: Sequence[int], since: float
    ) -> Mapping[int, VersionStats]:
        """Stats per version over events at or after ``since`` (epoch seconds)."""
        ...


@dataclass
class _Request:
    at: float
    latency_ms: float
    error: bool


@dataclass
class _Series:
    requests: deque[_Request] = field(default_factory=lambda: deque(maxlen=200_000))
    labels: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=200_000))
    shadow: deque[tuple[float, bool, float, float]] = field(
        default_factory=lambda: deque(maxlen=200_000)
    )
    outcomes: dict[str, deque[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(lambda: deque(maxlen=200_000))
    )
    drift: float | None = None
    estimated_accuracy: float | None = None
    ready: bool = False


class InMemoryObservations:
    """A thread-safe ``ObservationSource`` fed by calls from serving and monitoring.

    Serving calls ``record_request`` after each answer, ``record_shadow`` for each
    shadow pair and ``mark_ready`` once a version is warm; monitoring calls
    ``record_label`` (feedback joined to a prediction), ``record_outcome`` and
    ``set_drift`` / ``set_estimated_accuracy``.
    """

    def __init__(self, clock: Clock | None = None, *, assume_ready: bool = False) -> None:
        self._clock = clock or SystemClock()
        self._assume_ready = assume_ready
        self._lock = threading.Lock()
        self._series: dict[tuple[str, int], _Series] = defaultdict(_Series)

    def _at(self, at: float | None) -> float:
        return self._clock.now() if at is None else at

    def record_request(
        self,
        model: str,
        version: int,
        latency_ms: float,
        *,
        error: bool = False,
        at: float | None = None,
    ) -> None:
        """One answered (or failed) request of ``model:version``."""
        with self._lock:
            self._series[model, version].requests.append(_Request(self._at(at), latency_ms, error))

    def record_label(
        self, model: str, version: int, correct: bool, *, at: float | None = None
    ) -> None:
        """A feedback label joined to one prediction: was it right?"""
        with self._lock:
            self._series[model, version].labels.append((self._at(at), bool(correct)))

    def record_outcome(
        self, model: str, version: int, metric: str, value: float, *, at: float | None = None
    ) -> None:
        """One business outcome (e.g. ``conversion`` = 1.0) for a request served by ``version``."""
        with self._lock:
            self._series[model, version].outcomes[metric].append((self._at(at), float(value)))

    def record_shadow(
        self,
        model: str,
        shadow_version: int,
        *,
        agree: bool,
        score_diff: float = 0.0,
        latency_diff_ms: float = 0.0,
        at: float | None = None,
    ) -> None:
        """One shadow pair: did the shadow version agree with the version that answered?"""
        with self._lock:
            self._series[model, shadow_version].shadow.append(
                (self._at(at), bool(agree), float(score_diff), float(latency_diff_ms))
            )

    def set_drift(self, model: str, version: int, value: float | None) -> None:
        """Latest prediction-drift score of ``version`` (from monitoring)."""
        with self._lock:
            self._series[model, version].drift = value

    def set_estimated_accuracy(self, model: str, version: int, value: float | None) -> None:
        """Latest label-free accuracy estimate of ``version`` (from monitoring)."""
        with self._lock:
            self._series[model, version].estimated_accuracy = value

    def mark_ready(self, model: str, version: int, ready: bool = True) -> None:
        """Serving reports ``version`` loaded and warm (or not)."""
        with self._lock:
            self._series[model, version].ready = ready

    def is_ready(self, model: str, version: int) -> bool:
        """True when ``version`` was marked ready (or readiness is assumed)."""
        if self._assume_ready:
            return True
        with self._lock:
            series = self._series.get((model, version))
            return bool(series and series.ready)

    def observe(self, model: str, versions: Sequence[int], since: float) -> dict[int, VersionStats]:
        """Stats per version over events at or after ``since``."""
        with self._lock:
            return {v: self._stats(model, v, since) for v in versions}

    def _stats(self, model: str, version: int, since: float) -> VersionStats:
        series = self._series.get((model, version)) or _Series()
        reqs = [r for r in series.requests if r.at >= since]
        ok_latency = np.asarray([r.latency_ms for r in reqs if not r.error], dtype=float)
        labels = [c for t, c in series.labels if t >= since]
        pairs = [p for p in series.shadow if p[0] >= since]
        outcomes = {
            name: MetricSummary.of([v for t, v in values if t >= since])
            for name, values in series.outcomes.items()
        }
        return VersionStats(
            requests=len(reqs),
            errors=sum(r.error for r in reqs),
            p50_ms=float(np.percentile(ok_latency, 50)) if len(ok_latency) else None,
            p99_ms=float(np.percentile(ok_latency, 99)) if len(ok_latency) else None,
            prediction_drift=series.drift,
            labels=len(labels),
            accuracy=sum(labels) / len(labels) if labels else None,
            estimated_accuracy=series.estimated_accuracy,
            shadow_pairs=len(pairs),
            agreement=sum(p[1] for p in pairs) / len(pairs) if pairs else None,
            mean_score_diff=float(np.mean([p[2] for p in pairs])) if pairs else None,
            latency_diff_ms=float(np.mean([p[3] for p in pairs])) if pairs else None,
            outcomes=outcomes,
            ready=self._assume_ready or series.ready,
        )
