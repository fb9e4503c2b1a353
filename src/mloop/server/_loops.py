"""The server's background loops: alert evaluation, retraining triggers, and their leader lease.

Every replica runs the loops; a lease row (the rollout area's lease table, one
lease name per loop) makes exactly one replica evaluate alerts and tick triggers,
so a webhook fires once and an alert storm starts one run, however many replicas
serve. Alert windows are evaluated a little after they close (``grace_s``), so
records still in a spool writer's buffer at the boundary are counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mloop._clock import Clock
from mloop.config import Settings
from mloop.rollout import RolloutStore

if TYPE_CHECKING:
    from mloop.monitor.live import Alerter, AlertEvent, Monitor
    from mloop.pipelines import Runner, TriggerService
    from mloop.registry import Registry

__all__ = ["Lease", "LoopRunner", "alert_tick_s", "build_runner", "build_triggers"]

_log = logging.getLogger("mloop.serving")


class Lease:
    """A named database lease held by this process while it renews it."""

    def __init__(self, registry: Registry, name: str, clock: Clock, *, ttl_s: float = 30.0) -> None:
        self.store = RolloutStore(registry.store)
        self.name = name
        self.clock = clock
        self.ttl_s = ttl_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def held(self) -> bool:
        """Take or renew the lease; True when this process may act."""
        return self.store.acquire_lease(self.name, self.holder, self.clock.now(), self.ttl_s)

    def release(self) -> None:
        """Give the lease up so another replica takes over at once."""
        self.store.release_lease(self.name, self.holder)


def alert_tick_s(windows: Sequence[float]) -> float:
    """How often to look for closed alert windows: a tenth of the shortest, 0.5-30 s."""
    return min(30.0, max(0.5, min(windows, default=300.0) / 10))


class LoopRunner:
    """Runs ``step`` every ``every_s`` while this process holds ``lease`` (or always, without
    one); never dies of errors."""

    def __init__(
        self,
        name: str,
        step: Callable[[], Any],
        every_s: float,
        lease: Lease | None,
        clock: Clock,
    ) -> None:
        self.name = name
        self.step = step
        self.every_s = every_s
        self.lease = lease
        self.clock = clock
        self.runs = 0

    def _once(self) -> None:
        if self.lease is None or self.lease.held():
            self.step()
            self.runs += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until ``stop`` is set; release the lease on the way out."""
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(self._once)
                except Exception:  # a database or sink hiccup must not end the loop
                    _log.warning("%s loop step failed", self.name, exc_info=True)
                waits = {
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self.clock.sleep(self.every_s)),
                }
                _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
        finally:
            try:
                if self.lease is not None:
                    await asyncio.to_thread(self.lease.release)
            except Exception:
                _log.warning("could not release the %s lease", self.name, exc_info=True)


def alert_step(
    alerter: Alerter,
    clock: Clock,
    *,
    grace_s: float,
    on_event: Callable[[AlertEvent], Any] | None = None,
) -> Callable[[], None]:
    """One alert pass: evaluate closed windows and hand each event to ``on_event``."""

    def step() -> None:
        for event in alerter.evaluate(now=clock.now() - grace_s):
            if on_event is not None:
                try:
                    on_event(event)
                except Exception:
                    _log.exception("alert hook failed for %s", event.rule)

    return step


def build_runner(settings: Settings, registry: Registry, monitor: Monitor | None = None) -> Runner:
    """The one retraining runner of the server and the CLI.

    Runs read mloop's own prediction log joined with feedback (``monitor``, or one
    opened on ``settings``), start rollouts through the rollout area, and track to
    MLflow when ``mlflow_tracking_uri`` (or ``MLFLOW_TRACKING_URI``) names a server.
    """
    from mloop.monitor.live import Monitor
    from mloop.pipelines import LogFeedbackSource, MlflowTracker, Runner
    from mloop.rollout import Rollouts

    monitor = monitor or Monitor(settings, registry)
    uri = str(settings.raw.get("mlflow_tracking_uri", "")) or os.environ.get(
        "MLFLOW_TRACKING_URI", ""
    )
    return Runner(
        registry,
        rollout=Rollouts(registry),
        source=LogFeedbackSource(monitor),
        tracker=MlflowTracker(uri) if uri else None,
    )


def build_triggers(
    settings: Settings, registry: Registry, monitor: Monitor
) -> tuple[TriggerService, ThreadPoolExecutor] | None:
    """The retraining trigger service of the configured pipelines (None without pipelines)."""
    from mloop.pipelines import TriggerService, configured_pipelines

    pipelines = list(configured_pipelines(settings, registry, skip_broken=True).values())
    if not pipelines:
        return None
    runner = build_runner(settings, registry, monitor)
    # Runs train in one background thread: an alert callback returns at once.
    executor = ThreadPoolExecutor(1, thread_name_prefix="mloop-retrain")
    return TriggerService(runner, pipelines, submit=executor.submit), executor
