"""The serving engine: router → model pool → cache → micro-batcher, plus shadows and reconciling.

Everything here runs on the event loop except model loading (loader threads) and
predict calls (the batchers' worker threads). Nothing on the request path touches
the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import pickle
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mloop.config import Settings
from mloop.errors import DeadlineExceeded, ModelFailed
from mloop.flavors import Predictions
from mloop.serving._batcher import Batcher, Priority
from mloop.serving._cache import LocalCache, PredictionCache, RedisCache, cache_key
from mloop.serving._metrics import ServingMetrics
from mloop.serving._pool import ModelPool
from mloop.serving._routing import AliasRouter, RouteDecision, TrafficRouter
from mloop.serving._runtime import Job, run_batch, uses_matrix, warmup_job
from mloop.serving._stats import ServingStats

if TYPE_CHECKING:
    from mloop.registry import ModelVersion, Predictor, Registry

__all__ = ["Engine", "Served"]

log = logging.getLogger("mloop.serving")

_TAG = "mloop.serving."


@dataclass
class Served:
    """A loaded, warmed model version and the batcher in front of it."""

    predictor: Predictor
    batcher: Batcher[Job, Predictions]

    @property
    def version(self) -> ModelVersion:
        """The registry's record of this version."""
        return self.predictor.version


def _size_mb(served: Served) -> float:
    try:
        return len(pickle.dumps(served.predictor.model, protocol=5)) / 1e6
    except Exception:  # unpicklable models still count: assume a small one
        return 1.0


def _agreement(answer: Predictions, shadow: Predictions) -> int:
    if answer.task == "regression" and answer.values is not None and shadow.values is not None:
        return int(np.isclose(answer.values, shadow.values, rtol=1e-3).sum())
    if answer.labels is None or shadow.labels is None:
        return 0
    return int((np.asarray(answer.labels) == np.asarray(shadow.labels)).sum())


