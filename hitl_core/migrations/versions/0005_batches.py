"""Batches of new rows: which batch brought each row in, and its drift against the training pool then.

Revision ID: 0005
Revises: 0003

Two new tables and nothing else changes: a project's rows stay in ``datasets`` (adding a batch
stores a new ``datasets`` row and points the project at it), so existing projects keep every row,
decision and version, and have no batch yet (their rows are the original data, batch 0).
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("drift_json", sa.Text, nullable=True),
        sa.UniqueConstraint("project_id", "number"),
    )
    op.create_index("ix_batches_project_id", "batches", ["project_id"])
    op.create_table(
        "batch_rows",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("row_key", sa.String(200), primary_key=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
    )
    op.create_index("ix_batch_rows_batch_id", "batch_rows", ["batch_id"])


def downgrade() -> None:
    """Drops the batch tags and drift figures; the rows batches added stay in the project's dataset."""
    op.drop_index("ix_batch_rows_batch_id", table_name="batch_rows")
    op.drop_table("batch_rows")
    op.drop_index("ix_batches_project_id", table_name="batches")
    op.drop_table("batches")
