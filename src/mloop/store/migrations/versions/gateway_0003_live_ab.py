"""Gateway live A/B of prompt versions: experiments and per-request outcomes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0003"
down_revision = "gateway_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_ab_experiments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("prompt", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("control", sa.Integer, nullable=False),
        sa.Column("candidate", sa.Integer, nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("metric", sa.String(500), nullable=False),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("mde", sa.Float, nullable=False),
        sa.Column("min_samples", sa.Integer, nullable=False),
        sa.Column("case", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        # Set while running, NULL after: unique, so one running experiment per alias.
        sa.Column("running_key", sa.String(310), nullable=True, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "gateway_ab_outcomes",
        sa.Column("request_id", sa.String(200), primary_key=True),
        sa.Column("experiment_id", sa.String(40), nullable=False),
        sa.Column("arm", sa.String(16), nullable=False),
        sa.Column("response_id", sa.String(200), nullable=True),
        sa.Column("caller", sa.String(200), nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_gateway_ab_outcomes_experiment_id", "gateway_ab_outcomes", ["experiment_id"]
    )
    op.create_index("ix_gateway_ab_outcomes_response_id", "gateway_ab_outcomes", ["response_id"])


def downgrade() -> None:
    op.drop_table("gateway_ab_outcomes")
    op.drop_table("gateway_ab_experiments")
