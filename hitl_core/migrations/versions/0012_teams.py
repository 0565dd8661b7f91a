"""Several reviewers per row: overlap and blind mode per project, guidelines and override reasons, each
decision's kind (decision / vote / adjudication / workshop) and reason, and short leases on queued rows.

Revision ID: 0012
Revises: 0004

Existing decisions become kind "decision" (the latest one wins, as before); existing projects keep
overlap 1 and blind mode off, so nothing an upgraded database shows changes.
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild: SQLite would refuse to drop a table others reference)
    op.add_column("projects", sa.Column("overlap", sa.Integer, nullable=False, server_default="1"))
    op.add_column("projects", sa.Column("blind", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("projects", sa.Column("guidelines", sa.Text, nullable=False, server_default=""))
    op.add_column("projects", sa.Column("reasons_json", sa.Text, nullable=False, server_default="[]"))
    op.add_column("annotations", sa.Column("kind", sa.String(20), nullable=False, server_default="decision"))
    op.add_column("annotations", sa.Column("reason", sa.String(200), nullable=True))
    op.create_table(
        "leases",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("row_key", sa.String(200), primary_key=True),
        sa.Column("user", sa.String(100), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    for column in ("reason", "kind"):
        op.drop_column("annotations", column)
    for column in ("reasons_json", "guidelines", "blind", "overlap"):
        op.drop_column("projects", column)
