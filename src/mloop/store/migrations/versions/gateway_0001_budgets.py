"""Gateway tables: limits of keys and teams (routes, RPM/TPM, USD budgets), the spend ledger
and its open holds."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0001"
down_revision = "core_0001"
branch_labels = ("gateway",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_limits",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("routes", sa.JSON, nullable=False),
        sa.Column("rpm", sa.Integer, nullable=False),
        sa.Column("tpm", sa.Integer, nullable=False),
        sa.Column("budgets", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "gateway_spend",
        sa.Column("subject", sa.String(250), primary_key=True),
        sa.Column("metric", sa.String(16), primary_key=True),
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("spent", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_gateway_spend_window_end", "gateway_spend", ["window_end"])
    op.create_table(
        "gateway_holds",
        sa.Column("hold_id", sa.String(40), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("charges", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_holds")
    op.drop_table("gateway_spend")
    op.drop_table("gateway_limits")
