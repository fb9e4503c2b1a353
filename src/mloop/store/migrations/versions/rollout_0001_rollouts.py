"""Rollout tables: rollouts, rollout_events, rollout_leases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rollout_0001"
down_revision = "core_0001"
branch_labels = ("rollout",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
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
    op.create_table(
        "rollout_events",
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
    op.create_table(
        "rollout_leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("rollout_leases", "rollout_events", "rollouts"):
        op.drop_table(table)
