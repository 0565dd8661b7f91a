"""Project briefs: the ``briefs`` table, one row per saved version of a project's brief (none is overwritten).

Revision ID: 0008
Revises: 0003

Nothing existing changes: projects simply have no brief until someone saves one on the Brief page.
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0008"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "briefs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("brief_json", sa.Text, nullable=False),
        sa.UniqueConstraint("project_id", "version"),
    )
    op.create_index("ix_briefs_project_id", "briefs", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_briefs_project_id", "briefs")
    op.drop_table("briefs")
