"""The rollout controller: the reconciler that applies ``next_step`` to every active rollout.

With several replicas, each may run a controller; a lease row in the database
(``rollout_leases``, renewed every tick, expiring after ``lease_ttl_s``) makes
exactly one of them act. State writes are compare-and-set on ``revision``, so
even a controller that lost its lease mid-tick cannot overwrite newer state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from mloop._clock import Clock, SystemClock
from mloop.errors import Conflict
from mloop.registry import Registry
from mloop.rollout._decide import next_step
from mloop.rollout._observations import Observations, ObservationSource, VersionStats
from mloop.rollout._policy import (
    BlueGreenPolicy,
    CanaryPolicy,
    Policy,
    ShadowPolicy,
    policy_from_dict,
)
from mloop.rollout._service import Rollouts
from mloop.rollout._state import Decision

__all__ = ["Controller"]

_log = logging.getLogger(__name__)
LEASE_NAME = "rollout-controller"


class Controller:
    """Evaluates every active rollout each interval and applies the decisions."""

    def __init__(
        self,
        registry: Registry,
        source: ObservationSource,
        *,
        clock: Clock | None = None,
        holder: str | None = None,
        lease_ttl_s: float = 15.0,
        tick_s: float = 1.0,
        baseline_s: float = 3600.0,
        actor: str = "rollout-controller",
    ) -> None:
        self.clock = clock or SystemClock()
        self.rollouts = Rollouts(registry, clock=self.clock)
        self.source = source
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ttl_s = lease_ttl_s
        self.tick_s = tick_s
        self.baseline_s = baseline_s
        self.actor = actor
        self._last_eval: dict[str, float] = {}

    def is_leader(self) -> bool:
        """Take or renew the controller lease; True when this controller may act."""
        return self.rollouts.store.acquire_lease(
            LEASE_NAME, self.holder, self.clock.now(), self.lease_ttl_s
        )

    def tick(self) -> list[Decision]:
        """One reconciliation pass; returns the decisions applied (empty when not leader)."""
        if not self.is_leader():
            return []
        now = self.clock.now()
        applied: list[Decision] = []
        for state, policy in self.rollouts.store.all_active():
            last = self._last_eval.get(state.id)
            if last is not None and now - last < judge_every(policy) and state.phase != "warming":
                continue
            self._last_eval[state.id] = now
            # The candidate is judged on this step's traffic only; stable is the baseline
            # over the whole rollout plus ``baseline_s`` before it, because at 100 % (or
            # after a blue-green switch) stable serves nothing new to compare against.
            candidate = self.source.observe(state.model, [state.candidate], state.step_started_at)
            stable = self.source.observe(
                state.model, [state.stable], state.started_at - self.baseline_s
            )
            obs = Observations(
                at=now,
                stable=stable.get(state.stable, VersionStats()),
                candidate=candidate.get(state.candidate, VersionStats(ready=False)),
            )
            decision = next_step(policy, state, obs)
            if not decision.transition and decision.state == state:
                continue
            try:
                self.rollouts.apply(state, decision, actor=self.actor, observations=obs.to_dict())
            except Conflict:
                # An operator command or another controller moved it first: re-read next tick.
                _log.info("rollout %s changed concurrently; re-evaluating next tick", state.id)
                self._last_eval.pop(state.id, None)
                continue
            if decision.transition:
                _log.info("rollout %s %s: %s", state.model, decision.action, decision.reason)
                applied.append(decision)
                self._hand_over(policy, decision)
        return applied

    def _hand_over(self, policy: Policy, decision: Decision) -> None:
        """Start the follow-up rollout of a shadow that completed (shadow, then canary)."""
        if not (
            isinstance(policy, ShadowPolicy)
            and policy.then is not None
            and decision.action == "complete"
        ):
            return
        state = decision.state
        try:
            self.rollouts.deploy(
                f"{state.model}:{state.candidate}", policy_from_dict(policy.then), actor=self.actor
            )
        except Conflict:
            _log.info("rollout of %s:%s was started by someone else", state.model, state.candidate)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``tick_s`` until ``stop`` is set; releases the lease on exit."""
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(self.tick)
                except Exception:  # a database hiccup must not end the loop
                    _log.warning("rollout controller tick failed", exc_info=True)
                await self.clock.sleep(self.tick_s)
        finally:
            await asyncio.to_thread(self.rollouts.store.release_lease, LEASE_NAME, self.holder)


def judge_every(policy: Policy) -> float:
    """Seconds between judgements: the policy's interval, but at least four per step.

    A 20 s canary step judged every 30 s would let a failing candidate take its whole
    step (and more) of traffic; judging reads shared counters, so it is cheap.
    """
    if isinstance(policy, CanaryPolicy):
        span = policy.step_duration_s
    elif isinstance(policy, BlueGreenPolicy):
        span = policy.hold_s
    elif isinstance(policy, ShadowPolicy):
        span = policy.duration_s
    else:
        return policy.interval_s
    return min(policy.interval_s, max(1.0, span / 4))
