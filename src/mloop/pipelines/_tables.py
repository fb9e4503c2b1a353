"""Tables of the pipelines area: declared pipelines, runs, steps, trigger state.

Migrated by ``store/migrations/versions/pipelines_0001_runs.py`` (Alembic branch ``pipelines``).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata", "pipeline_defs", "pipeline_runs", "pipeline_steps", "pipeline_triggers"]

metadata = sa.MetaData()

pipeline_defs = sa.Table(
    "pipeline_defs",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("trigger", sa.JSON, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("dataset", sa.String(64), nullable=True),
    sa.Column("model_version", sa.Integer, nullable=True),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("reports", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
)

pipeline_steps = sa.Table(
    "pipeline_steps",
    metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("pipeline_runs.id"), primary_key=True),
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("output", sa.JSON, nullable=False),
    sa.Column("logs", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
)

pipeline_triggers = sa.Table(
    "pipeline_triggers",
    metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
