"""Safe rollouts: shadow, canary, A/B and blue-green, promoted or rolled back automatically.

Pieces, from pure to I/O:

- Policies are data (``ShadowPolicy``, ``CanaryPolicy``, ``ABPolicy``,
  ``BlueGreenPolicy``; ``policy_to_dict`` / ``policy_from_dict``).
- ``next_step(policy, state, observations) -> Decision`` decides; it is pure.
- ``Controller`` applies decisions to every active rollout (one controller acts
  across replicas, by a database lease); ``Rollouts`` is the operator API
  (deploy, status, promote, rollback, pause, resume, history).
- ``DbRouter`` answers serving's per-request question from a precomputed table.

Integration surface for serving (one process)::

    source = InMemoryObservations()                   # or any ObservationSource
    router = DbRouter(registry.store, is_ready=pool.is_ready)
    controller = Controller(registry, source)
    task = asyncio.create_task(controller.run(stop_event))   # at app startup

    decision = router.route(model, key)               # per request, no DB access
    # answer with decision.version; send copies to decision.shadow off the request
    # path (no feedback, no cache writes, not counted as served), then:
    source.record_request(model, decision.version, latency_ms, error=failed)
    source.record_shadow(model, shadow_version, agree=..., score_diff=..., latency_diff_ms=...)
    source.record_request(model, shadow_version, shadow_latency_ms, error=...)  # shadow's own health
    # warm every version in router.versions_in_use(), then source.mark_ready(model, v)

With several processes, each tallies its own traffic in a ``TrafficRecorder``
(``recorder.record(...)``, ``recorder.record_shadow(...)``) and moves it about once
a second into shared ``TrafficCounts`` (``recorder.flush_to(TrafficLedger(store),
now=...)``); the controller's source reads every process's sums from there.

Monitoring feeds ``record_label`` (feedback joined to the serving version),
``record_outcome`` (A/B metrics such as conversion), ``set_drift`` and
``set_estimated_accuracy``. A version that is not ready never answers and never
gets a shadow copy, and a rollout leaves ``warming`` only once its candidate is ready.
"""

from mloop._sequential import MetricSummary, Verdict, msprt
from mloop.rollout._controller import Controller
from mloop.rollout._decide import apply_command, guard_metrics, initial_weight, next_step
from mloop.rollout._ledger import TrafficLedger
from mloop.rollout._observations import (
    InMemoryObservations,
    Observations,
    ObservationSource,
    VersionStats,
)
from mloop.rollout._policy import (
    GUARD_METRICS,
    ABPolicy,
    BlueGreenPolicy,
    CanaryPolicy,
    Guard,
    Policy,
    ShadowPolicy,
    Strategy,
    parse_duration,
    policy_from_dict,
    policy_to_dict,
)
from mloop.rollout._router import DbRouter, RouteDecision, RoutingTable, TrafficRouter, bucket
from mloop.rollout._service import Rollouts
from mloop.rollout._state import TERMINAL_PHASES, Action, Decision, Phase, RolloutState
from mloop.rollout._store import RolloutStore
from mloop.rollout._traffic import MemoryTraffic, Totals, TrafficCounts, TrafficRecorder

__all__ = [
    "GUARD_METRICS",
    "TERMINAL_PHASES",
    "ABPolicy",
    "Action",
    "BlueGreenPolicy",
    "CanaryPolicy",
    "Controller",
    "DbRouter",
    "Decision",
    "Guard",
    "InMemoryObservations",
    "MemoryTraffic",
    "MetricSummary",
    "ObservationSource",
    "Observations",
    "Phase",
    "Policy",
    "RolloutState",
    "RolloutStore",
    "Rollouts",
    "RouteDecision",
    "RoutingTable",
    "ShadowPolicy",
    "Strategy",
    "Totals",
    "TrafficCounts",
    "TrafficLedger",
    "TrafficRecorder",
    "TrafficRouter",
    "Verdict",
    "VersionStats",
    "apply_command",
    "bucket",
    "guard_metrics",
    "initial_weight",
    "msprt",
    "next_step",
    "parse_duration",
    "policy_from_dict",
    "policy_to_dict",
]
