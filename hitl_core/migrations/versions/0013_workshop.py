"""The live workshop vote: rounds (one row on the shared screen) and each person's vote in a round.

Revision ID: 0013
Revises: 0012

``workshop_rounds`` holds one row put to the room (opened, revealed, closed, by whom and when, and
the model's answer as the room saw it at the reveal);
``workshop_votes`` holds each person's current vote in a round (unique per round and person: a
second vote replaces the first) and points at the decision it wrote (kind "workshop"). Both have
``project_id`` and ``row_key``, so withdrawing a row deletes its rounds and votes. Nothing existing
changes.
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workshop_rounds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("row_key", sa.String(200), nullable=False),
        sa.Column("opened_by", sa.String(100), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("revealed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("predicted_label", sa.String(200), nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
    )
    op.create_index("ix_workshop_rounds_project", "workshop_rounds", ["project_id", "id"])
    op.create_table(
        "workshop_votes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("workshop_rounds.id"), nullable=False),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("row_key", sa.String(200), nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("decision_id", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("round_id", "user"),
    )


def downgrade() -> None:
    op.drop_table("workshop_votes")
    op.drop_index("ix_workshop_rounds_project", table_name="workshop_rounds")
    op.drop_table("workshop_rounds")
