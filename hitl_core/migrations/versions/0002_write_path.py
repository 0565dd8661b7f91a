"""One write path: events, jobs, workers, the project's current version, what each version was trained on.

Revision ID: 0002
Revises: 0001

Existing projects point at their newest version (what pages showed before); each existing
version's ``last_decision_id`` is the id of the last decision it counted (``n_decisions``).
"""
import sqlalchemy as sa
from alembic import op

from hitl_core.store import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("current_version", sa.Integer, nullable=True))
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("last_decision_id", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("status", sa.String(20), nullable=False, server_default="accepted"))
        batch.add_column(sa.Column("status_reason", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("job_id", sa.Integer, nullable=True))
    op.create_index("ix_annotations_project_row", "annotations", ["project_id", "row_key", "id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("object", sa.String(300), nullable=False),
        sa.Column("before_json", sa.Text, nullable=True),
        sa.Column("after_json", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_events_project_id", "events", ["project_id", "id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(100), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("result_version", sa.Integer, nullable=True),
    )
    op.create_index("ix_jobs_project_id", "jobs", ["project_id"])
    op.create_index("ix_jobs_status", "jobs", ["status", "id"])
    op.create_table(
        "workers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    )
    _backfill()


def _backfill() -> None:
    """Point every project at its newest version and date each version by the decisions it counted."""
    connection = op.get_bind()
    connection.execute(sa.text(
        "UPDATE projects SET current_version = "
        "(SELECT MAX(v.version) FROM model_versions v WHERE v.project_id = projects.id)"))
    versions = connection.execute(sa.text("SELECT id, project_id, n_decisions FROM model_versions")).all()
    for version_id, project_id, n_decisions in versions:
        if n_decisions <= 0:
            continue
        last = connection.execute(sa.text(
            "SELECT id FROM annotations WHERE project_id = :p ORDER BY id LIMIT 1 OFFSET :n"),
            {"p": project_id, "n": n_decisions - 1}).scalar()
        if last is not None:
            connection.execute(sa.text("UPDATE model_versions SET last_decision_id = :d WHERE id = :v"),
                               {"d": last, "v": version_id})


def downgrade() -> None:
    for table in ("workers", "jobs", "events"):
        op.drop_table(table)
    op.drop_index("ix_annotations_project_row", "annotations")
    with op.batch_alter_table("model_versions") as batch:
        for column in ("job_id", "status_reason", "status", "last_decision_id"):
            batch.drop_column(column)
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("current_version")
