"""The store against a real throwaway PostgreSQL server: SQLite would hide dialect bugs (bytea, time zones)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from hitl_core import loop
from hitl_core.data import Dataset, Schema, content_hash
from hitl_core.models import predict_with_confidence
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import corrections, start_wine
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
    saved = loop.record(store, project, corrections(store, project, 4))
    assert saved.new_version is None  # manual policy
    version = loop.retrain(store, project, trigger="manual")
    decisions, versions = store.decisions(project.id), store.model_versions(project.id)
    dataset = store.load_dataset(project)
    before = predict_with_confidence(store.load_model(project.id, 2), dataset.features, wine_schema.classes).proba
    store.engine.dispose()

    reopened = Store(pg_url)
    try:
        assert reopened.project(project.id) == project
        pd.testing.assert_frame_equal(reopened.decisions(project.id), decisions)
        assert len(decisions) == 4 and set(decisions["action"]) == {"override"}
        assert reopened.model_versions(project.id) == versions
        assert [v.version for v in versions] == [1, 2]
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
    loop.retrain(pg_store, first, trigger="manual")
    loop.retrain(pg_store, second, trigger="manual")
    loop.retrain(pg_store, first, trigger="manual")
    assert [v.version for v in pg_store.model_versions(first.id)] == [1, 2, 3]
    assert [v.version for v in pg_store.model_versions(second.id)] == [1, 2]


def test_dataset_with_missing_labels_round_trips_on_postgres(pg_store: Store, loan: Sample,
                                                             loan_schema: Schema) -> None:
    dataset = Dataset.create("loan", loan.frame, loan_schema)
    dataset_hash = pg_store.save_dataset(dataset, content_hash(dataset.frame))
    pg_store.save_dataset(Dataset.create("loan", loan.frame, loan_schema, seed=9), dataset_hash)
    project = pg_store.create_project(name="loan", dataset_hash=dataset_hash, source="sample:loan",
                                      schema=loan_schema, model_kind="logreg")
    loaded = pg_store.load_dataset(project)
    pd.testing.assert_series_equal(loaded.split, dataset.split, check_dtype=False)  # the first split is kept
    pd.testing.assert_series_equal(loaded.labels, dataset.labels, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.features, dataset.features, check_dtype=False)


def test_decisions_are_committed_before_retraining_on_postgres(pg_store: Store, wine: Sample,
                                                               wine_schema: Schema) -> None:
    project, _ = start_wine(pg_store, wine, wine_schema)
    decisions = corrections(pg_store, project, 2)
    broken = pg_store.update_project(project.id, model_kind="no-such-model")
    with pytest.raises(ValueError, match="Unknown model"):
        loop.record(pg_store, broken, decisions)
    assert pg_store.count_decisions(project.id) == 2
