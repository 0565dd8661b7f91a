"""SQLAlchemy tables and the only code that reads or writes SQL.

SQLite file by default, PostgreSQL (or any SQLAlchemy URL) through ``HITL_DATABASE_URL``. The
schema is Alembic's (``hitl_core/migrations``): opening a store upgrades the database to head.
Writes happen only inside :meth:`Store.write`, one transaction that serialises the writers of a
project (SQLite: ``BEGIN IMMEDIATE`` in WAL mode; PostgreSQL: ``SELECT ... FOR UPDATE`` on the
project row); the rules of what may be written live in :mod:`hitl_core.actions`.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, create_engine, event,
    MetaData, delete, func, insert, or_, select, text, update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from hitl_core import model_files, withdraw
from hitl_core.complaints import Complaint
from hitl_core.data import Dataset, Schema, content_hash
from hitl_core.models import FittedModel
from hitl_core.records import Batch, Decision, Event, Job, ModelVersion, Project, Round
from hitl_core.users import User


def _now() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend: SQLite drops the zone and would hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        return value.astimezone(timezone.utc) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    __tablename__ = "datasets"
    hash: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    frame: Mapped[bytes] = mapped_column(LargeBinary)  # parquet, index = row keys
    split: Mapped[bytes] = mapped_column(LargeBinary)  # parquet, the one split this dataset ever gets
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class ProjectRow(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    dataset_hash: Mapped[str] = mapped_column(ForeignKey("datasets.hash"))
    source: Mapped[str] = mapped_column(String(300))
    schema_json: Mapped[str] = mapped_column(Text)
    model_kind: Mapped[str] = mapped_column(String(20))
    retrain_policy: Mapped[str] = mapped_column(String(20), default="every")
    retrain_every: Mapped[int] = mapped_column(Integer, default=5)
    threshold: Mapped[float] = mapped_column(Float, default=0.7)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    costs_json: Mapped[str | None] = mapped_column(Text, nullable=True)  # hitl_core.costs.CostModel; None: not set
    overlap: Mapped[int] = mapped_column(Integer, default=1)  # people who label each row (1: the latest decision wins)
    blind: Mapped[bool] = mapped_column(Boolean, default=False)  # reviewers do not see the model's answer
    guidelines: Mapped[str] = mapped_column(Text, default="")  # Markdown, written by the lead
    reasons_json: Mapped[str] = mapped_column(Text, default="[]")  # the reasons an override may give


class AnnotationRow(Base):
    __tablename__ = "annotations"
    __table_args__ = (Index("ix_annotations_project_row", "project_id", "row_key", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    row_key: Mapped[str] = mapped_column(String(200))
    user: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    action: Mapped[str] = mapped_column(String(20))
    old_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    new_label: Mapped[str] = mapped_column(String(200))
    predicted_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20), default="decision")  # decision | vote | adjudication | workshop
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)  # from the project's list (overrides)


DECISION_COLUMNS = ["id", "row_key", "user", "created_at", "action", "old_label", "new_label", "predicted_label",
                    "confidence", "model_version", "note", "kind", "reason"]


class LeaseRow(Base):
    """A queued row handed to one person for a short while, so two people are not given it at once."""

    __tablename__ = "leases"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    row_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    user: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    model_kind: Mapped[str] = mapped_column(String(20))
    n_human_labels: Mapped[int] = mapped_column(Integer)
    n_train: Mapped[int] = mapped_column(Integer)
    n_decisions: Mapped[int] = mapped_column(Integer)  # decisions stored when training started
    trigger: Mapped[str] = mapped_column(String(50))
    fit_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    metrics_json: Mapped[str] = mapped_column(Text)  # {"validation", "test", "baselines", "confusion", "fairness"?}
    model_blob: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # a skops file, read only by load_model
    model_sha256: Mapped[str] = mapped_column(String(64), default="")  # of model_blob, checked before it is read
    model_format: Mapped[str] = mapped_column(String(10), default=model_files.FORMAT)  # "pickle": refused on load
    last_decision_id: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="accepted")  # accepted (was current) | superseded
    status_reason: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_project_id", "project_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    action: Mapped[str] = mapped_column(String(50))
    object: Mapped[str] = mapped_column(String(300))
    before_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    after_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status", "status", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="retrain")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    trigger: Mapped[str] = mapped_column(String(100))
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    result_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class WorkerRow(Base):
    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class BriefRow(Base):
    __tablename__ = "briefs"
    __table_args__ = (UniqueConstraint("project_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)  # every save is a new version; none is overwritten
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    brief_json: Mapped[str] = mapped_column(Text)  # hitl_core.brief.to_json


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)  # argon2id; None: OIDC/CLI only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    created_by: Mapped[str] = mapped_column(String(100))


class ExplanationFeedbackRow(Base):
    __tablename__ = "explanation_feedback"
    __table_args__ = (Index("ix_explanation_feedback_project_row", "project_id", "row_key"),
                      Index("ix_explanation_feedback_project_version", "project_id", "model_version"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    row_key: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(10))  # shap | lime
    feature: Mapped[str | None] = mapped_column(String(200), nullable=True)  # None: the explanation as a whole
    verdict: Mapped[str] = mapped_column(String(20))  # helpful | not helpful | wrong
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class CounterfactualRow(Base):
    __tablename__ = "counterfactuals"
    __table_args__ = (Index("ix_counterfactuals_project_row", "project_id", "row_key", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    row_key: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int] = mapped_column(Integer)  # the model that was checked to flip the prediction
    source: Mapped[str] = mapped_column(String(20))  # what-if | dice
    settings_json: Mapped[str] = mapped_column(Text)  # desired class, immutable columns, ranges
    result_json: Mapped[str] = mapped_column(Text)  # {"changes": {col: [from, to]}, "predicted", "confidence"}
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class ComplaintRow(Base):
    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_project_row", "project_id", "row_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    row_key: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved
    resolved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)  # kept | changed
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    decision_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # what a "changed" resolution recorded


class BatchRow(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("project_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, … per project
    source: Mapped[str] = mapped_column(String(300))
    n_rows: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    drift_json: Mapped[str | None] = mapped_column(Text, nullable=True)  # DriftReport.to_json() against the pool then


class BatchMemberRow(Base):
    """Which batch brought a row in (rows of the original data have none)."""

    __tablename__ = "batch_rows"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    row_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)


class GoldRow(Base):
    __tablename__ = "gold_rows"
    __table_args__ = (UniqueConstraint("project_id", "row_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    row_key: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))  # the known answer; never shown in the queue
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class GoldSettingRow(Base):
    __tablename__ = "gold_settings"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    rate: Mapped[float] = mapped_column(Float)  # share of the "ask next" batch given to gold rows
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class WorkshopRoundRow(Base):
    """One row put to the room in a live workshop (hitl_core.workshop)."""

    __tablename__ = "workshop_rounds"
    __table_args__ = (Index("ix_workshop_rounds_project", "project_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    row_key: Mapped[str] = mapped_column(String(200))
    opened_by: Mapped[str] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    revealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the model's answer shown at the reveal
    predicted_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)


class WorkshopVoteRow(Base):
    """A person's current vote in a round (one per person: a new vote replaces it) and the decision it wrote."""

    __tablename__ = "workshop_votes"
    __table_args__ = (UniqueConstraint("round_id", "user"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("workshop_rounds.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    row_key: Mapped[str] = mapped_column(String(200))
    user: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(200))
    decision_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


def _to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=True)
    return buffer.getvalue()


def _from_parquet(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))


