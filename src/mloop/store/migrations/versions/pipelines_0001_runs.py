"""Pipelines: declared pipelines, runs, steps and trigger state."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pipelines_0001"
down_revision = "core_0001"
branch_labels = ("pipelines",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_defs",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "pipeline_runs",
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
    op.create_table(
        "pipeline_steps",
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
    op.create_table(
        "pipeline_triggers",
        sa.Column("pipeline", sa.String(200), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("pipeline_triggers", "pipeline_steps", "pipeline_runs", "pipeline_defs"):
        op.drop_table(table)
