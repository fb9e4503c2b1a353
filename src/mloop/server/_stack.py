"""The assembly at the edge: one server running the whole production loop.

``build_app`` plugs the areas together around ``create_app``:

- the monitor's durable ``PredictionLog`` is the prediction sink (compacted in the
  background), and its routes are mounted (``POST /feedback`` behind the
  "feedback" scope, ``/models/{name}/monitor/status|report`` behind "deploy");
- the router follows rollout state in the database (``RolloutRouter``): every
  replica routes by the same state, and only to warm versions;
- a rollout ``Controller`` reads ``LiveObservations`` (requests, errors, latency and
  shadow agreement of every process from the shared traffic ledger, which each
  process writes about once a second; the monitor's drift and accuracy)
  and, while it holds the controller lease, promotes or rolls back;
- an alert loop evaluates ``[[alerts]]`` (log, webhook and Prometheus gauges in
  ``/metrics``) and hands firing alerts to the retraining ``TriggerService``,
  which also ticks about once a minute (schedules, new labels);
- the dashboard (``mloop.dashboard``) is mounted at ``/ui/`` behind the same keys
  (scope "view" to read, "deploy" for rollout commands).

Background work starts and stops with the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from fastapi import FastAPI

from mloop._clock import Clock, SystemClock
from mloop.config import DashboardSettings, Settings
from mloop.dashboard import GatewayFeed, Recent, Sources, dashboard_router
from mloop.rollout import Controller, TrafficLedger, TrafficRecorder
from mloop.server._guards import GuardStats, LiveObservations
from mloop.server._loops import Lease, LoopRunner, alert_step, alert_tick_s, build_triggers
from mloop.server._routing import RolloutRouter, rollout_refs
from mloop.serving import PredictionSink, create_app

if TYPE_CHECKING:
    from mloop.monitor.live import Alerter, Monitor
    from mloop.pipelines import TriggerService
    from mloop.registry import Registry

__all__ = ["Stack", "build_app"]

_log = logging.getLogger("mloop.serving")

TRIGGER_TICK_S = 60.0
ALERT_GRACE_S = 1.0
TRAFFIC_FLUSH_S = 1.0


@dataclass
class Stack:
    """The parts of a full server (``app.state.stack``), for operators, tests and the demo."""

    monitor: Monitor
    router: RolloutRouter | None
    controller: Controller | None
    alerter: Alerter | None
    triggers: TriggerService | None
    observations: LiveObservations | None = None
    loops: list[LoopRunner] = field(default_factory=list)
    on_close: list[Callable[[], None]] = field(default_factory=list)
    _executor: ThreadPoolExecutor | None = None
    _stop: asyncio.Event | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Start the controller and the loops on the running event loop."""
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if self.controller is not None:
            self._tasks.append(loop.create_task(self.controller.run(self._stop)))
        self._tasks.extend(loop.create_task(r.run(self._stop)) for r in self.loops)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loops (releasing their leases), then retraining's worker thread."""
        if self._stop is not None:
            self._stop.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            self._tasks = []
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self.observations is not None:
            self.observations.close()

    def close(self) -> None:
        """Flush and close the prediction and feedback logs (after serving stopped)."""
        for hook in self.on_close:
            try:
                hook()
            except Exception:  # a last flush that fails must not keep the logs open
                _log.warning("closing step failed", exc_info=True)
        self.monitor.close()


def _alerting(
    settings: Settings, registry: Registry, monitor: Monitor, metrics_registry: Any, clock: Clock
) -> Alerter | None:
    from mloop.monitor.live import Alerter, PrometheusSink, rules_from_config

    rules = rules_from_config(settings.raw)
    if not rules:
        return None
    return Alerter(monitor, rules, gauges=PrometheusSink(metrics_registry), clock=clock)


