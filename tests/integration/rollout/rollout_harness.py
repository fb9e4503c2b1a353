"""An in-process stand-in for serving: fake models, a warm pool, the router, and feedback.

Latency is simulated through the manual clock: a fake model advances time by its
latency, and the harness measures it the way serving would (monotonic clock
around predict).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from mloop._clock import ManualClock
from mloop.registry import Registry
from mloop.rollout import Controller, DbRouter, InMemoryObservations, Policy, Rollouts

_PHI = 0.6180339887498949  # golden-ratio sequence: evenly spread, so rates hold in any window


@dataclass
class FakeModel:
    """A candidate whose faults are exact: error share, extra latency, accuracy."""

    version: int
    clock: ManualClock
    error_share: float = 0.0
    latency_ms: float = 5.0
    accuracy: float = 0.9
    conversion: float = 0.1
    calls: int = 0

    def predict(self, truth: int) -> int:
        """Predict a 0/1 label for a row whose true label is ``truth``."""
        self.calls += 1
        position = (self.calls * _PHI) % 1.0
        self.clock.advance(self.latency_ms / 1000)
        if position < self.error_share:
            raise RuntimeError(f"version {self.version} failed")
        right = ((self.calls * _PHI * 7) % 1.0) < self.accuracy
        return truth if right else 1 - truth


def truth_of(key: str) -> int:
    """A fixed true label per user."""
    return hashlib.sha1(key.encode()).digest()[0] & 1


@dataclass
class Harness:
    """Drives requests through router + fake models and the controller through intervals."""

    registry: Registry
    clock: ManualClock
    models: dict[int, FakeModel]
    source: InMemoryObservations = field(init=False)
    router: DbRouter = field(init=False)
    controller: Controller = field(init=False)
    rollouts: Rollouts = field(init=False)
    responses: list[tuple[int, str]] = field(default_factory=list)
    failures: int = 0
    served: int = 0

    def __post_init__(self) -> None:
        self.source = InMemoryObservations(self.clock)
        self.router = DbRouter(
            self.registry.store, clock=self.clock, auto_refresh=False, is_ready=self.source.is_ready
        )
        self.controller = Controller(self.registry, self.source, clock=self.clock)
        self.rollouts = self.controller.rollouts

    def warm(self) -> None:
        """What serving does after each refresh: load and warm every version in use."""
        for model, versions in self.router.versions_in_use().items():
            for v in versions:
                if v in self.models:
                    self.source.mark_ready(model, v)

    def deploy(self, version: int, policy: Policy) -> None:
        """Start a rollout, then let a tick move it out of warming."""
        self.rollouts.deploy(f"churn:{version}", policy, actor="test")
        self.router.refresh()
        self.warm()
        self.controller.tick()
        self.router.refresh()

    def serve(self, n: int, *, conversion_metric: str | None = None) -> None:
        """``n`` requests from distinct users; feedback labels and outcomes follow each answer."""
        for _ in range(n):
            self.served += 1
            key = f"user-{self.served}"
            decision = self.router.route("churn", key)
            model = self.models[decision.version]
            truth = truth_of(key)
            start = self.clock.monotonic()
            try:
                predicted = model.predict(truth)
            except RuntimeError:
                self.failures += 1
                self.source.record_request("churn", decision.version, 0.0, error=True)
                continue
            latency = (self.clock.monotonic() - start) * 1000
            self.source.record_request("churn", decision.version, latency)
            self.responses.append((decision.version, decision.arm))
            self.source.record_label("churn", decision.version, predicted == truth)
            if conversion_metric:
                converted = ((model.calls * _PHI * 3) % 1.0) < model.conversion
                self.source.record_outcome(
                    "churn", decision.version, conversion_metric, float(converted)
                )
            for shadow in decision.shadow:
                self._shadow(self.models[shadow], truth, predicted, latency)

    def _shadow(self, model: FakeModel, truth: int, answered: int, answered_ms: float) -> None:
        start = self.clock.monotonic()
        try:
            predicted = model.predict(truth)
        except RuntimeError:
            self.source.record_request("churn", model.version, 0.0, error=True)
            return
        latency = (self.clock.monotonic() - start) * 1000
        self.source.record_request("churn", model.version, latency)
        self.source.record_shadow(
            "churn",
            model.version,
            agree=predicted == answered,
            score_diff=float(predicted != answered),
            latency_diff_ms=latency - answered_ms,
        )

    def interval(self, requests: int, seconds: float, **kw: str) -> list[str]:
        """Serve traffic for one evaluation interval, then tick; returns the actions taken."""
        started = self.clock.now()
        self.serve(requests, **kw)
        self.clock.advance(max(0.0, started + seconds - self.clock.now()))
        self.warm()
        actions = [d.action for d in self.controller.tick()]
        self.router.refresh()
        return actions

    def phase(self) -> str:
        """Phase of the latest rollout."""
        return self.rollouts.status("churn")[0].phase
