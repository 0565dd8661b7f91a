"""SQLAlchemy tables and the only code that reads or writes SQL.

SQLite file by default, PostgreSQL (or any SQLAlchemy URL) through ``HITL_DATABASE_URL``.
Every write commits before returning, so a caller may tell the user "saved" once it returns.
"""
from __future__ import annotations

import io
import json
import pickle
import zlib
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, create_engine, func, select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from hitl_core.data import Dataset, Schema
from hitl_core.models import FittedModel
from hitl_core.records import Decision, ModelVersion, Project


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


class AnnotationRow(Base):
    __tablename__ = "annotations"
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
    model_blob: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded only by load_model; zlib(pickle(FittedModel)); only this app writes it


def _to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=True)
    return buffer.getvalue()


def _from_parquet(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created, and it is shared safely across threads."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    return create_engine(url, pool_pre_ping=True)


class Store:
    """Projects, datasets, human decisions and model versions, in one SQL database."""

    def __init__(self, url: str):
        self.engine = create_store_engine(url)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    # ---- datasets and projects
    def save_dataset(self, dataset: Dataset, dataset_hash: str) -> str:
        """Store a dataset and its split once; a second save of the same content keeps the first split."""
        with self._session.begin() as session:
            if session.get(DatasetRow, dataset_hash) is None:
                session.add(DatasetRow(
                    hash=dataset_hash, name=dataset.name,
                    frame=_to_parquet(dataset.frame), split=_to_parquet(dataset.split.to_frame()),
                ))
        return dataset_hash

    def has_dataset(self, dataset_hash: str) -> bool:
        with self._session() as session:
            return session.get(DatasetRow, dataset_hash) is not None

    def load_dataset(self, project: Project) -> Dataset:
        with self._session() as session:
            row = session.get(DatasetRow, project.dataset_hash)
            frame, split = _from_parquet(row.frame), _from_parquet(row.split)["split"]
            return Dataset(name=row.name, frame=frame, schema=project.schema, split=split)

    def load_dataset_split(self, dataset_hash: str) -> pd.Series:
        with self._session() as session:
            return _from_parquet(session.get(DatasetRow, dataset_hash).split)["split"]

    def create_project(self, *, name: str, dataset_hash: str, source: str, schema: Schema, model_kind: str,
                       retrain_policy: str = "every", retrain_every: int = 5, threshold: float = 0.7,
                       seed: int = 0) -> Project:
        with self._session.begin() as session:
            row = ProjectRow(name=name, dataset_hash=dataset_hash, source=source, schema_json=schema.to_json(),
                             model_kind=model_kind, retrain_policy=retrain_policy, retrain_every=retrain_every,
                             threshold=threshold, seed=seed)
            session.add(row)
            session.flush()
            return _project(row)

    def projects(self) -> list[Project]:
        with self._session() as session:
            return [_project(r) for r in session.scalars(select(ProjectRow).order_by(ProjectRow.id))]

    def project(self, project_id: int) -> Project:
        with self._session() as session:
            row = session.get(ProjectRow, project_id)
            if row is None:
                raise KeyError(f"No project with id {project_id}.")
            return _project(row)

    def update_project(self, project_id: int, **settings) -> Project:
        """Change a project's model or loop settings (model_kind, retrain_policy, retrain_every, threshold)."""
        allowed = {"model_kind", "retrain_policy", "retrain_every", "threshold", "name"}
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(f"Cannot change {sorted(unknown)}; only {sorted(allowed)}.")
        with self._session.begin() as session:
            row = session.get(ProjectRow, project_id)
            for key, value in settings.items():
                setattr(row, key, value)
            session.flush()
            return _project(row)

    # ---- human decisions
    def add_decisions(self, project_id: int, decisions: list[Decision]) -> int:
        """Append decisions in one transaction; returns how many were written."""
        with self._session.begin() as session:
            session.add_all(AnnotationRow(project_id=project_id, **asdict(d)) for d in decisions)
        return len(decisions)

    def decisions(self, project_id: int) -> pd.DataFrame:
        """Every decision of a project, oldest first (the audit trail of labels)."""
        columns = ["id", "row_key", "user", "created_at", "action", "old_label", "new_label",
                   "predicted_label", "confidence", "model_version", "note"]
        with self._session() as session:
            rows = session.execute(
                select(*[getattr(AnnotationRow, c) for c in columns])
                .where(AnnotationRow.project_id == project_id).order_by(AnnotationRow.id)
            ).all()
        return pd.DataFrame(rows, columns=columns)

    def count_decisions(self, project_id: int) -> int:
        with self._session() as session:
            return session.scalar(select(func.count()).where(AnnotationRow.project_id == project_id)) or 0

    # ---- model versions
    def add_model_version(self, project_id: int, *, model: FittedModel, n_human_labels: int, n_train: int,
                          n_decisions: int, trigger: str, validation: dict, test: dict, baselines: dict,
                          confusion: dict, fairness: list[dict] | None = None) -> ModelVersion:
        """Store a trained model with its metrics under the next version number of the project."""
        blob = zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 3)
        metrics = {"validation": validation, "test": test, "baselines": baselines, "confusion": confusion}
        if fairness:
            metrics["fairness"] = fairness  # validation fairness reports, one per attribute set (and class)
        metrics = json.dumps(metrics)
        for _attempt in range(3):  # two retrains racing for the same number: the loser takes the next one
            try:
                with self._session.begin() as session:
                    latest = session.scalar(select(func.max(ModelVersionRow.version))
                                            .where(ModelVersionRow.project_id == project_id)) or 0
                    row = ModelVersionRow(project_id=project_id, version=latest + 1, model_kind=model.kind,
                                          n_human_labels=n_human_labels, n_train=n_train, n_decisions=n_decisions,
                                          trigger=trigger, fit_seconds=model.fit_seconds, metrics_json=metrics, model_blob=blob)
                    session.add(row)
                    session.flush()
                    return _version(row)
            except IntegrityError:
                continue
        raise RuntimeError("Could not record the model version: the database kept refusing the version number.")

    def model_versions(self, project_id: int) -> list[ModelVersion]:
        with self._session() as session:
            rows = session.scalars(select(ModelVersionRow).where(ModelVersionRow.project_id == project_id)
                                   .order_by(ModelVersionRow.version))
            return [_version(r) for r in rows]

    def latest_version_number(self, project_id: int) -> int | None:
        """The newest version number alone: a cheap poll for pages that refresh when a new version lands."""
        with self._session() as session:
            return session.scalar(select(func.max(ModelVersionRow.version))
                                  .where(ModelVersionRow.project_id == project_id))

    def latest_version(self, project_id: int) -> ModelVersion | None:
        with self._session() as session:
            row = session.scalars(select(ModelVersionRow).where(ModelVersionRow.project_id == project_id)
                                  .order_by(ModelVersionRow.version.desc()).limit(1)).first()
            return None if row is None else _version(row)

    def load_model(self, project_id: int, version: int) -> FittedModel:
        with self._session() as session:
            blob = session.scalar(select(ModelVersionRow.model_blob).where(
                ModelVersionRow.project_id == project_id, ModelVersionRow.version == version))
        if blob is None:
            raise KeyError(f"Project {project_id} has no model version {version}.")
        return pickle.loads(zlib.decompress(blob))


def _project(row: ProjectRow) -> Project:
    return Project(id=row.id, name=row.name, dataset_hash=row.dataset_hash, source=row.source,
                   schema=Schema.from_json(row.schema_json), model_kind=row.model_kind,
                   retrain_policy=row.retrain_policy, retrain_every=row.retrain_every, threshold=row.threshold,
                   seed=row.seed, created_at=row.created_at)


def _version(row: ModelVersionRow) -> ModelVersion:
    metrics = json.loads(row.metrics_json)
    return ModelVersion(id=row.id, project_id=row.project_id, version=row.version, model_kind=row.model_kind,
                        n_human_labels=row.n_human_labels, n_train=row.n_train, n_decisions=row.n_decisions,
                        trigger=row.trigger,
                        fit_seconds=row.fit_seconds, created_at=row.created_at, validation=metrics["validation"],
                        test=metrics["test"], baselines=metrics["baselines"], confusion=metrics["confusion"],
                        fairness=metrics.get("fairness", []))
