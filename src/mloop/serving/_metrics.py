"""Prometheus metrics of one app, in its own ``CollectorRegistry``.

With several worker processes (``mloop serve --workers N``) the server sets
``PROMETHEUS_MULTIPROC_DIR`` before it starts them, so prometheus-client keeps every
value in a memory-mapped file per process, and ``/metrics`` on any worker renders the
sum over all of them (gauges: the sum over live workers). Gauges are sampled by each
worker on its own timer (``Engine.sample_gauges``), not only by the one that answers
the scrape.
"""

from __future__ import annotations

import os
import resource
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServingMetrics", "multiprocess_dir"]

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)


def _rss_bytes() -> float:
    try:
        with open("/proc/self/statm") as f:
            return float(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: peak RSS is the best cheap figure
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def multiprocess_dir() -> str | None:
    """The folder of multiprocess metrics, if this process runs in that mode.

    prometheus-client chose its value store from ``PROMETHEUS_MULTIPROC_DIR`` when it was
    imported; a process that imported it before the variable was set keeps its values in
    memory, and so must render them from memory.
    """
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServingMetrics:
    """Counters, histograms and gauges the server exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir()
        r = self.registry
        self.requests = Counter(
            "mloop_requests",
            "Prediction requests",
            ["model", "version", "api", "status"],
            registry=r,
        )
        self.errors = Counter(
            "mloop_errors", "Errors by type and code", ["type", "code"], registry=r
        )
        self.latency = Histogram(
            "mloop_request_latency_seconds",
            "Prediction latency",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "mloop_batch_rows",
            "Rows per predict call",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "mloop_queue_depth",
            "Requests queued per model",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.cache = Counter("mloop_cache", "Prediction cache lookups", ["result"], registry=r)
        self.pool_loads = Counter("mloop_pool_loads", "Model versions loaded", registry=r)
        self.pool_evictions = Counter("mloop_pool_evictions", "Model versions evicted", registry=r)
        self.pool_resident = Gauge(
            "mloop_pool_resident_models",
            "Model versions in memory",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_lookups = Gauge(
            "mloop_pool_lookups",
            "Model pool lookups since start",
            ["result"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_memory = Gauge(
            "mloop_pool_memory_mb",
            "Estimated memory of loaded models",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rss = Gauge(
            "mloop_resident_memory_bytes",
            "Resident memory of the serving processes",
            registry=r,
            multiprocess_mode="livesum",
        )
        if self.multiprocess_dir is None:
            self.rss.set_function(_rss_bytes)
        self._children: dict[tuple[str, ...], Any] = {}

    def observe(self, model: str, version: int, api: str, status: int, seconds: float) -> None:
        """Count one request and its latency (label children cached: this is the hot path)."""
        key = (model, str(version), api, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(*key)
        child.inc()
        lkey = (model, str(version))
        hist = self._children.get(lkey)
        if hist is None:
            hist = self._children[lkey] = self.latency.labels(*lkey)
        hist.observe(seconds)

    def sample_rss(self) -> None:
        """Record this process's resident memory (multiprocess mode has no callback gauges)."""
        if self.multiprocess_dir is not None:
            self.rss.set(_rss_bytes())

    def render(self) -> bytes:
        """The text exposition format (summed over worker processes in multiprocess mode)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged)