def build_app(
    settings: Settings,
    refs: Iterable[str] = (),
    *,
    registry: Registry | None = None,
    clock: Clock | None = None,
    prediction_sink: PredictionSink | None = None,
    controller_tick_s: float = 1.0,
    **create_kwargs: Any,
) -> FastAPI:
    """The full server: ``create_app`` plus monitoring, rollouts, alerts and retraining triggers.

    ``prediction_sink`` replaces the monitor's own log; a ``router`` in
    ``create_kwargs`` replaces the rollout router (and the controller with it). Other
    keywords go to ``create_app`` (``auth``, ``pinned``, ``routers``, ``entity_key``).
    """
    from mloop.monitor.http import serving_routers
    from mloop.monitor.live import Monitor, PredictionLog

    if registry is None:
        from mloop.registry import Registry

        registry = Registry(settings)
    clock = clock or SystemClock()
    refs = tuple(refs)
    given_log = prediction_sink if isinstance(prediction_sink, PredictionLog) else None
    monitor = Monitor(settings, registry, clock=clock, prediction_log=given_log)
    # PredictionLog.submit also says whether sampling kept the record; serving ignores it.
    sink = prediction_sink or cast(PredictionSink, monitor.serving_sink())
    if prediction_sink is not None:
        monitor.start_compaction()
    recorder = TrafficRecorder(clock)
    ledger = TrafficLedger(registry.store)
    router: RolloutRouter | None = None
    names = rollout_refs(refs)
    if create_kwargs.get("router") is None and names is not None:
        router = RolloutRouter(registry.store, models=names)
        create_kwargs["router"] = router
    create_kwargs["routers"] = [*serving_routers(monitor), *create_kwargs.get("routers", ())]
    app = create_app(
        settings,
        registry=registry,
        prediction_sink=sink,
        refs=refs,
        stats=GuardStats(recorder, clock=clock),
        **create_kwargs,
    )
    serving = app.state.serving
    engine = serving.engine

    def is_ready(model: str, version: int) -> bool:
        return (model, version) in engine.pool

    controller = source = None
    if router is not None:
        router.is_ready = is_ready
        source = LiveObservations(
            ledger,
            is_ready=is_ready,
            monitor=monitor,
            clock=clock,
            # Guard numbers from the log are no fresher than the log's compaction.
            monitor_ttl_s=min(10.0, settings.monitor.compact_interval_s),
        )
        controller = Controller(registry, source, clock=clock, tick_s=controller_tick_s)
    alerter = _alerting(settings, registry, monitor, engine.metrics.registry, clock)
    built = build_triggers(settings, registry, monitor)
    triggers, executor = built if built is not None else (None, None)
    stack = Stack(monitor, router, controller, alerter, triggers, source, _executor=executor)
    # Every process writes its own traffic tallies (no lease): the controller sums them.
    flush = functools.partial(_flush_traffic, ledger, recorder, clock)
    stack.loops.append(LoopRunner("traffic", flush, TRAFFIC_FLUSH_S, None, clock))
    stack.on_close.append(flush)
    if alerter is not None:
        on_event = None if triggers is None else triggers.on_alert
        step = alert_step(alerter, clock, grace_s=ALERT_GRACE_S, on_event=on_event)
        every = alert_tick_s([r.window for r in alerter.rules])
        lease = Lease(registry, "monitor-alerts", clock)
        stack.loops.append(LoopRunner("alerts", step, every, lease, clock))
    if triggers is not None:
        lease = Lease(registry, "pipeline-triggers", clock)
        stack.loops.append(LoopRunner("triggers", triggers.tick, TRIGGER_TICK_S, lease, clock))
    app.state.stack = stack
    app.include_router(
        dashboard_router(
            _dashboard_sources(stack, registry, engine, clock, ledger, settings.dashboard),
            serving.guard,
        )
    )
    _wrap_lifespan(app, stack)
    return app


def _dashboard_sources(
    stack: Stack,
    registry: Registry,
    engine: Any,
    clock: Clock,
    ledger: TrafficLedger,
    dashboard: DashboardSettings,
) -> Sources:
    """What the dashboard reads: the stack's parts, serving's live stats, the fleet's tallies."""
    return Sources(
        registry=registry,
        monitor=stack.monitor,
        alerter=stack.alerter,
        observations=stack.observations,
        traffic=engine.stats.snapshot,
        traffic_window_s=float(engine.stats.window_s),
        traffic_counts=ledger,
        # As fresh as the guards' monitor numbers: the log changes at compaction.
        recent=Recent(min(10.0, registry.settings.monitor.compact_interval_s), clock=clock),
        gateway=_gateway_feed(dashboard),
    )


def _gateway_feed(settings: DashboardSettings) -> GatewayFeed | None:
    """The gateway the dashboard's Gateway screen reads, when one is configured."""
    if not settings.gateway_url:
        return None
    return GatewayFeed(settings.gateway_url, settings.gateway_key, settings.gateway_timeout_s)


def _flush_traffic(ledger: TrafficLedger, recorder: TrafficRecorder, clock: Clock) -> None:
    recorder.flush_to(ledger, now=clock.now())


def _wrap_lifespan(app: FastAPI, stack: Stack) -> None:
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(application) as state:
                # After the engine warmed the routed versions: the controller sees them ready.
                await stack.start()
                try:
                    yield state
                finally:
                    await stack.stop()
        finally:
            await asyncio.to_thread(stack.close)

    app.router.lifespan_context = lifespan
