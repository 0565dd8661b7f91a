"""Complaints about decisions and their resolution: the ``complaints`` table. Empty after the upgrade.

Revision ID: 0006
Revises: 0003

One row per complaint: the row it is about (``project_id`` + ``row_key``, so a withdrawal of the row
removes it with every other record about the row), who raised it and why, and once resolved: kept or
changed, by whom, when, why, and the decision a "changed" resolution recorded. Withdrawal needs no
schema of its own: it is an event, and a dropped model file is ``model_versions.model_format = 'withdrawn'``.
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("row_key", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),
        sa.Column("resolved_by", sa.String(100), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.String(20), nullable=True),
        sa.Column("resolution_note", sa.Text, nullable=False, server_default=""),
        sa.Column("decision_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_complaints_project_row", "complaints", ["project_id", "row_key"])


def downgrade() -> None:
    op.drop_index("ix_complaints_project_row", "complaints")
    op.drop_table("complaints")
