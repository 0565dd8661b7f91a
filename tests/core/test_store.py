"""The SQL store: what a person decided, and every model version, survive a restart."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, loop
from hitl_core.actions import InvalidAction
from hitl_core.data import Dataset, Schema, content_hash
from hitl_core.models import predict_with_confidence
from hitl_core.records import DecisionRequest
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import ACTOR, bare_project, corrections, pool, start_wine


def test_correction_survives_restart(db_url: str, wine: Sample, wine_schema: Schema) -> None:
    store = Store(db_url)
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="manual")
    actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 4))
    actions.retrain(store, project.id, ACTOR, trigger="manual")
    project = store.project(project.id)
    decisions, versions = store.decisions(project.id), store.model_versions(project.id)
    store.engine.dispose()

    reopened = Store(db_url)
    try:
        pd.testing.assert_frame_equal(reopened.decisions(project.id), decisions)
        assert reopened.model_versions(project.id) == versions
        assert [(v.version, v.status) for v in versions] == [(1, "older"), (2, "current")]
        assert reopened.project(project.id) == project and project.current_version == 2
        assert reopened.current_version(project.id) == versions[1]
        assert len(decisions) == 4 and set(decisions["action"]) == {"override"} and set(decisions["user"]) == {ACTOR}
        assert versions[1].n_human_labels == 4 and versions[1].n_decisions == 4
        assert versions[1].last_decision_id == decisions["id"].max()
        labels = loop.effective_labels(reopened.load_dataset(project).labels, reopened.decisions(project.id))
        assert (labels.loc[decisions["row_key"]].to_numpy() == decisions["new_label"].to_numpy()).all()
    finally:
        reopened.engine.dispose()


def test_timestamps_come_back_in_utc_after_restart(db_url: str, wine: Sample, wine_schema: Schema) -> None:
    store = Store(db_url)
    project, v1 = start_wine(store, wine, wine_schema)
    actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 1))
    store.engine.dispose()
    reopened = Store(db_url)
    try:
        stamps = [reopened.project(project.id).created_at, reopened.current_version(project.id).created_at,
                  reopened.decisions(project.id)["created_at"].iloc[0]]
        assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps)
        assert stamps[1] == v1.created_at and stamps[0] == project.created_at
        assert datetime.now(timezone.utc) - stamps[2] < timedelta(minutes=5)
    finally:
        reopened.engine.dispose()


def test_decisions_keep_what_the_person_saw(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, v1 = start_wine(store, wine, wine_schema)
    key = pool(store, project).index[3]
    given = store.load_dataset(project).labels.loc[key]
    actions.record_decisions(store, project.id, ACTOR, [
        DecisionRequest(row_key=key, new_label="class_1", expected=given, predicted_label="class_0",
                        confidence=0.91, model_version=v1.version, note="smells of cherries"),
    ])
    row = store.decisions(project.id).iloc[0]
    assert (row["row_key"], row["user"], row["action"], row["new_label"]) == (key, ACTOR, "override", "class_1")
    assert (row["old_label"], row["predicted_label"], row["model_version"]) == (given, "class_0", 1)
    assert row["confidence"] == pytest.approx(0.91)
    assert row["note"] == "smells of cherries"
    assert row["created_at"] is not None
    assert store.count_decisions(project.id) == 1


def test_decisions_come_back_oldest_first_per_project(store: Store, wine: Sample, wine_schema: Schema) -> None:
    first, _ = start_wine(store, wine, wine_schema)
    second, _ = start_wine(store, wine, wine_schema)
    k0, k1, k2, k9 = pool(store, first).index[[0, 1, 2, 9]]
    actions.record_decisions(store, first.id, ACTOR,
                             [DecisionRequest(row_key=k, new_label="class_0") for k in (k1, k2)])
    actions.record_decisions(store, second.id, ACTOR, [DecisionRequest(row_key=k9, new_label="class_2")])
    actions.record_decisions(store, first.id, ACTOR, [DecisionRequest(row_key=k0, new_label="class_1")])
    assert store.decisions(first.id)["row_key"].tolist() == [k1, k2, k0]
    assert store.decisions(second.id)["row_key"].tolist() == [k9]
    assert store.count_decisions(first.id) == 3


def test_versions_are_numbered_one_two_three_per_project(store: Store, wine: Sample, wine_schema: Schema) -> None:
    first, v1 = start_wine(store, wine, wine_schema)
    second, w1 = start_wine(store, wine, wine_schema)
    assert v1.version == w1.version == 1
    actions.retrain(store, first.id, ACTOR, trigger="manual")
    actions.retrain(store, second.id, ACTOR, trigger="manual")
    actions.retrain(store, first.id, ACTOR, trigger="manual")
    assert [v.version for v in store.model_versions(first.id)] == [1, 2, 3]
    assert [v.version for v in store.model_versions(second.id)] == [1, 2]
    assert store.current_version(first.id).version == 3 and store.project(first.id).current_version == 3
    assert [v.trigger for v in store.model_versions(first.id)] == ["initial", "manual", "manual"]
    assert [v.status for v in store.model_versions(first.id)] == ["older", "older", "current"]


def test_project_without_a_model_has_no_current_version(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project = bare_project(store, "wine", wine.frame, wine_schema)
    assert project.current_version is None
    assert store.current_version(project.id) is None
    assert store.model_versions(project.id) == []
    assert store.decisions(project.id).empty


def test_loaded_model_predicts_the_same_as_before_saving(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project = actions.change_settings(store, start_wine(store, wine, wine_schema)[0].id, ACTOR, model_kind="rf")
    trained = loop.train_snapshot(store, project)
    version = actions.record_version(store, project.id, trained, actor=ACTOR, trigger="manual")
    assert version.version == 2
    loaded = store.load_model(project.id, 2)
    X = store.load_dataset(project).features
    before = predict_with_confidence(trained.model, X, wine_schema.classes).proba
    after = predict_with_confidence(loaded, X, wine_schema.classes).proba
    np.testing.assert_array_equal(after, before)
    assert loaded.kind == "rf"


def test_loading_a_missing_version_says_which(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    with pytest.raises(KeyError, match=f"Project {project.id} has no model version 7"):
        store.load_model(project.id, 7)


def test_metrics_of_a_version_are_stored_beside_its_baselines(store: Store, wine: Sample, wine_schema: Schema) -> None:
    _, v1 = start_wine(store, wine, wine_schema)
    assert v1.validation["accuracy"] > 0.8
    assert v1.test["accuracy"] > 0.8
    assert set(v1.baselines) == {"majority", "random"}
    assert set(v1.baselines["majority"]) == {"validation", "test"}
    assert v1.validation["accuracy"] > v1.baselines["majority"]["validation"]["accuracy"]
    assert sum(sum(row.values()) for row in v1.confusion.values()) == 36  # validation rows of wine


def test_dataset_saved_twice_keeps_its_first_split(store: Store, wine: Sample, wine_schema: Schema) -> None:
    first = Dataset.create("wine", wine.frame, wine_schema, seed=0)
    second = Dataset.create("wine again", wine.frame, wine_schema, seed=99)
    assert not first.split.equals(second.split)
    dataset_hash = content_hash(first.frame)
    assert content_hash(second.frame) == dataset_hash
    store.save_dataset(first, dataset_hash)
    store.save_dataset(second, dataset_hash)
    stored = store.load_dataset_split(dataset_hash)
    assert (stored == first.split.loc[stored.index]).all()
    assert stored.index.equals(first.split.index)


def test_dataset_round_trips_with_missing_labels_and_text(store: Store, loan: Sample, loan_schema: Schema) -> None:
    dataset = Dataset.create("loan", loan.frame, loan_schema)
    project = bare_project(store, "loan", loan.frame, loan_schema)
    loaded = store.load_dataset(project)
    assert loaded.frame.index.equals(dataset.frame.index)
    pd.testing.assert_series_equal(loaded.split, dataset.split, check_dtype=False)
    pd.testing.assert_series_equal(loaded.labels, dataset.labels, check_dtype=False)
    assert loaded.labels.isna().sum() == dataset.labels.isna().sum() > 0
    pd.testing.assert_frame_equal(loaded.features, dataset.features, check_dtype=False)


def test_project_settings_can_change_but_only_known_ones(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    changed = actions.change_settings(store, project.id, ACTOR, retrain_policy="every_n", retrain_every=3,
                                      model_kind="hgb")
    assert (changed.retrain_policy, changed.retrain_every, changed.model_kind) == ("every_n", 3, "hgb")
    assert store.project(project.id) == changed
    with pytest.raises(InvalidAction, match=r"Cannot change \['seed'\]"):
        actions.change_settings(store, project.id, ACTOR, seed=5)
    assert store.project(project.id) == changed


def test_unknown_project_is_a_key_error(store: Store) -> None:
    with pytest.raises(KeyError, match="No project with id 42"):
        store.project(42)


def test_store_creates_the_folder_of_its_sqlite_file(tmp_path) -> None:
    path = tmp_path / "deep" / "er" / "hitl.db"
    store = Store(f"sqlite:///{path.as_posix()}")
    try:
        assert path.exists()
        assert store.projects() == []
    finally:
        store.engine.dispose()
