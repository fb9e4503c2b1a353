"""Live monitoring tables: compacted prediction log and feedback, spool checkpoints, alerts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitor_0001"
down_revision = "core_0001"
branch_labels = ("monitor",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_predictions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("prediction", sa.Text, nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("entity_key", sa.String(200), nullable=True),
    )
    op.create_index("ix_monitor_predictions_model_ts", "monitor_predictions", ["model", "ts"])
    op.create_index("ix_monitor_predictions_request", "monitor_predictions", ["request_id", "row"])
    op.create_index("ix_monitor_predictions_entity", "monitor_predictions", ["entity_key"])
    op.create_table(
        "monitor_feedback",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("row", sa.Integer, nullable=True),
        sa.Column("entity_key", sa.String(200), nullable=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
    )
    op.create_index("ix_monitor_feedback_request", "monitor_feedback", ["request_id", "row"])
    op.create_index("ix_monitor_feedback_entity", "monitor_feedback", ["entity_key"])
    op.create_table(
        "monitor_spool_checkpoints",
        sa.Column("stream", sa.String(50), primary_key=True),
        sa.Column("writer", sa.String(500), primary_key=True),
        sa.Column("segment", sa.BigInteger, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "monitor_alert_state",
        sa.Column("rule", sa.String(200), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "monitor_alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_monitor_alert_events_at", "monitor_alert_events", ["at"])
    op.create_index("ix_monitor_alert_events_rule", "monitor_alert_events", ["rule"])


def downgrade() -> None:
    for table in (
        "monitor_alert_events",
        "monitor_alert_state",
        "monitor_spool_checkpoints",
        "monitor_feedback",
        "monitor_predictions",
    ):
        op.drop_table(table)
