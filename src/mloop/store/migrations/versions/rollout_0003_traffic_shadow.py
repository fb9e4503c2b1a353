"""Rollout traffic: shadow pairs and agreement, so every process's shadow copies count."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rollout_0003"
down_revision = "rollout_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "rollout_traffic",
        sa.Column("shadow_pairs", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column(
        "rollout_traffic",
        sa.Column("shadow_agree", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("rollout_traffic") as batch:
        batch.drop_column("shadow_agree")
        batch.drop_column("shadow_pairs")
