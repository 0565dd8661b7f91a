"""The store against a real throwaway PostgreSQL server: SQLite would hide dialect bugs (bytea, time zones)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, jobs, loop
from hitl_core.data import Dataset, Schema, content_hash
from hitl_core.models import predict_with_confidence
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import ACTOR, bare_project, corrections, start_wine
from tests.support.postgres import postgres_server


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """One server for the whole module (start-up costs ~1 s); skipped without PostgreSQL unless HITL_REQUIRE_PG=1."""
    with postgres_server() as server:
        yield server.url


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    yield store
    store.engine.dispose()


def test_correction_survives_restart_on_postgres(pg_url: str, wine: Sample, wine_schema: Schema) -> None:
    store = Store(pg_url)
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="manual")
    outcome = actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 4))
    assert len(outcome.saved) == 4 and outcome.retrain is None  # manual policy
    version = actions.retrain(store, project.id, ACTOR, trigger="manual")
    project = store.project(project.id)
    decisions, versions = store.decisions(project.id), store.model_versions(project.id)
    dataset = store.load_dataset(project)
    before = predict_with_confidence(store.load_model(project.id, 2), dataset.features, wine_schema.classes).proba
    store.engine.dispose()

    reopened = Store(pg_url)
    try:
        assert reopened.project(project.id) == project and project.current_version == 2
        pd.testing.assert_frame_equal(reopened.decisions(project.id), decisions)
        assert len(decisions) == 4 and set(decisions["action"]) == {"override"}
        assert reopened.model_versions(project.id) == versions
        assert [(v.version, v.status) for v in versions] == [(1, "older"), (2, "current")]
        assert version.n_human_labels == 4 and version.n_decisions == 4
        assert all(v.created_at.utcoffset() == timedelta(0) for v in versions)
        model = reopened.load_model(project.id, 2)
        after = predict_with_confidence(model, reopened.load_dataset(project).features, wine_schema.classes).proba
        np.testing.assert_array_equal(after, before)
        labels = loop.effective_labels(reopened.load_dataset(project).labels, reopened.decisions(project.id))
        assert (labels.loc[decisions["row_key"]].to_numpy() == decisions["new_label"].to_numpy()).all()
    finally:
        reopened.engine.dispose()


def test_versions_are_numbered_per_project_on_postgres(pg_store: Store, wine: Sample, wine_schema: Schema) -> None:
    first, _ = start_wine(pg_store, wine, wine_schema)
    second, _ = start_wine(pg_store, wine, wine_schema)
    actions.retrain(pg_store, first.id, ACTOR, trigger="manual")
    actions.retrain(pg_store, second.id, ACTOR, trigger="manual")
    actions.retrain(pg_store, first.id, ACTOR, trigger="manual")
    assert [v.version for v in pg_store.model_versions(first.id)] == [1, 2, 3]
    assert [v.version for v in pg_store.model_versions(second.id)] == [1, 2]
    assert pg_store.current_version(first.id).version == 3


def test_dataset_with_missing_labels_round_trips_on_postgres(pg_store: Store, loan: Sample,
                                                             loan_schema: Schema) -> None:
    dataset = Dataset.create("loan", loan.frame, loan_schema)
    project = bare_project(pg_store, "loan", loan.frame, loan_schema)
    pg_store.save_dataset(Dataset.create("loan", loan.frame, loan_schema, seed=9), content_hash(dataset.frame))
    loaded = pg_store.load_dataset(project)
    pd.testing.assert_series_equal(loaded.split, dataset.split, check_dtype=False)  # the first split is kept
    pd.testing.assert_series_equal(loaded.labels, dataset.labels, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.features, dataset.features, check_dtype=False)


def test_worker_trains_the_queued_retrain_on_postgres(pg_store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(pg_store, wine, wine_schema)
    outcome = actions.record_decisions(pg_store, project.id, ACTOR, corrections(pg_store, project, 3))
    assert outcome.retrain is not None and outcome.retrain.status == "queued"
    assert jobs.work(pg_store, once=True) == 1
    v2 = pg_store.current_version(project.id)
    assert (v2.version, v2.n_decisions, v2.job_id) == (2, 3, outcome.retrain.id)
    assert [j.status for j in pg_store.jobs(project.id)] == ["done"]


def test_decisions_are_committed_even_when_the_retrain_fails_on_postgres(
        monkeypatch: pytest.MonkeyPatch, pg_store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(pg_store, wine, wine_schema)
    outcome = actions.record_decisions(pg_store, project.id, ACTOR, corrections(pg_store, project, 2))
    assert outcome.retrain is not None and pg_store.count_decisions(project.id) == 2

    def broken_fit(*args, **kwargs):
        raise MemoryError("the fit ran out of memory")

    monkeypatch.setattr(loop, "fit", broken_fit)
    jobs.work(pg_store, once=True)
    assert [j.status for j in pg_store.jobs(project.id)] == ["failed"]
    assert pg_store.count_decisions(project.id) == 2
    assert pg_store.current_version(project.id).version == 1
