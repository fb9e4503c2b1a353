"""Rollout traffic: per-second request, error and latency tallies of every serving process."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rollout_0002"
down_revision = "rollout_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollout_traffic",
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("second", sa.BigInteger, primary_key=True),
        sa.Column("writer", sa.String(200), primary_key=True),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("histogram", sa.Text, nullable=False),
    )
    op.create_index("ix_rollout_traffic_second", "rollout_traffic", ["second"])


def downgrade() -> None:
    op.drop_table("rollout_traffic")
