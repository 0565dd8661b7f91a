"""Saved counterfactuals: a change to a row that flips its prediction, kept with who saved it and on which model.

Revision ID: 0009
Revises: 0003

One new table, nothing existing changes, so an older database upgrades with everything kept. It
holds something about a dataset row, so it has ``project_id`` and ``row_key`` (a data withdrawal
deletes from every such table). ``source`` says where the change came from: a person's what-if or
a DiCE suggestion; ``settings_json`` the search settings (immutable columns, ranges, desired class)
and ``result_json`` the checked counterfactual (changes from → to, predicted class, confidence).
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0009"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counterfactuals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("row_key", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("settings_json", sa.Text, nullable=False),
        sa.Column("result_json", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_counterfactuals_project_row", "counterfactuals", ["project_id", "row_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_counterfactuals_project_row", "counterfactuals")
    op.drop_table("counterfactuals")
