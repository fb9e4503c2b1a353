"""The running system: one server assembled from every stage of the loop.

``build_app`` wraps serving's ``create_app`` with the journal (the durable prediction
and feedback logs), the monitor's routes, rollout routing by database state, the
rollout controller and its live guard observations, alert evaluation and retraining
triggers, each background loop under its own database lease. ``serve`` runs it
under uvicorn (several workers, connection deadlines), ``run_in_background`` in a
thread for notebooks, tests and the demo.
"""

from mloop.server._guards import GuardStats, LiveObservations
from mloop.server._loops import Lease, LoopRunner, build_runner, build_triggers
from mloop.server._process import ServerHandle, configure_logging, run_in_background, serve
from mloop.server._routing import RolloutRouter, rollout_refs
from mloop.server._stack import Stack, build_app

__all__ = [
    "GuardStats",
    "Lease",
    "LiveObservations",
    "LoopRunner",
    "RolloutRouter",
    "ServerHandle",
    "Stack",
    "build_app",
    "build_runner",
    "build_triggers",
    "configure_logging",
    "rollout_refs",
    "run_in_background",
    "serve",
]
