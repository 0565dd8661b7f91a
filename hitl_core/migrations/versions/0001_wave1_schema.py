"""The schema of main before Alembic: datasets, projects, annotations, model versions.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("hash", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("frame", sa.LargeBinary, nullable=False),
        sa.Column("split", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dataset_hash", sa.String(32), sa.ForeignKey("datasets.hash"), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("schema_json", sa.Text, nullable=False),
        sa.Column("model_kind", sa.String(20), nullable=False),
        sa.Column("retrain_policy", sa.String(20), nullable=False),
        sa.Column("retrain_every", sa.Integer, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("row_key", sa.String(200), nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("old_label", sa.String(200), nullable=True),
        sa.Column("new_label", sa.String(200), nullable=False),
        sa.Column("predicted_label", sa.String(200), nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_annotations_project_id", "annotations", ["project_id"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("model_kind", sa.String(20), nullable=False),
        sa.Column("n_human_labels", sa.Integer, nullable=False),
        sa.Column("n_train", sa.Integer, nullable=False),
        sa.Column("n_decisions", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(50), nullable=False),
        sa.Column("fit_seconds", sa.Float, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("metrics_json", sa.Text, nullable=False),
        sa.Column("model_blob", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("project_id", "version"),
    )
    op.create_index("ix_model_versions_project_id", "model_versions", ["project_id"])


def downgrade() -> None:
    for table in ("model_versions", "annotations", "projects", "datasets"):
        op.drop_table(table)
