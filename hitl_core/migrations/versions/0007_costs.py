"""Costs of decisions per project: what each kind of error and one human review cost, in a named unit.

Revision ID: 0007
Revises: 0003

One nullable ``projects.costs_json`` (a :class:`hitl_core.costs.CostModel` as JSON): existing
projects keep every row and simply have no costs set until a lead sets them.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN: a batch rebuild of ``projects`` on SQLite would drop a table others reference
    op.add_column("projects", sa.Column("costs_json", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "costs_json")
