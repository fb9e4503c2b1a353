"""Rollout tables: rollouts (one active per model), rollout_events, rollout_leases.

``rollouts.active_model`` equals ``model`` while the rollout is active and is NULL
once it ends; a unique constraint on it gives "one active rollout per model" on
SQLite and PostgreSQL alike (NULLs never collide).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata", "rollout_events", "rollout_leases", "rollout_traffic", "rollouts"]

metadata = sa.MetaData()

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("active_model", sa.String(200), nullable=True, unique=True),
    sa.Column("stable", sa.Integer, nullable=False),
    sa.Column("candidate", sa.Integer, nullable=False),
    sa.Column("strategy", sa.String(20), nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("phase", sa.String(20), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("step_started_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("verdict", sa.JSON, nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
)

rollout_events = sa.Table(
    "rollout_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "rollout_id", sa.String(32), sa.ForeignKey("rollouts.id"), nullable=False, index=True
    ),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("from_phase", sa.String(20), nullable=False),
    sa.Column("to_phase", sa.String(20), nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("observations", sa.JSON, nullable=True),
)

rollout_leases = sa.Table(
    "rollout_leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# Tallies of every serving process, per second while recent (see ``_ledger.py``).
rollout_traffic = sa.Table(
    "rollout_traffic",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("second", sa.BigInteger, primary_key=True),
    sa.Column("writer", sa.String(200), primary_key=True),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("histogram", sa.Text, nullable=False),
    sa.Column("shadow_pairs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("shadow_agree", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_rollout_traffic_second", "second"),
)
