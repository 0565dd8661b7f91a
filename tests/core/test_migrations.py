"""Alembic owns the schema: a database made by main before Alembic upgrades on open with nothing lost."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from alembic.script import ScriptDirectory

from hitl_core import actions, jobs
from hitl_core.migrations import alembic_config
from hitl_core.records import DecisionRequest
from hitl_core.store import Store

WAVE1 = Path(__file__).resolve().parents[1] / "fixtures" / "wave1.db"  # made by tests/fixtures/make_wave1.py


def _heads() -> list[tuple[str]]:
    return sorted((head,) for head in ScriptDirectory.from_config(alembic_config()).get_heads())


def _raw(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def test_a_wave1_database_upgrades_keeping_every_decision_and_version(tmp_path: Path) -> None:
    path = tmp_path / "wave1.db"
    shutil.copy(WAVE1, path)
    decisions_before = _raw(path, "SELECT id, project_id, row_key, user, old_label, new_label, note FROM annotations")
    versions_before = _raw(path, "SELECT project_id, version, n_decisions, metrics_json FROM model_versions")
    store = Store(f"sqlite:///{path}")
    try:
        assert sorted(_raw(path, "SELECT version_num FROM alembic_version")) == _heads()
        assert _raw(path, "SELECT id, project_id, row_key, user, old_label, new_label, note FROM annotations") == \
            decisions_before
        assert _raw(path, "SELECT project_id, version, n_decisions, metrics_json FROM model_versions") == \
            versions_before
        project = store.projects()[0]
        versions = store.model_versions(project.id)
        assert project.current_version == 2 and [v.status for v in versions] == ["older", "current"]
        assert [v.last_decision_id for v in versions] == [0, 3]  # v2 was trained on the first 3 decisions
        assert store.load_model(project.id, 2).kind == "logreg"
        assert len(store.decisions(project.id)) == 5 and store.integrity_ok()
    finally:
        store.engine.dispose()


def test_an_upgraded_wave1_database_takes_new_decisions_and_retrains(tmp_path: Path) -> None:
    path = tmp_path / "wave1.db"
    shutil.copy(WAVE1, path)
    store = Store(f"sqlite:///{path}")
    try:
        project = store.projects()[0]
        key = store.decisions(project.id)["row_key"].iloc[0]
        outcome = actions.record_decision(store, project.id, "bob", DecisionRequest(key, "class_2", expected="class_1"))
        assert outcome.saved[0].old_label == "class_1"
        version = jobs.run_now(store, project.id, "bob")
        assert version.version == 3 and version.n_decisions == 6 and version.status == "current"
    finally:
        store.engine.dispose()


def test_an_upgraded_wave1_database_takes_a_batch_keeping_every_old_row(tmp_path: Path) -> None:
    path = tmp_path / "wave1.db"
    shutil.copy(WAVE1, path)
    store = Store(f"sqlite:///{path}")
    try:
        project = store.projects()[0]
        old = store.load_dataset(project)
        assert store.batches(project.id) == [] and store.batch_rows(project.id).empty
        new = old.frame.head(20).drop(columns=[project.schema.target]).reset_index(drop=True)
        batch = actions.add_batch(store, project.id, "bob", new, source="wave2.csv")
        data = store.load_dataset(store.project(project.id))
        assert batch.number == 1 and len(data.frame) == len(old.frame) + 20
        assert data.frame.loc[old.frame.index].equals(old.frame) and data.split.loc[old.split.index].equals(old.split)
        assert len(store.decisions(project.id)) == 5 and store.integrity_ok()
    finally:
        store.engine.dispose()


def test_opening_twice_does_not_migrate_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    Store(url).engine.dispose()
    store = Store(url)
    try:
        assert sorted(_raw(tmp_path / "hitl.db", "SELECT version_num FROM alembic_version")) == _heads()
        assert store.projects() == []
    finally:
        store.engine.dispose()


def test_the_models_and_the_migrations_describe_the_same_schema(tmp_path: Path) -> None:
    """Autogenerate finds nothing to add: every table and column of store.py is in a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hitl_core.store import Base

    store = Store(f"sqlite:///{tmp_path / 'hitl.db'}")
    try:
        with store.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        significant = [d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")]
        assert significant == []
    finally:
        store.engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hitl.db'}")
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 30_000
    finally:
        store.engine.dispose()


def test_the_schema_has_one_head() -> None:
    """Parallel branches must be joined by a merge revision before they land, so every database ends alike."""
    assert _heads() == [("0014",)]
