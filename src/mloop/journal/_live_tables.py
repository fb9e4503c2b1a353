"""Tables of the live monitoring side: compacted log (PostgreSQL mode), checkpoints, alerts.

Migrated by ``store/migrations/versions/monitor_0001_live.py`` (Alembic branch ``monitor``).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "alert_events",
    "alert_state",
    "metadata",
    "monitor_feedback",
    "monitor_prediction_columns",
    "monitor_predictions",
    "spool_checkpoints",
]

metadata = sa.MetaData()

monitor_predictions = sa.Table(
    "monitor_predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
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
    sa.Index("ix_monitor_predictions_model_ts", "model", "ts"),
    sa.Index("ix_monitor_predictions_request", "request_id", "row"),
    sa.Index("ix_monitor_predictions_entity", "entity_key"),
)

# One row per compacted batch and model: its rows' monitoring table (``_columns``) as
# Parquet bytes, written in the same transaction as the rows.
monitor_prediction_columns = sa.Table(
    "monitor_prediction_columns",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("ts_min", sa.Float, nullable=False),
    sa.Column("ts_max", sa.Float, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Index("ix_monitor_prediction_columns_model_ts", "model", "ts_max", "ts_min"),
)

monitor_feedback = sa.Table(
    "monitor_feedback",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(200), nullable=True),
    sa.Column("row", sa.Integer, nullable=True),
    sa.Column("entity_key", sa.String(200), nullable=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Index("ix_monitor_feedback_request", "request_id", "row"),
    sa.Index("ix_monitor_feedback_entity", "entity_key"),
)

spool_checkpoints = sa.Table(
    "monitor_spool_checkpoints",
    metadata,
    sa.Column("stream", sa.String(50), primary_key=True),
    sa.Column("writer", sa.String(500), primary_key=True),
    sa.Column("segment", sa.BigInteger, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
)

alert_state = sa.Table(
    "monitor_alert_state",
    metadata,
    sa.Column("rule", sa.String(200), primary_key=True),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

alert_events = sa.Table(
    "monitor_alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("rule", sa.String(200), nullable=False, index=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)
