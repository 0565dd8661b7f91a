"""Gold rows (known answers mixed into the review queue) and each project's gold rate.

Revision ID: 0011
Revises: 0003

``gold_rows`` holds one known label per (project, row): it has ``project_id`` and ``row_key``, so
withdrawing a row's data deletes its gold answer too. ``gold_settings`` holds the share of the
"ask next" batch given to gold rows. Nothing existing changes: a project has no gold rows and a
rate of 0 (no gold in the queue) until a lead sets them on the Team page.
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0011"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gold_rows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("row_key", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "row_key"),
    )
    op.create_table(
        "gold_settings",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gold_settings")
    op.drop_table("gold_rows")
