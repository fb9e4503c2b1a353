"""The prediction log's monitoring tables in SQL: each compacted batch's rows of one model,
column-wise (Parquet bytes), so reading a week of the log needs no JSON decoding."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitor_0002"
down_revision = "monitor_0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_prediction_columns",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("ts_min", sa.Float, nullable=False),
        sa.Column("ts_max", sa.Float, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_monitor_prediction_columns_model_ts",
        "monitor_prediction_columns",
        ["model", "ts_max", "ts_min"],
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_prediction_columns_model_ts", "monitor_prediction_columns")
    op.drop_table("monitor_prediction_columns")