SQLITE_BUSY_TIMEOUT_MS = 60_000
WRITE = "hitl_write"  # execution option: this connection's transaction writes (SQLite: BEGIN IMMEDIATE)


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file gets its folder, WAL mode, a busy timeout and immediate write locks.

    pysqlite's own transaction handling is switched off so that a write transaction takes the
    database's write lock at ``BEGIN`` (no deadlock between two readers upgrading to writers) and a
    reader never blocks a writer (WAL).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we send BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE) else "BEGIN")

    return engine


class Store:
    """Projects, datasets, human decisions, model versions, events and jobs, in one SQL database."""

    def __init__(self, url: str, *, upgrade: bool = True):
        self.url = url
        self.engine = create_store_engine(url)
        if upgrade:
            from hitl_core.migrations import upgrade_to_head  # alembic only where a store is opened
            upgrade_to_head(self.engine)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(**{WRITE: True}), expire_on_commit=False)
        self._row_keys: dict[str, tuple[pd.Index, pd.Series]] = {}  # dataset hash → (pool keys, given labels)

    @contextlib.contextmanager
    def write(self, project_id: int | None = None) -> Iterator["Tx"]:
        """One write transaction, committed on leaving the block; the project's writers queue behind it."""
        with self._write.begin() as session:
            tx = Tx(session, self)
            if project_id is not None:
                tx.lock_project(project_id)
            yield tx

    # ---- datasets and projects
    def save_dataset(self, dataset: Dataset, dataset_hash: str) -> str:
        """Store a dataset and its split once; a second save of the same content keeps the first split."""
        with self.write() as tx:
            if tx.session.get(DatasetRow, dataset_hash) is None:
                tx.session.add(DatasetRow(
                    hash=dataset_hash, name=dataset.name,
                    frame=_to_parquet(dataset.frame), split=_to_parquet(dataset.split.to_frame()),
                ))
        return dataset_hash

    def has_dataset(self, dataset_hash: str) -> bool:
        with self._read() as session:
            return session.get(DatasetRow, dataset_hash) is not None

    def load_dataset(self, project: Project) -> Dataset:
        with self._read() as session:
            row = session.get(DatasetRow, project.dataset_hash)
            frame, split = _from_parquet(row.frame), _from_parquet(row.split)["split"]
            return Dataset(name=row.name, frame=frame, schema=project.schema, split=split)

    def load_dataset_split(self, dataset_hash: str) -> pd.Series:
        with self._read() as session:
            return _from_parquet(session.get(DatasetRow, dataset_hash).split)["split"]

    def pool_rows(self, project: Project) -> tuple[pd.Index, pd.Series]:
        """The review pool's row keys and every row's given label; a dataset never changes, so read once."""
        cached = self._row_keys.get(project.dataset_hash)
        if cached is None:
            dataset = self.load_dataset(project)
            cached = (dataset.rows("train"), dataset.labels)
            self._row_keys = {project.dataset_hash: cached, **dict(list(self._row_keys.items())[:7])}
        return cached

    def projects(self) -> list[Project]:
        with self._read() as session:
            return [_project(r) for r in session.scalars(select(ProjectRow).order_by(ProjectRow.id))]

    def project(self, project_id: int) -> Project:
        with self._read() as session:
            row = session.get(ProjectRow, project_id)
            if row is None:
                raise KeyError(f"No project with id {project_id}.")
            return _project(row)

    # ---- human decisions
    def decisions(self, project_id: int, *, up_to: int | None = None, row_key: str | None = None) -> pd.DataFrame:
        """Every decision of a project, oldest first (the audit trail of labels); ``up_to``: ids ≤ it only;
        ``row_key``: one row's history."""
        columns = DECISION_COLUMNS
        query = select(*[getattr(AnnotationRow, c) for c in columns]).where(AnnotationRow.project_id == project_id)
        if up_to is not None:
            query = query.where(AnnotationRow.id <= up_to)
        if row_key is not None:
            query = query.where(AnnotationRow.row_key == str(row_key))
        with self._read() as session:
            rows = session.execute(query.order_by(AnnotationRow.id)).all()
        return pd.DataFrame(rows, columns=columns)

    def row_history(self, project_id: int, row_key: str) -> pd.DataFrame:
        """Every decision on one row, oldest first (filtered in SQL, by the project-row index)."""
        return self.decisions(project_id, row_key=row_key)

    def count_decisions(self, project_id: int) -> int:
        with self._read() as session:
            return session.scalar(select(func.count()).where(AnnotationRow.project_id == project_id)) or 0

    def last_decision_id(self, project_id: int) -> int:
        """The newest decision's id (0 when none): a watermark that only grows, cheap to poll."""
        with self._read() as session:
            return session.scalar(select(func.max(AnnotationRow.id)).where(AnnotationRow.project_id == project_id)) or 0

    # ---- feedback on explanations
    def explanation_feedback(self, project_id: int) -> pd.DataFrame:
        """Every verdict on an explanation of the project, oldest first: who, which row, version, method, feature."""
        columns = ["id", "row_key", "model_version", "method", "feature", "verdict", "note", "created_by",
                   "created_at"]
        query = (select(*[getattr(ExplanationFeedbackRow, c) for c in columns])
                 .where(ExplanationFeedbackRow.project_id == project_id).order_by(ExplanationFeedbackRow.id))
        with self._read() as session:
            return pd.DataFrame(session.execute(query).all(), columns=columns)

    # ---- saved counterfactuals
    def counterfactuals(self, project_id: int, row_key: str | None = None) -> pd.DataFrame:
        """Saved counterfactuals of a project (or of one row), oldest first; settings and result as JSON text."""
        columns = ["id", "row_key", "model_version", "source", "settings_json", "result_json", "note", "created_by",
                   "created_at"]
        query = select(*[getattr(CounterfactualRow, c) for c in columns]).where(
            CounterfactualRow.project_id == project_id)
        if row_key is not None:
            query = query.where(CounterfactualRow.row_key == str(row_key))
        with self._read() as session:
            return pd.DataFrame(session.execute(query.order_by(CounterfactualRow.id)).all(), columns=columns)

    # ---- events
    def events(self, project_id: int | None = None) -> pd.DataFrame:
        """Every event (of one project, or all), oldest first; before/after as JSON text."""
        columns = ["id", "project_id", "actor", "created_at", "action", "object", "before_json", "after_json", "note"]
        query = select(*[getattr(EventRow, c) for c in columns])
        if project_id is not None:
            query = query.where(EventRow.project_id == project_id)
        with self._read() as session:
            rows = session.execute(query.order_by(EventRow.id)).all()
        return pd.DataFrame(rows, columns=columns).rename(columns={"before_json": "before", "after_json": "after"})

    # ---- model versions
    def model_versions(self, project_id: int) -> list[ModelVersion]:
        with self._read() as session:
            current = session.scalar(select(ProjectRow.current_version).where(ProjectRow.id == project_id))
            rows = session.scalars(select(ModelVersionRow).where(ModelVersionRow.project_id == project_id)
                                   .order_by(ModelVersionRow.version))
            return [_version(r, current) for r in rows]

    def current_version(self, project_id: int) -> ModelVersion | None:
        """The version the project points at: the one model every page and cache uses."""
        with self._read() as session:
            return _current_version(session, project_id)

    def current_version_number(self, project_id: int) -> int | None:
        """The current version number alone: a cheap poll for pages that refresh when a new version lands."""
        with self._read() as session:
            return session.scalar(select(ProjectRow.current_version).where(ProjectRow.id == project_id))

    def load_model(self, project_id: int, version: int) -> FittedModel:
        """The stored model, checked (format, sha256, trusted types, shape) before use; never unpickled.

        Raises ``KeyError`` for a missing version and :class:`model_files.UntrustedModel` for a refused one.
        """
        with self._read() as session:
            found = session.execute(select(
                ModelVersionRow.model_blob, ModelVersionRow.model_sha256, ModelVersionRow.model_format).where(
                ModelVersionRow.project_id == project_id, ModelVersionRow.version == version)).first()
        if found is None:
            raise KeyError(f"Project {project_id} has no model version {version}.")
        if found.model_format == withdraw.MODEL_WITHDRAWN:
            raise withdraw.ModelWithdrawn(
                f"Version {version} of project {project_id} has no model file any more: it was dropped when rows "
                "were withdrawn (it could hold their values). Its metrics stay listed; use a version trained "
                "after the withdrawal.")
        return model_files.loads(found.model_blob, sha=found.model_sha256, format=found.model_format,
                                 where=f"version {version} of project {project_id}")

    def withdrawn_versions(self, project_id: int) -> list[int]:
        """Versions whose model file a withdrawal dropped: listed with their metrics, never loaded or restored."""
        with self._read() as session:
            return list(session.scalars(select(ModelVersionRow.version).where(
                ModelVersionRow.project_id == project_id, ModelVersionRow.model_format == withdraw.MODEL_WITHDRAWN)
                .order_by(ModelVersionRow.version)))

    # ---- complaints
    def complaints(self, project_id: int, *, row_key: str | None = None) -> list[Complaint]:
        """A project's complaints (or one row's), oldest first."""
        query = select(ComplaintRow).where(ComplaintRow.project_id == project_id)
        if row_key is not None:
            query = query.where(ComplaintRow.row_key == str(row_key))
        with self._read() as session:
            return [_complaint(r) for r in session.scalars(query.order_by(ComplaintRow.id))]

    def compact(self) -> bool:
        """SQLite: rebuild the file without free pages (``VACUUM``) and empty the WAL, so deleted rows leave no
        bytes behind; ``False`` when a reader kept the WAL from being emptied. Other servers: nothing to do here
        (PostgreSQL's deleted rows are unreachable at once; autovacuum reclaims their space)."""
        if self.engine.dialect.name != "sqlite":
            return True
        raw = self.engine.raw_connection()  # outside SQLAlchemy's transaction: VACUUM refuses to run inside one
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            busy = 1
            for _ in range(50):
                busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if not busy:
                    break
                time.sleep(0.1)
            cursor.close()
            return busy == 0
        except sqlite3.OperationalError:  # a writer held the file past the busy timeout: the change itself is made
            return False
        finally:
            raw.close()

    # ---- jobs and workers
    def jobs(self, project_id: int | None = None) -> list[Job]:
        query = select(JobRow).order_by(JobRow.id)
        if project_id is not None:
            query = query.where(JobRow.project_id == project_id)
        with self._read() as session:
            return [_job(r) for r in session.scalars(query)]

    def open_jobs(self, project_id: int) -> list[Job]:
        """Queued and running jobs of a project, oldest first."""
        with self._read() as session:
            return _open_jobs(session, project_id)

    def jobs_open(self) -> list[Job]:
        """Queued and running jobs of every project."""
        with self._read() as session:
            return [_job(r) for r in session.scalars(select(JobRow).where(JobRow.status.in_(("queued", "running")))
                                                       .order_by(JobRow.id))]

    def current_snapshot(self, project_id: int) -> int:
        """The newest decision id the current version's labels include (0 without a version): one small read,
        for the retrain line's poll (not the whole version with its metrics)."""
        with self._read() as session:
            return _current_snapshot(session, project_id)

    def count_decisions_after(self, project_id: int, decision_id: int) -> int:
        """Decisions newer than ``decision_id``: what a version with that snapshot does not include."""
        with self._read() as session:
            return _count_decisions_after(session, project_id, decision_id)

    def live_workers(self, max_age: timedelta) -> list[str]:
        """Workers that sent a heartbeat within ``max_age``."""
        with self._read() as session:
            return list(session.scalars(select(WorkerRow.name).where(WorkerRow.heartbeat_at >= _now() - max_age)))

    # ---- project briefs (hitl_core.brief)
    def briefs(self, project_id: int) -> list[tuple[int, str, datetime, str]]:
        """Every saved brief of a project, oldest first: (version, created_by, created_at, brief_json)."""
        with self._read() as session:
            rows = session.execute(select(BriefRow.version, BriefRow.created_by, BriefRow.created_at,
                                          BriefRow.brief_json).where(BriefRow.project_id == project_id)
                                   .order_by(BriefRow.version)).all()
        return [tuple(r) for r in rows]

    def latest_brief(self, project_id: int) -> str | None:
        """The newest brief's JSON (``None`` before the first save): one row, for pages that only show it."""
        with self._read() as session:
            return _latest_brief(session, project_id)

    # ---- accounts
    def has_users(self) -> bool:
        """False in local mode (no account yet): then nobody signs in."""
        with self._read() as session:
            return _has_users(session)

    def users(self) -> list[User]:
        with self._read() as session:
            return [_user(row) for row in session.scalars(select(UserRow).order_by(UserRow.name))]

    def user(self, name: str) -> User | None:
        with self._read() as session:
            row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
            return None if row is None else _user(row)

    def user_role(self, name: str) -> str | None:
        with self._read() as session:
            return session.scalars(select(UserRow.role).where(UserRow.name == name)).first()

    def password_hash(self, name: str) -> str | None:
        """Only the sign-in check reads this."""
        with self._read() as session:
            return session.scalars(select(UserRow.password_hash).where(UserRow.name == name)).first()

    # ---- batches of new rows
    def batches(self, project_id: int) -> list[Batch]:
        """The batches added to a project, oldest first."""
        with self._read() as session:
            return [_batch(r) for r in session.scalars(select(BatchRow).where(BatchRow.project_id == project_id)
                                                       .order_by(BatchRow.number))]

    def batch_rows(self, project_id: int) -> pd.Series:
        """Row key → batch number for the rows added in batches (the original rows are not listed)."""
        with self._read() as session:
            rows = session.execute(select(BatchMemberRow.row_key, BatchRow.number)
                                   .join(BatchRow, BatchRow.id == BatchMemberRow.batch_id)
                                   .where(BatchMemberRow.project_id == project_id)).all()
        return pd.Series([r[1] for r in rows], index=pd.Index([r[0] for r in rows], dtype=object, name="row"),
                         dtype="int64", name="batch")

    # ---- gold rows (known answers)
    def gold(self, project_id: int) -> pd.Series:
        """The project's gold rows: known label by row key (empty when the lead set none)."""
        with self._read() as session:
            rows = session.execute(select(GoldRow.row_key, GoldRow.label).where(GoldRow.project_id == project_id)
                                   .order_by(GoldRow.id)).all()
        return pd.Series({r.row_key: r.label for r in rows}, dtype=object, name="gold")

    def gold_rate(self, project_id: int) -> float:
        """Share of the "ask next" batch given to gold rows; 0 until a lead sets it."""
        with self._read() as session:
            return _gold_rate(session, project_id)

    # ---- live workshop
    def workshop_round(self, project_id: int, round_id: int | None = None) -> Round | None:
        """The project's newest round (or round ``round_id``) with its vote count, in one query: the shared
        screen's and the phones' poll."""
        with self._read() as session:
            return _newest_round(session, project_id, round_id)

    def workshop_votes(self, round_id: int) -> pd.DataFrame:
        """Each person's current vote in a round, in the order they were cast: ``user, label, created_at``."""
        with self._read() as session:
            return _round_votes(session, round_id)

    def workshop_vote(self, round_id: int, user: str) -> str | None:
        """This person's vote in the round (None before they vote): what their phone shows."""
        with self._read() as session:
            return session.scalar(select(WorkshopVoteRow.label).where(WorkshopVoteRow.round_id == round_id,
                                                                      WorkshopVoteRow.user == user))

    def integrity_ok(self) -> bool:
        """The database's own consistency check (SQLite ``PRAGMA integrity_check``; other servers: reachable)."""
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                return connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            return connection.exec_driver_sql("SELECT 1").scalar() == 1


