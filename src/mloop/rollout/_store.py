"""Reading and writing rollout state, audit events and the controller lease.

Every state write is a compare-and-set on ``revision``: a controller that lost its
lease (or an operator command racing the controller) cannot overwrite newer
state; it gets ``Conflict`` and re-reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mloop.errors import Conflict
from mloop.rollout._policy import Policy, policy_from_dict, policy_to_dict
from mloop.rollout._state import RolloutState
from mloop.rollout._tables import rollout_events, rollout_leases, rollouts
from mloop.store import MetadataStore, aliases

__all__ = ["RolloutStore"]


def _to_state(row: Row[Any]) -> tuple[RolloutState, Policy]:
    state = RolloutState(
        id=row.id,
        model=row.model,
        stable=row.stable,
        candidate=row.candidate,
        strategy=row.strategy,
        started_at=row.started_at,
        step_started_at=row.step_started_at,
        updated_at=row.updated_at,
        phase=row.phase,
        step=row.step,
        weight=row.weight,
        paused=bool(row.paused),
        reason=row.reason,
        revision=row.revision,
        verdict=row.verdict,
        actor=row.actor,
    )
    return state, policy_from_dict(row.policy)


def _columns(state: RolloutState) -> dict[str, Any]:
    return {
        "stable": state.stable,
        "candidate": state.candidate,
        "phase": state.phase,
        "step": state.step,
        "weight": state.weight,
        "paused": state.paused,
        "step_started_at": state.step_started_at,
        "updated_at": state.updated_at,
        "reason": state.reason,
        "verdict": dict(state.verdict) if state.verdict is not None else None,
        "active_model": state.model if state.active else None,
    }


class RolloutStore:
    """Rollout rows in the metadata database (SQLite or PostgreSQL)."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    # --- rollouts ------------------------------------------------------------------

    def create(
        self, state: RolloutState, policy: Policy, observations: Mapping[str, Any] | None = None
    ) -> None:
        """Insert a new active rollout; ``Conflict`` if the model already has one."""
        with self.store.write() as conn:
            existing = conn.execute(
                sa.select(rollouts.c.id, rollouts.c.candidate).where(
                    rollouts.c.active_model == state.model
                )
            ).first()
            if existing is not None:
                raise Conflict(
                    f"Model {state.model!r} already has an active rollout of version "
                    f"{existing.candidate} (id {existing.id}). Finish it first: "
                    f"mloop rollout promote {state.model} or mloop rollout rollback {state.model}",
                    rollout_id=existing.id,
                )
            try:
                conn.execute(
                    rollouts.insert().values(
                        id=state.id,
                        model=state.model,
                        strategy=state.strategy,
                        policy=policy_to_dict(policy),
                        started_at=state.started_at,
                        revision=state.revision,
                        actor=state.actor,
                        **_columns(state),
                    )
                )
            except sa.exc.IntegrityError as exc:
                raise Conflict(
                    f"Model {state.model!r} got another active rollout at the same moment; "
                    f"see: mloop rollout status {state.model}"
                ) from exc
            self._event(conn, state, "create", "warming", state.reason, state.actor, observations)

    def save(
        self,
        before: RolloutState,
        after: RolloutState,
        action: str,
        *,
        actor: str,
        observations: Mapping[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> RolloutState:
        """Compare-and-set ``after`` over ``before``; audit the transition unless it is a hold."""
        if conn is None:
            with self.store.write() as new_conn:
                return self.save(
                    before, after, action, actor=actor, observations=observations, conn=new_conn
                )
        saved = after.replace(revision=before.revision + 1)
        result = conn.execute(
            rollouts.update()
            .where(rollouts.c.id == before.id, rollouts.c.revision == before.revision)
            .values(revision=saved.revision, **_columns(saved))
        )
        if result.rowcount != 1:
            raise Conflict(
                f"The rollout of {before.model} changed while this decision was made; "
                f"re-read it with: mloop rollout status {before.model}"
            )
        if action != "hold":
            self._event(conn, saved, action, before.phase, saved.reason, actor, observations)
        return saved

    def _event(
        self,
        conn: Connection,
        state: RolloutState,
        action: str,
        from_phase: str,
        reason: str,
        actor: str,
        observations: Mapping[str, Any] | None,
    ) -> None:
        conn.execute(
            rollout_events.insert().values(
                rollout_id=state.id,
                model=state.model,
                at=state.updated_at,
                action=action,
                from_phase=from_phase,
                to_phase=state.phase,
                weight=state.weight,
                reason=reason,
                actor=actor,
                observations=dict(observations) if observations is not None else None,
            )
        )

    def get(self, rollout_id: str) -> tuple[RolloutState, Policy] | None:
        """One rollout by id."""
        with self.store.read() as conn:
            row = conn.execute(sa.select(rollouts).where(rollouts.c.id == rollout_id)).first()
        return None if row is None else _to_state(row)

    def active(self, model: str) -> tuple[RolloutState, Policy] | None:
        """The model's active rollout, if any."""
        with self.store.read() as conn:
            row = conn.execute(sa.select(rollouts).where(rollouts.c.active_model == model)).first()
        return None if row is None else _to_state(row)

    def latest(self, model: str) -> tuple[RolloutState, Policy] | None:
        """The model's active rollout, else its most recent one."""
        with self.store.read() as conn:
            row = conn.execute(
                sa.select(rollouts)
                .where(rollouts.c.model == model)
                .order_by((rollouts.c.active_model.is_(None)).asc(), rollouts.c.started_at.desc())
                .limit(1)
            ).first()
        return None if row is None else _to_state(row)

    def all_active(self) -> list[tuple[RolloutState, Policy]]:
        """Every active rollout."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(rollouts)
                .where(rollouts.c.active_model.is_not(None))
                .order_by(rollouts.c.model)
            ).all()
        return [_to_state(r) for r in rows]

    def routing_snapshot(self) -> tuple[dict[str, int], list[RolloutState]]:
        """Production aliases and active rollouts, read in one transaction (for routers)."""
        with self.store.read() as conn:
            production = dict(
                conn.execute(
                    sa.select(aliases.c.model_name, aliases.c.version).where(
                        aliases.c.alias == "production"
                    )
                ).all()
            )
            rows = conn.execute(
                sa.select(rollouts).where(rollouts.c.active_model.is_not(None))
            ).all()
        return {str(k): int(v) for k, v in production.items()}, [_to_state(r)[0] for r in rows]

    def events(self, model: str, limit: int = 200) -> list[dict[str, Any]]:
        """Audit events of the model's rollouts, oldest first."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(rollout_events, rollouts.c.candidate, rollouts.c.strategy)
                .join(rollouts, rollouts.c.id == rollout_events.c.rollout_id)
                .where(rollout_events.c.model == model)
                .order_by(rollout_events.c.id.desc())
                .limit(limit)
            ).all()
        return [
            {
                "rollout_id": r.rollout_id,
                "candidate": r.candidate,
                "strategy": r.strategy,
                "at": r.at,
                "action": r.action,
                "from": r.from_phase,
                "to": r.to_phase,
                "weight": r.weight,
                "reason": r.reason,
                "actor": r.actor,
                "observations": r.observations,
            }
            for r in reversed(rows)
        ]

    # --- the controller lease ------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, now: float, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``now + ttl_s``; True if held."""
        with self.store.write() as conn:
            # One conditional UPDATE is atomic on both databases: it succeeds for the
            # current holder (renewal) or when the lease has expired (takeover).
            taken = conn.execute(
                rollout_leases.update()
                .where(
                    rollout_leases.c.name == name,
                    sa.or_(rollout_leases.c.holder == holder, rollout_leases.c.expires_at < now),
                )
                .values(holder=holder, expires_at=now + ttl_s)
            ).rowcount
            if taken == 1:
                return True
            exists = conn.execute(
                sa.select(rollout_leases.c.name).where(rollout_leases.c.name == name)
            ).first()
            if exists is not None:
                return False
            insert: Any
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT.
            inserted = conn.execute(
                insert(rollout_leases)
                .values(name=name, holder=holder, expires_at=now + ttl_s)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(rollout_leases.c.name)
            ).first()
            return inserted is not None

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up so another controller can take over at once."""
        with self.store.write() as conn:
            conn.execute(
                rollout_leases.delete().where(
                    rollout_leases.c.name == name, rollout_leases.c.holder == holder
                )
            )