class Engine:
    """Answers predictions for every served model; owns pool, batchers, cache and stats."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        router: TrafficRouter | None = None,
        refs: Iterable[str] = (),
        pinned: Iterable[str] = (),
        metrics: ServingMetrics | None = None,
        stats: ServingStats | None = None,
    ) -> None:
        cfg = settings.serving
        self.settings = settings
        self.registry = registry
        self.router: TrafficRouter = router or AliasRouter(registry, refs)
        self.metrics = metrics or ServingMetrics()
        self.stats = stats or ServingStats()
        self._predict_pool = ThreadPoolExecutor(max(1, cfg.predict_threads), "mloop-predict")
        self._load_pool = ThreadPoolExecutor(2, "mloop-load")
        self.pool: ModelPool[Served] = ModelPool(
            self._load,
            max_models=cfg.pool_max_models,
            memory_mb=cfg.pool_memory_mb,
            sizer=_size_mb,
            executor=self._load_pool,
            on_evict=self._evicted,
        )
        self._pinned_refs = tuple(pinned)
        self.cache: PredictionCache | None = None
        if cfg.cache_size > 0 and cfg.cache_ttl_s > 0:
            # Replicas of one deployment share entries; another registry never does
            # (model names and versions only mean something within one registry).
            scope = hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]
            self.cache = (
                RedisCache(settings.redis_url, cfg.cache_ttl_s, prefix=f"mloop:pred:{scope}:")
                if settings.redis_url
                else LocalCache(cfg.cache_size, cfg.cache_ttl_s)
            )
        self.ready = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None

    # --- loading -------------------------------------------------------------------

    def _load(self, name: str, version: int) -> Served:
        """Load, warm and wrap one version (runs in a loader thread)."""
        cfg = self.settings.serving
        mv = self.registry.get(f"{name}:{version}")
        predictor = self.registry.load(mv)
        matrix = uses_matrix(predictor)
        job = warmup_job(predictor)
        if job is not None:
            # Warm before first traffic; a version that cannot predict its own
            # contract's sample never takes a request.
            result = run_batch(predictor, [job], matrix=matrix)[0]
            if isinstance(result, BaseException):
                raise result
        tags = mv.tags
        batch_rows = int(tags.get(_TAG + "max_batch_size", cfg.max_batch_size))
        delay_ms = float(tags.get(_TAG + "max_batch_delay_ms", cfg.max_batch_delay_ms))
        batch_hist = self.metrics.batch_size.labels(name)

        def run(jobs: Sequence[Job]) -> Sequence[Predictions | BaseException]:
            return run_batch(predictor, jobs, matrix=matrix)

        batcher: Batcher[Job, Predictions] = Batcher(
            run,
            max_batch_size=batch_rows,
            max_delay_ms=delay_ms,
            queue_limit=cfg.queue_limit,
            executor=self._predict_pool,
            on_batch=lambda rows, _s: batch_hist.observe(rows),
            name=f"{name}:{version}",
            inline=cfg.predict_threads <= 0,
            lone_inline_rows=cfg.lone_inline_rows,
        )
        if tags.get(_TAG + "pin", "").lower() == "true":
            self.pool.pin(name, version)
        self.metrics.pool_loads.inc()
        log.info("loaded model", extra={"model": name, "version": version})
        return Served(predictor, batcher)

    def _evicted(self, key: tuple[str, int], _value: Served) -> None:
        self.metrics.pool_evictions.inc()
        log.info("evicted model", extra={"model": key[0], "version": key[1]})

    async def ensure_ready(self, name: str, version: int, *, initial: bool = False) -> None:
        """Load and warm ``version`` if it will take traffic soon and memory allows."""
        resident = {k for k in self.pool.resident() if k[0] == name}
        room = len(self.pool.resident()) < self.pool.max_models
        if resident or (initial and room) or (name, version) in self._pins():
            await self.pool.get(name, version)

    def _pins(self) -> set[tuple[str, int]]:
        pins: set[tuple[str, int]] = set()
        for ref in self._pinned_refs:
            mv = self.registry.get(ref)
            pins.add((mv.name, mv.version))
        return pins

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Resolve what to serve, warm it, then poll for alias moves."""
        for name, version in await asyncio.to_thread(self._pins):
            self.pool.pin(name, version)
        await self.reconcile(initial=True)
        self.ready = True
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def reconcile(self, *, initial: bool = False) -> None:
        """Bring loaded versions in line with the router (the only place that switches)."""

        async def ready(name: str, version: int) -> None:
            await self.ensure_ready(name, version, initial=initial)

        refresh = getattr(self.router, "refresh", None)
        before = self.router.versions_in_use()
        if refresh is not None:
            await refresh(ready)
        else:
            for name, versions in before.items():
                for version in versions:
                    await ready(name, version)
        after = self.router.versions_in_use()
        for name, versions in before.items():
            for version in versions - after.get(name, set()):
                # Requests in flight hold a lease; evict() leaves a busy version alone
                # and LRU removes it later.
                self.pool.evict(name, version)

    async def _poll(self) -> None:
        interval = max(0.05, self.settings.serving.alias_poll_s)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reconcile()
                self.unload_idle()
            except Exception:
                log.exception("reconcile failed; serving continues with the current versions")

    def unload_idle(self) -> list[tuple[str, int]]:
        """Unload versions idle for ``serving.idle_unload_s`` (off at 0), except during a rollout."""
        idle_s = self.settings.serving.idle_unload_s
        if idle_s <= 0:
            return []
        in_use = self.router.versions_in_use()
        # A model with two versions in use is in a rollout: its guards need both warm.
        rolling = {name for name, versions in in_use.items() if len(versions) > 1}
        gone = self.pool.evict_idle(idle_s, keep=lambda key: key[0] in rolling)
        for name, version in gone:
            log.info("unloaded idle model", extra={"model": name, "version": version})
        return gone

    async def stop(self) -> None:
        """Stop polling and background work; release threads and connections."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for task in list(self._tasks):
            task.cancel()
        closer = getattr(self.cache, "aclose", None)
        if closer is not None:
            await closer()
        self._predict_pool.shutdown(wait=False, cancel_futures=True)
        self._load_pool.shutdown(wait=False, cancel_futures=True)

    # --- predicting ----------------------------------------------------------------

    def route(self, name: str, key: str | None, version: int | None) -> RouteDecision:
        """The decision for a request; an explicit version must belong to a served model."""
        decision = self.router.route(name, key)
        return decision if version is None else RouteDecision(version=version, arm="pinned")

    async def predict(
        self,
        name: str,
        version: int,
        job: Job,
        *,
        priority: Priority = "interactive",
        cached: bool = True,
    ) -> tuple[Predictions, ModelVersion, bool]:
        """Predictions for ``job`` from ``name:version``, whether they came from the cache.

        ``cached=False`` computes every time (a rollout's candidate: its guard must
        see each request's real outcome, not an earlier success replayed).
        """
        async with self.pool.lease(name, version) as served:
            batcher = served.batcher

            async def compute() -> Predictions:
                return await batcher.submit(job, job.rows, priority)

            if self.cache is None or not cached:
                return await compute(), served.version, False
            key = cache_key(name, version, job.data)
            try:
                predictions, hit = await self.cache.get_or_compute(key, compute)
            except asyncio.CancelledError:
                raise
            self.metrics.cache.labels("hit" if hit else "miss").inc()
            return predictions, served.version, hit

    def shadow(self, name: str, decision: RouteDecision, job: Job, answer: Predictions) -> None:
        """Send a copy of ``job`` to every shadow version, off the request path."""
        for version in decision.shadow:
            task = asyncio.get_running_loop().create_task(
                self._shadow_one(name, version, job, answer)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _shadow_one(self, name: str, version: int, job: Job, answer: Predictions) -> None:
        started = time.perf_counter()
        try:
            async with self.pool.lease(name, version) as served:
                result = await served.batcher.submit(job, job.rows, "batch")
        except Exception as exc:  # a failing shadow must never touch the answer
            self.stats.observe(name, version, 0.0, ok=False)
            if not isinstance(exc, ModelFailed):  # the model's failures are logged already
                log.warning("shadow prediction failed", extra={"model": name, "error": str(exc)})
            return
        # Successes count too, or a shadow's error rate would be its failures over themselves.
        self.stats.observe(name, version, (time.perf_counter() - started) * 1000)
        self.stats.observe_shadow(name, version, _agreement(answer, result), len(answer))

    def queue_depths(self) -> dict[str, int]:
        """Requests waiting per served version (``name:version``)."""
        out: dict[str, int] = {}
        for name, version in self.pool.resident():
            served = self.pool.peek(name, version)
            if served is not None:
                out[f"{name}:{version}"] = served.batcher.depth
        return out


def deadline_error(timeout_s: float) -> DeadlineExceeded:
    """The 504 for a request that ran past its time budget."""
    return DeadlineExceeded(
        f"The prediction did not finish within {timeout_s:g} s; the server is busy or the "
        "model is slow. Retry, send fewer rows, or raise X-Mloop-Timeout-Ms.",
        retry_after=1.0,
        timeout_s=timeout_s,
    )