class Tx:
    """The statements one write transaction may run; obtained only from :meth:`Store.write`."""

    def __init__(self, session: Session, store: Store):
        self.session = session
        self.store = store

    def lock_project(self, project_id: int) -> Project:
        """Lock the project row until commit (PostgreSQL; SQLite already holds the write lock)."""
        row = self.session.scalars(select(ProjectRow).where(ProjectRow.id == project_id).with_for_update()).first()
        if row is None:
            raise KeyError(f"No project with id {project_id}.")
        return _project(row)

    def project(self, project_id: int) -> Project:
        return _project(self.session.get(ProjectRow, project_id))

    def add_project(self, *, name: str, dataset_hash: str, source: str, schema: Schema, model_kind: str,
                    retrain_policy: str = "every", retrain_every: int = 5, threshold: float = 0.7,
                    seed: int = 0) -> Project:
        row = ProjectRow(name=name, dataset_hash=dataset_hash, source=source, schema_json=schema.to_json(),
                         model_kind=model_kind, retrain_policy=retrain_policy, retrain_every=retrain_every,
                         threshold=threshold, seed=seed)
        self.session.add(row)
        self.session.flush()
        return _project(row)

    def update_project(self, project_id: int, **settings) -> Project:
        row = self.session.get(ProjectRow, project_id)
        for key, value in settings.items():
            setattr(row, key, value)
        self.session.flush()
        return _project(row)

    def latest_decision(self, project_id: int, row_key: str, *, user: str | None = None) -> dict | None:
        """The newest decision on one row (id, user, new_label, created_at), read inside this transaction;
        ``user``: that person's newest (their vote)."""
        query = (select(AnnotationRow.id, AnnotationRow.user, AnnotationRow.new_label, AnnotationRow.created_at)
                 .where(AnnotationRow.project_id == project_id, AnnotationRow.row_key == row_key))
        if user is not None:
            query = query.where(AnnotationRow.user == user)
        found = self.session.execute(query.order_by(AnnotationRow.id.desc()).limit(1)).first()
        return None if found is None else found._asdict()

    def row_decisions(self, project_id: int, row_key: str) -> pd.DataFrame:
        """One row's decisions, oldest first, read inside this transaction (the votes a lead settles)."""
        query = select(*[getattr(AnnotationRow, c) for c in DECISION_COLUMNS]).where(
            AnnotationRow.project_id == project_id, AnnotationRow.row_key == str(row_key))
        return pd.DataFrame(self.session.execute(query.order_by(AnnotationRow.id)).all(), columns=DECISION_COLUMNS)

    # ---- leases: who is looking at which queued row
    def drop_expired_leases(self, project_id: int, now: datetime) -> None:
        self.session.execute(delete(LeaseRow).where(LeaseRow.project_id == project_id, LeaseRow.expires_at < now))

    def labellers(self, project_id: int, keys: list[str]) -> dict[str, set[str]]:
        """Who has labelled each of these rows (any kind of decision)."""
        found: dict[str, set[str]] = {}
        for chunk in range(0, len(keys), 500):
            rows = self.session.execute(select(AnnotationRow.row_key, AnnotationRow.user).distinct().where(
                AnnotationRow.project_id == project_id, AnnotationRow.row_key.in_(keys[chunk:chunk + 500])))
            for key, user in rows:
                found.setdefault(key, set()).add(user)
        return found

    def lease_holders(self, project_id: int, keys: list[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for chunk in range(0, len(keys), 500):
            rows = self.session.execute(select(LeaseRow.row_key, LeaseRow.user).where(
                LeaseRow.project_id == project_id, LeaseRow.row_key.in_(keys[chunk:chunk + 500])))
            for key, user in rows:
                found.setdefault(key, set()).add(user)
        return found

    def replace_leases(self, project_id: int, user: str, keys: list[str], expires_at: datetime) -> None:
        """This person now holds exactly these rows until ``expires_at``."""
        self.session.execute(delete(LeaseRow).where(LeaseRow.project_id == project_id, LeaseRow.user == user))
        self.session.add_all(LeaseRow(project_id=project_id, row_key=k, user=user, expires_at=expires_at)
                             for k in keys)
        self.session.flush()

    def add_decision(self, project_id: int, decision: Decision) -> int:
        row = AnnotationRow(project_id=project_id, **asdict(decision))
        self.session.add(row)
        self.session.flush()
        return row.id

    def current_snapshot(self, project_id: int) -> int:
        return _current_snapshot(self.session, project_id)

    def last_decision_count_after(self, project_id: int, decision_id: int) -> int:
        """How many decisions of the project are newer than ``decision_id``."""
        return _count_decisions_after(self.session, project_id, decision_id)

    def add_event(self, *, project_id: int | None, actor: str, action: str, object: str,
                  before: dict | None = None, after: dict | None = None, note: str = "") -> int:
        row = EventRow(project_id=project_id, actor=actor, action=action, object=object,
                       before_json=None if before is None else json.dumps(before, default=str),
                       after_json=None if after is None else json.dumps(after, default=str), note=note)
        self.session.add(row)
        self.session.flush()
        return row.id

    def add_explanation_feedback(self, project_id: int, *, row_key: str, model_version: int, method: str,
                                 feature: str | None, verdict: str, note: str, created_by: str) -> int:
        row = ExplanationFeedbackRow(project_id=project_id, row_key=row_key, model_version=model_version,
                                     method=method, feature=feature, verdict=verdict, note=note, created_by=created_by)
        self.session.add(row)
        self.session.flush()
        return row.id

    def add_counterfactual(self, project_id: int, *, row_key: str, model_version: int, source: str,
                           settings_json: str, result_json: str, note: str, created_by: str) -> int:
        row = CounterfactualRow(project_id=project_id, row_key=row_key, model_version=model_version, source=source,
                                settings_json=settings_json, result_json=result_json, note=note, created_by=created_by)
        self.session.add(row)
        self.session.flush()
        return row.id

    # ---- accounts
    def has_users(self) -> bool:
        return _has_users(self.session)

    def user_role(self, name: str) -> str | None:
        return self.session.scalars(select(UserRow.role).where(UserRow.name == name)).first()

    def add_user(self, *, name: str, role: str, password_hash: str | None, created_by: str) -> User:
        row = UserRow(name=name, role=role, password_hash=password_hash, created_by=created_by)
        self.session.add(row)
        self.session.flush()
        return _user(row)

    def update_user(self, name: str, **values) -> User:
        row = self.session.scalars(select(UserRow).where(UserRow.name == name)).one()
        for key, value in values.items():
            setattr(row, key, value)
        self.session.flush()
        return _user(row)

    def count_admins(self) -> int:
        return self.session.scalar(select(func.count()).select_from(UserRow).where(UserRow.role == "admin"))

    def add_brief(self, project_id: int, *, created_by: str, brief_json: str) -> int:
        """Store a brief as the project's next brief version (the project row is locked) and return its number."""
        latest = self.session.scalar(select(func.max(BriefRow.version)).where(BriefRow.project_id == project_id)) or 0
        self.session.add(BriefRow(project_id=project_id, version=latest + 1, created_by=created_by,
                                  brief_json=brief_json))
        self.session.flush()
        return latest + 1

    def latest_brief(self, project_id: int) -> str | None:
        """The newest brief's JSON as this transaction sees it (what a save changes)."""
        return _latest_brief(self.session, project_id)

    # ---- complaints
    def add_complaint(self, project_id: int, *, row_key: str, reason: str, created_by: str) -> Complaint:
        row = ComplaintRow(project_id=project_id, row_key=row_key, reason=reason, created_by=created_by,
                           status="open", resolution_note="")
        self.session.add(row)
        self.session.flush()
        return _complaint(row)

    def complaint(self, project_id: int, complaint_id: int) -> Complaint | None:
        row = self.session.get(ComplaintRow, complaint_id)
        return None if row is None or row.project_id != project_id else _complaint(row)

    def resolve_complaint(self, complaint_id: int, *, resolved_by: str, resolution: str, note: str,
                          decision_id: int | None) -> Complaint:
        row = self.session.get(ComplaintRow, complaint_id)
        row.status, row.resolved_by, row.resolved_at = "resolved", resolved_by, _now()
        row.resolution, row.resolution_note, row.decision_id = resolution, note, decision_id
        self.session.flush()
        return _complaint(row)

    # ---- withdrawal
    def projects_with_dataset(self, dataset_hash: str) -> list[int]:
        """Projects whose data is this stored dataset (projects made from the same content share one)."""
        return list(self.session.scalars(select(ProjectRow.id).where(ProjectRow.dataset_hash == dataset_hash)
                                         .order_by(ProjectRow.id)))

    def delete_row_records(self, project_id: int, row_keys: list[str]) -> dict[str, int]:
        """Delete every record about these rows from every table with ``project_id`` and ``row_key`` columns.

        The tables are read from the database itself (not from a list), so a table a later feature
        adds is covered without anyone remembering to. Returns rows deleted per table.
        """
        metadata = MetaData()
        metadata.reflect(bind=self.session.connection())
        removed = {}
        for table in withdraw.row_tables(metadata):
            for start in range(0, len(row_keys), 500):  # bound the statement's parameters
                result = self.session.execute(table.delete().where(
                    table.c.project_id == project_id, table.c.row_key.in_(row_keys[start:start + 500])))
                removed[table.name] = removed.get(table.name, 0) + (result.rowcount or 0)
        return removed

    def scrub_events(self, project_id: int, row_keys: list[str], values: list[str], secrets) -> tuple[int, int]:
        """Delete the project's events about these rows ("row <key>") and redact the others that hold one of
        ``values`` (``secrets``: their regex, :func:`hitl_core.withdraw.pattern`); returns (deleted, redacted).

        Both steps are filtered in SQL, so a project with a million decision events is not read into Python.
        """
        objects = withdraw.row_objects(row_keys)
        deleted = sum(self.session.execute(delete(EventRow).where(
            EventRow.project_id == project_id, EventRow.object.in_(objects[i:i + 500]))).rowcount or 0
            for i in range(0, len(objects), 500))
        terms = withdraw.search_terms(values)
        columns = (EventRow.object, EventRow.before_json, EventRow.after_json, EventRow.note)
        redacted: set[int] = set()
        for i in range(0, len(terms), 50):
            found = or_(*(c.contains(t, autoescape=True) for t in terms[i:i + 50] for c in columns))
            for row in self.session.scalars(select(EventRow).where(EventRow.project_id == project_id, found)):
                texts = (row.object, row.note or "", row.before_json, row.after_json)
                clean = (withdraw.redact(texts[0], secrets), withdraw.redact(texts[1], secrets),
                         withdraw.redact_json(texts[2], secrets), withdraw.redact_json(texts[3], secrets))
                # a value inside a longer token ("12" in "120") is no match: only a real change counts
                if clean[:2] != texts[:2] or clean[2:] != tuple(withdraw.redact_json(t, None) for t in texts[2:]):
                    row.object, row.note, row.before_json, row.after_json = clean
                    redacted.add(row.id)
        self.session.flush()
        return deleted, len(redacted)

    def drop_model_files(self, project_id: int, secrets, *, reason: str) -> list[int]:
        """Empty the model file of every version of the project (it may hold removed values) and redact its
        stored metrics; the versions stay listed, marked so they are never loaded or restored."""
        dropped = []
        for row in self.session.scalars(select(ModelVersionRow).where(ModelVersionRow.project_id == project_id)):
            row.metrics_json = withdraw.redact_json(row.metrics_json, secrets)
            if row.model_format != withdraw.MODEL_WITHDRAWN:
                row.model_blob, row.model_sha256, row.model_format = b"", "", withdraw.MODEL_WITHDRAWN
                row.status_reason = (f"{row.status_reason}; {reason}" if row.status_reason else reason)
                dropped.append(row.version)
        self.session.flush()
        return sorted(dropped)

    def model_withdrawn(self, project_id: int, version: int) -> bool:
        return self.session.scalar(select(ModelVersionRow.model_format).where(
            ModelVersionRow.project_id == project_id, ModelVersionRow.version == version)) == withdraw.MODEL_WITHDRAWN

    def cancel_running_jobs(self, project_id: int, *, error: str) -> list[int]:
        """Fail the project's running jobs: their worker trains on data that is gone, and its version is then
        discarded (:func:`hitl_core.actions.record_version` checks the job is still its own)."""
        jobs = [j for j in _open_jobs(self.session, project_id) if j.status == "running"]
        for job in jobs:
            self.finish_job(job.id, status="failed", error=error)
        return [j.id for j in jobs]

    # ---- gold rows
    def gold_label(self, project_id: int, row_key: str) -> str | None:
        return self.session.scalar(select(GoldRow.label).where(GoldRow.project_id == project_id,
                                                               GoldRow.row_key == row_key))

    def set_gold_label(self, project_id: int, row_key: str, label: str | None, actor: str) -> None:
        """Add, change or (``None``) remove one gold row."""
        row = self.session.scalars(select(GoldRow).where(GoldRow.project_id == project_id,
                                                         GoldRow.row_key == row_key)).first()
        if label is None:
            if row is not None:
                self.session.delete(row)
        elif row is None:
            self.session.add(GoldRow(project_id=project_id, row_key=row_key, label=label, created_by=actor))
        else:
            row.label, row.created_by, row.created_at = label, actor, _now()
        self.session.flush()

    def gold_rate(self, project_id: int) -> float:
        return _gold_rate(self.session, project_id)

    def set_gold_rate(self, project_id: int, rate: float, actor: str) -> None:
        row = self.session.get(GoldSettingRow, project_id)
        if row is None:
            self.session.add(GoldSettingRow(project_id=project_id, rate=rate, updated_by=actor))
        else:
            row.rate, row.updated_by, row.updated_at = rate, actor, _now()
        self.session.flush()

    # ---- live workshop
    def add_workshop_round(self, project_id: int, row_key: str, opened_by: str) -> Round:
        row = WorkshopRoundRow(project_id=project_id, row_key=row_key, opened_by=opened_by, opened_at=_now())
        self.session.add(row)
        self.session.flush()
        return _round(row, 0)

    def open_workshop_rounds(self, project_id: int) -> list[Round]:
        rows = self.session.scalars(select(WorkshopRoundRow).where(WorkshopRoundRow.project_id == project_id,
                                                                   WorkshopRoundRow.closed_at.is_(None)))
        return [_round(r, _vote_count(self.session, r.id)) for r in rows]

    def workshop_round(self, project_id: int, round_id: int | None = None) -> Round | None:
        return _newest_round(self.session, project_id, round_id)

    def set_workshop_round(self, round_id: int, **values: object) -> Round:
        """Stamp ``revealed_at`` (with the model's answer) or ``closed_at``."""
        row = self.session.get(WorkshopRoundRow, round_id)
        for key, value in values.items():
            setattr(row, key, value)
        self.session.flush()
        return _round(row, _vote_count(self.session, row.id))

    def workshop_votes(self, round_id: int) -> pd.DataFrame:
        return _round_votes(self.session, round_id)

    def workshop_vote(self, round_id: int, user: str) -> str | None:
        return self.session.scalar(select(WorkshopVoteRow.label).where(WorkshopVoteRow.round_id == round_id,
                                                                       WorkshopVoteRow.user == user))

    def put_workshop_vote(self, workshop_round: Round, user: str, label: str, decision_id: int) -> None:
        """This person's vote in the round is now ``label`` (an earlier one is deleted: one row per person)."""
        self.session.execute(delete(WorkshopVoteRow).where(WorkshopVoteRow.round_id == workshop_round.id,
                                                           WorkshopVoteRow.user == user))
        self.session.add(WorkshopVoteRow(round_id=workshop_round.id, project_id=workshop_round.project_id,
                                         row_key=workshop_round.row_key, user=user, label=label,
                                         decision_id=decision_id, created_at=_now()))
        self.session.flush()

    # ---- versions
    def current_version(self, project_id: int) -> ModelVersion | None:
        return _current_version(self.session, project_id)

    def version(self, project_id: int, version: int) -> ModelVersion | None:
        return _version_of(self.session, project_id, version)

    def mark_accepted(self, project_id: int, version: int) -> None:
        """A superseded version that was made current is no longer "superseded" once replaced again."""
        self.session.execute(update(ModelVersionRow).where(
            ModelVersionRow.project_id == project_id, ModelVersionRow.version == version).values(status="accepted"))

    def add_model_version(self, project_id: int, *, model: FittedModel, n_human_labels: int, n_train: int,
                          n_decisions: int, last_decision_id: int, trigger: str, evaluation: dict,
                          status: str, status_reason: str, job_id: int | None,
                          stored: model_files.ModelFile) -> ModelVersion:
        """Store a trained model with its metrics under the project's next version number.

        ``stored``: ``model_files.dumps(model)``, made before the transaction began so the write lock is not
        held while it serialises (0.1-0.6 s for a 50k-row forest).
        """
        latest = self.session.scalar(select(func.max(ModelVersionRow.version))
                                     .where(ModelVersionRow.project_id == project_id)) or 0
        row = ModelVersionRow(project_id=project_id, version=latest + 1, model_kind=model.kind,
                              n_human_labels=n_human_labels, n_train=n_train, n_decisions=n_decisions,
                              trigger=trigger, fit_seconds=model.fit_seconds, metrics_json=json.dumps(evaluation),
                              model_blob=stored.blob, model_sha256=stored.sha256, model_format=stored.format,
                              last_decision_id=last_decision_id, status=status,
                              status_reason=status_reason, job_id=job_id)
        self.session.add(row)
        self.session.flush()
        current = self.session.scalar(select(ProjectRow.current_version).where(ProjectRow.id == project_id))
        return _version(row, row.version if status == "accepted" else current)

    # ---- jobs
    def open_jobs(self, project_id: int) -> list[Job]:
        return _open_jobs(self.session, project_id)

    def add_job(self, project_id: int, *, trigger: str, requested_by: str) -> Job:
        row = JobRow(project_id=project_id, kind="retrain", status="queued", trigger=trigger,
                     requested_by=requested_by, attempts=0, error="")
        self.session.add(row)
        self.session.flush()
        return _job(row)

    def queued_project_ids(self) -> list[int]:
        """Projects with a queued job, oldest request first."""
        rows = self.session.execute(select(JobRow.project_id, func.min(JobRow.id)).where(JobRow.status == "queued")
                                    .group_by(JobRow.project_id).order_by(func.min(JobRow.id))).all()
        return [r[0] for r in rows]

    def wait_for_project(self, project_id: int, *, seconds: float) -> bool:
        """Lock the project row, waiting at most ``seconds`` for its writers; ``False`` on a timeout.

        PostgreSQL: ``lock_timeout`` inside a savepoint, so a timeout leaves this transaction usable.
        SQLite already holds the database's write lock.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return self.session.get(ProjectRow, project_id) is not None
        savepoint = self.session.begin_nested()
        try:
            self.session.execute(text(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'"))
            found = self.session.scalars(select(ProjectRow.id).where(ProjectRow.id == project_id)
                                         .with_for_update()).first() is not None
            self.session.execute(text("SET LOCAL lock_timeout = 0"))
            savepoint.commit()
            return found
        except OperationalError:
            savepoint.rollback()
            return False

    def owns_job(self, job_id: int, worker: str | None) -> bool:
        """Whether the job is still running under ``worker`` (or queued/running at all, for ``None``)."""
        row = self.session.get(JobRow, job_id)
        return row is not None and row.status == "running" and (worker is None or row.worker == worker)

    def finish_job(self, job_id: int, *, status: str, result_version: int | None = None, error: str = "") -> Job:
        return self.set_job(job_id, status=status, result_version=result_version, error=error, finished_at=_now())

    def running_jobs(self) -> list[Job]:
        return [_job(r) for r in self.session.scalars(select(JobRow).where(JobRow.status == "running"))]

    def set_job(self, job_id: int, **values) -> Job:
        row = self.session.get(JobRow, job_id)
        for key, value in values.items():
            setattr(row, key, value)
        self.session.flush()
        return _job(row)

    def beat_job(self, job_id: int, worker: str) -> bool:
        """Refresh a running job's lease; ``False`` when the job is no longer this worker's."""
        result = self.session.execute(update(JobRow).where(JobRow.id == job_id, JobRow.worker == worker,
                                                           JobRow.status == "running").values(heartbeat_at=_now()))
        return result.rowcount == 1

    def beat_worker(self, name: str) -> None:
        row = self.session.get(WorkerRow, name)
        if row is None:
            self.session.add(WorkerRow(name=name, started_at=_now(), heartbeat_at=_now()))
        else:
            row.heartbeat_at = _now()

    def remove_worker(self, name: str) -> None:
        row = self.session.get(WorkerRow, name)
        if row is not None:
            self.session.delete(row)

    # ---- the project's rows
    def replace_dataset(self, project_id: int, frame: pd.DataFrame, split: pd.Series) -> str:
        """Point the project at a new version of its rows (batch added, rows withdrawn); returns its hash.

        ``frame``: every row of the project, indexed by row key (as :attr:`Dataset.frame`); ``split``:
        ``"train"``/``"validation"``/``"test"`` for exactly those keys. Stored as a new ``datasets`` row
        keyed by a hash of both (reused when identical content is already stored); the old row is
        deleted once no project points at it. Decisions, versions and batch tags stay as they are.
        """
        if not split.index.equals(frame.index):
            raise ValueError("replace_dataset needs a split for exactly the frame's rows, in the same order.")
        project = self.session.get(ProjectRow, project_id)
        old = self.session.get(DatasetRow, project.dataset_hash)
        split_frame = split.rename("split").astype(object).to_frame()
        new_hash = hashlib.sha256((content_hash(frame) + content_hash(split_frame)).encode()).hexdigest()[:16]
        if new_hash == old.hash:
            return new_hash
        if self.session.get(DatasetRow, new_hash) is None:
            self.session.add(DatasetRow(hash=new_hash, name=old.name, frame=_to_parquet(frame),
                                        split=_to_parquet(split_frame)))
        project.dataset_hash = new_hash
        self.session.flush()
        if not self.session.scalar(select(func.count()).where(ProjectRow.dataset_hash == old.hash)):
            self.session.execute(delete(DatasetRow).where(DatasetRow.hash == old.hash))
        return new_hash

    def add_batch(self, project_id: int, *, source: str, row_keys: pd.Index, created_by: str,
                  drift: dict | None) -> Batch:
        """Record a batch under the project's next number and tag its rows with it."""
        latest = self.session.scalar(select(func.max(BatchRow.number)).where(BatchRow.project_id == project_id)) or 0
        row = BatchRow(project_id=project_id, number=latest + 1, source=source, n_rows=len(row_keys),
                       created_by=created_by, drift_json=None if drift is None else json.dumps(drift))
        self.session.add(row)
        self.session.flush()
        self.session.execute(insert(BatchMemberRow), [{"project_id": project_id, "row_key": str(k), "batch_id": row.id}
                                                      for k in row_keys])
        return _batch(row)


def _version_of(session: Session, project_id: int, version: int | None) -> ModelVersion | None:
    """One version of a project, with its status against the project's current version."""
    if version is None:
        return None
    current = session.scalar(select(ProjectRow.current_version).where(ProjectRow.id == project_id))
    row = session.scalars(select(ModelVersionRow).where(
        ModelVersionRow.project_id == project_id, ModelVersionRow.version == version)).first()
    return None if row is None else _version(row, current)


def _current_version(session: Session, project_id: int) -> ModelVersion | None:
    current = session.scalar(select(ProjectRow.current_version).where(ProjectRow.id == project_id))
    return _version_of(session, project_id, current)


def _current_snapshot(session: Session, project_id: int) -> int:
    return session.scalar(
        select(ModelVersionRow.last_decision_id).join(
            ProjectRow, (ProjectRow.id == ModelVersionRow.project_id)
            & (ProjectRow.current_version == ModelVersionRow.version))
        .where(ProjectRow.id == project_id)) or 0


def _latest_brief(session: Session, project_id: int) -> str | None:
    return session.scalar(select(BriefRow.brief_json).where(BriefRow.project_id == project_id)
                          .order_by(BriefRow.version.desc()).limit(1))


def _open_jobs(session: Session, project_id: int) -> list[Job]:
    """Queued and running jobs of a project, oldest first."""
    rows = session.scalars(select(JobRow).where(JobRow.project_id == project_id,
                                                JobRow.status.in_(("queued", "running"))).order_by(JobRow.id))
    return [_job(r) for r in rows]


def _count_decisions_after(session: Session, project_id: int, decision_id: int) -> int:
    return session.scalar(select(func.count()).where(AnnotationRow.project_id == project_id,
                                                     AnnotationRow.id > decision_id)) or 0


def _vote_count(session: Session, round_id: int) -> int:
    return session.scalar(select(func.count()).select_from(WorkshopVoteRow)
                          .where(WorkshopVoteRow.round_id == round_id)) or 0


def _round_votes(session: Session, round_id: int) -> pd.DataFrame:
    query = (select(WorkshopVoteRow.user, WorkshopVoteRow.label, WorkshopVoteRow.created_at)
             .where(WorkshopVoteRow.round_id == round_id).order_by(WorkshopVoteRow.created_at, WorkshopVoteRow.id))
    return pd.DataFrame(session.execute(query).all(), columns=["user", "label", "created_at"])


def _newest_round(session: Session, project_id: int, round_id: int | None = None) -> Round | None:
    def of_round(column):  # a correlated subquery over the round's votes
        return select(column).where(WorkshopVoteRow.round_id == WorkshopRoundRow.id).scalar_subquery()

    query = select(WorkshopRoundRow, of_round(func.count(WorkshopVoteRow.id)),
                   of_round(func.coalesce(func.max(WorkshopVoteRow.decision_id), 0))).where(
        WorkshopRoundRow.project_id == project_id)
    if round_id is not None:
        query = query.where(WorkshopRoundRow.id == round_id)
    found = session.execute(query.order_by(WorkshopRoundRow.id.desc()).limit(1)).first()
    return None if found is None else _round(found[0], found[1], found[2])


def _round(row: WorkshopRoundRow, n_votes: int, last_vote: int = 0) -> Round:
    return Round(id=row.id, project_id=row.project_id, row_key=row.row_key, opened_by=row.opened_by,
                 opened_at=row.opened_at, revealed_at=row.revealed_at, closed_at=row.closed_at,
                 model_version=row.model_version, predicted_label=row.predicted_label, confidence=row.confidence,
                 n_votes=int(n_votes), last_vote=int(last_vote))


def _has_users(session: Session) -> bool:
    return session.scalars(select(UserRow.id).limit(1)).first() is not None


def _user(row: UserRow) -> User:
    return User(name=row.name, role=row.role, created_at=row.created_at, created_by=row.created_by,
                has_password=bool(row.password_hash))


def _complaint(row: ComplaintRow) -> Complaint:
    return Complaint(id=row.id, project_id=row.project_id, row_key=row.row_key, reason=row.reason,
                     created_by=row.created_by, created_at=row.created_at, status=row.status,
                     resolved_by=row.resolved_by, resolved_at=row.resolved_at, resolution=row.resolution,
                     resolution_note=row.resolution_note or "", decision_id=row.decision_id)


def _gold_rate(session: Session, project_id: int) -> float:
    return session.scalar(select(GoldSettingRow.rate).where(GoldSettingRow.project_id == project_id)) or 0.0


def _project(row: ProjectRow) -> Project:
    return Project(id=row.id, name=row.name, dataset_hash=row.dataset_hash, source=row.source,
                   schema=Schema.from_json(row.schema_json), model_kind=row.model_kind,
                   retrain_policy=row.retrain_policy, retrain_every=row.retrain_every, threshold=row.threshold,
                   seed=row.seed, created_at=row.created_at, current_version=row.current_version,
                   costs_json=row.costs_json, overlap=row.overlap, blind=bool(row.blind), guidelines=row.guidelines,
                   reasons=tuple(json.loads(row.reasons_json or "[]")))


def _version(row: ModelVersionRow, current: int | None) -> ModelVersion:
    metrics = json.loads(row.metrics_json)
    status = "current" if row.version == current else "superseded" if row.status == "superseded" else "older"
    return ModelVersion(id=row.id, project_id=row.project_id, version=row.version, model_kind=row.model_kind,
                        n_human_labels=row.n_human_labels, n_train=row.n_train, n_decisions=row.n_decisions,
                        trigger=row.trigger,
                        fit_seconds=row.fit_seconds, created_at=row.created_at, validation=metrics["validation"],
                        test=metrics["test"], baselines=metrics["baselines"], confusion=metrics["confusion"],
                        fairness=metrics.get("fairness", []), last_decision_id=row.last_decision_id or 0,
                        status=status, status_reason=row.status_reason or "", job_id=row.job_id)


def _job(row: JobRow) -> Job:
    return Job(id=row.id, project_id=row.project_id, kind=row.kind, status=row.status, trigger=row.trigger,
               requested_by=row.requested_by, requested_at=row.requested_at, started_at=row.started_at,
               finished_at=row.finished_at, heartbeat_at=row.heartbeat_at, worker=row.worker, attempts=row.attempts,
               error=row.error or "", result_version=row.result_version)


def _batch(row: BatchRow) -> Batch:
    return Batch(id=row.id, project_id=row.project_id, number=row.number, source=row.source, n_rows=row.n_rows,
                 created_by=row.created_by, created_at=row.created_at,
                 drift=None if row.drift_json is None else json.loads(row.drift_json))


def event_record(row: pd.Series) -> Event:
    """One row of :meth:`Store.events` as an :class:`Event` (before/after parsed)."""
    def parsed(text) -> dict | None:  # pandas 3 hands a missing text back as nan, not None
        return None if text is None or (isinstance(text, float) and pd.isna(text)) else json.loads(text)

    return Event(id=int(row["id"]), project_id=None if pd.isna(row["project_id"]) else int(row["project_id"]),
                 actor=row["actor"], created_at=row["created_at"], action=row["action"], object=row["object"],
                 before=parsed(row["before"]), after=parsed(row["after"]),
                 note=row["note"] if isinstance(row["note"], str) else "")
