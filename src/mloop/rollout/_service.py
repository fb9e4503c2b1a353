"""Start, inspect and command rollouts; apply decisions (the only place with side effects).

A promotion writes the rollout's terminal state and moves the ``production``
alias in one database transaction (through the registry's connection-level
alias setter), so a crash or a racing operator command can never leave the
alias moved while the rollout says otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from mloop._clock import Clock, SystemClock
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.registry import Registry, current_actor, parse_ref
from mloop.rollout._decide import apply_command
from mloop.rollout._policy import BlueGreenPolicy, Policy, policy_from_dict
from mloop.rollout._state import Decision, RolloutState
from mloop.rollout._store import RolloutStore

__all__ = ["Rollouts"]


class Rollouts:
    """The rollout API the CLI and HTTP call: deploy, status, commands, history."""

    def __init__(self, registry: Registry, *, clock: Clock | None = None) -> None:
        self.registry = registry
        self.clock = clock or SystemClock()
        self.store = RolloutStore(registry.store)

    def start(self, model: str, version: int, strategy: str, **policy: Any) -> str:
        """Start a rollout from a pipeline (the ``RolloutStarter`` shape); return its id.

        ``shadow-then-canary`` starts a shadow whose completion starts a canary (the
        controller hands over). ``policy`` holds flat options and optional per-strategy
        tables (``shadow = {...}``, ``canary = {...}``).
        """
        chosen = "shadow" if strategy == "shadow-then-canary" else strategy

        def spec_for(name: str) -> dict[str, Any]:
            nested = policy.get(name)
            spec = dict(nested) if isinstance(nested, Mapping) else {}
            spec.update({k: v for k, v in policy.items() if not isinstance(v, Mapping)})
            return spec

        spec = spec_for(chosen)
        if strategy == "shadow-then-canary":
            spec["then"] = {"strategy": "canary", **spec_for("canary")}
        state = self.deploy(
            f"{model}:{version}",
            policy_from_dict({"strategy": chosen, **spec}),
            actor="mloop-pipelines",
        )
        return state.id

    def deploy(self, ref: str, policy: Policy, *, actor: str | None = None) -> RolloutState:
        """Start rolling ``name:version`` out under ``policy`` against the production version."""
        parsed = parse_ref(ref)
        if parsed.version is None:
            raise InvalidInput(
                f"Deploy needs an exact version, e.g. {parsed.name}:4; got {ref!r}. "
                f"List versions with: mloop models show {parsed.name}"
            )
        self.registry.get(f"{parsed.name}:{parsed.version}")  # NotFound lists known versions
        stable = self.registry.aliases(parsed.name).get("production")
        if stable is None:
            raise Conflict(
                f"Model {parsed.name!r} has no production version to roll out against. "
                f"For a first deployment set it directly: "
                f"mloop alias set {parsed.name} production {parsed.version}"
            )
        running = self.store.active(parsed.name)
        if running is not None:
            current, policy = running
            raise Conflict(
                f"{parsed.name} already has an active rollout ({current.strategy}, "
                f"v{current.stable} → v{current.candidate}): {current.serving(_hold(policy))}. "
                f"Finish it first: mloop rollout promote {parsed.name} or mloop rollout "
                f"rollback {parsed.name}."
            )
        if stable == parsed.version:
            raise Conflict(f"{parsed.name}:{parsed.version} is already the production version.")
        who = current_actor(actor)
        now = self.clock.now()
        state = RolloutState(
            id=uuid.uuid4().hex,
            model=parsed.name,
            stable=stable,
            candidate=parsed.version,
            strategy=policy.strategy,
            started_at=now,
            step_started_at=now,
            updated_at=now,
            reason=f"{policy.strategy} of version {parsed.version} over {stable} started by {who}",
            actor=who,
        )
        self.store.create(state, policy)
        self.registry.record_event(
            parsed.name,
            "rollout.create",
            {
                "rollout_id": state.id,
                "strategy": policy.strategy,
                "stable": stable,
                "candidate": parsed.version,
            },
            actor=who,
        )
        return state

    def status(self, model: str) -> tuple[RolloutState, Policy]:
        """The model's active rollout, else its most recent one."""
        found = self.store.latest(model)
        if found is None:
            raise NotFound(
                f"Model {model!r} has no rollouts. Start one with: "
                f"mloop deploy {model}:<version> --strategy canary"
            )
        return found

    def serving(self, model: str) -> dict[str, Any] | None:
        """The active rollout of ``model`` as plain data with what serves now, or None."""
        found = self.store.active(model)
        if found is None:
            return None
        current, policy = found
        return {
            "rollout": current.id,
            "strategy": current.strategy,
            "phase": current.phase,
            "stable": current.stable,
            "candidate": current.candidate,
            "candidate_traffic": current.weight,
            "serving": current.serving(_hold(policy)),
        }

    def active(self, model: str) -> tuple[RolloutState, Policy]:
        """The model's active rollout; ``NotFound`` when there is none."""
        found = self.store.active(model)
        if found is None:
            raise NotFound(
                f"Model {model!r} has no active rollout. See past ones with: mloop rollout history {model}"
            )
        return found

    def command(
        self, model: str, command: str, *, actor: str | None = None, reason: str = ""
    ) -> RolloutState:
        """Apply ``promote``, ``rollback``, ``pause`` or ``resume`` to the active rollout."""
        state, _ = self.active(model)
        who = current_actor(actor)
        decision = apply_command(state, command, self.clock.now(), reason or f"{command} by {who}")
        return self.apply(state, decision, actor=who)

    def history(self, model: str, limit: int = 200) -> list[dict[str, Any]]:
        """Every transition of the model's rollouts, oldest first, with reason and metrics."""
        return self.store.events(model, limit)

    def apply(
        self,
        before: RolloutState,
        decision: Decision,
        *,
        actor: str,
        observations: Mapping[str, Any] | None = None,
    ) -> RolloutState:
        """Persist a decision: state, audit row and (on promotion) the alias in one transaction."""
        after = decision.state
        snapshot: dict[str, Any] | None = None
        if observations is not None or decision.metrics:
            snapshot = {"metrics": dict(decision.metrics), **(dict(observations or {}))}
        with self.registry.store.write() as conn:
            saved = self.store.save(
                before, after, decision.action, actor=actor, observations=snapshot, conn=conn
            )
            if decision.action == "promote":
                # Same transaction as the state write: the alias moves if and only if the
                # rollout is recorded as promoted (a racing rollback makes both fail).
                self.registry.set_alias_in(
                    conn, after.model, "production", after.candidate, actor, decision.reason
                )
        if decision.transition:
            self.registry.record_event(
                after.model,
                f"rollout.{decision.action}",
                {
                    "rollout_id": after.id,
                    "strategy": after.strategy,
                    "stable": after.stable,
                    "candidate": after.candidate,
                    "phase": after.phase,
                    "weight": after.weight,
                    "reason": decision.reason,
                },
                actor=actor,
            )
        return saved


def _hold(policy: Policy) -> float | None:
    return policy.hold_s if isinstance(policy, BlueGreenPolicy) else None
