"""Feedback on explanations: a reviewer marks a row's SHAP or LIME explanation helpful, not helpful or wrong.

Revision ID: 0010
Revises: 0003

One new table, nothing existing changes, so an older database upgrades with everything kept. It
holds something about a dataset row, so it has ``project_id`` and ``row_key`` (a data withdrawal
deletes from every such table).
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "explanation_feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("row_key", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("feature", sa.String(200), nullable=True),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_explanation_feedback_project_row", "explanation_feedback", ["project_id", "row_key"])
    op.create_index("ix_explanation_feedback_project_version", "explanation_feedback",
                    ["project_id", "model_version"])


def downgrade() -> None:
    op.drop_index("ix_explanation_feedback_project_version", "explanation_feedback")
    op.drop_index("ix_explanation_feedback_project_row", "explanation_feedback")
    op.drop_table("explanation_feedback")
