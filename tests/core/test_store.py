"""The SQL store: what a person decided, and every model version, survive a restart."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from hitl_core import loop
from hitl_core.data import Dataset, Schema, content_hash
from hitl_core.models import predict_with_confidence
from hitl_core.records import Decision
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import corrections, start_wine


def test_correction_survives_restart(db_url: str, wine: Sample, wine_schema: Schema) -> None:
    store = Store(db_url)
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="manual")
    store.add_decisions(project.id, corrections(store, project, 4))
    loop.retrain(store, project, trigger="manual")
    decisions, versions = store.decisions(project.id), store.model_versions(project.id)
    store.engine.dispose()

    reopened = Store(db_url)
    try:
        pd.testing.assert_frame_equal(reopened.decisions(project.id), decisions)
        assert reopened.model_versions(project.id) == versions
        assert [v.version for v in versions] == [1, 2]
        assert reopened.project(project.id) == project
        assert len(decisions) == 4 and set(decisions["action"]) == {"override"}
        assert versions[1].n_human_labels == 4 and versions[1].n_decisions == 4
        labels = loop.effective_labels(reopened.load_dataset(project).labels, reopened.decisions(project.id))
        assert (labels.loc[decisions["row_key"]].to_numpy() == decisions["new_label"].to_numpy()).all()
    finally:
        reopened.engine.dispose()


def test_timestamps_come_back_in_utc_after_restart(db_url: str, wine: Sample, wine_schema: Schema) -> None:
    store = Store(db_url)
    project, v1 = start_wine(store, wine, wine_schema)
    store.add_decisions(project.id, [Decision(row_key="0", new_label="class_1", action="override")])
    store.engine.dispose()
    reopened = Store(db_url)
    try:
        stamps = [reopened.project(project.id).created_at, reopened.latest_version(project.id).created_at,
                  reopened.decisions(project.id)["created_at"].iloc[0]]
        assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps)
        assert stamps[1] == v1.created_at and stamps[0] == project.created_at
        assert datetime.now(timezone.utc) - stamps[2] < timedelta(minutes=5)
    finally:
        reopened.engine.dispose()


def test_decisions_keep_what_the_person_saw(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, v1 = start_wine(store, wine, wine_schema)
    store.add_decisions(project.id, [
        Decision(row_key="3", new_label="class_1", action="override", user="ana", old_label="class_0",
                 predicted_label="class_0", confidence=0.91, model_version=v1.version, note="smells of cherries"),
    ])
    row = store.decisions(project.id).iloc[0]
    assert (row["row_key"], row["user"], row["action"], row["new_label"]) == ("3", "ana", "override", "class_1")
    assert (row["old_label"], row["predicted_label"], row["model_version"]) == ("class_0", "class_0", 1)
    assert row["confidence"] == pytest.approx(0.91)
    assert row["note"] == "smells of cherries"
    assert row["created_at"] is not None
    assert store.count_decisions(project.id) == 1


def test_decisions_come_back_oldest_first_per_project(store: Store, wine: Sample, wine_schema: Schema) -> None:
    first, _ = start_wine(store, wine, wine_schema)
    second, _ = start_wine(store, wine, wine_schema)
    store.add_decisions(first.id, [Decision(row_key=k, new_label="class_0", action="override") for k in "12"])
    store.add_decisions(second.id, [Decision(row_key="9", new_label="class_2", action="accept")])
    store.add_decisions(first.id, [Decision(row_key="0", new_label="class_1", action="override")])
    assert store.decisions(first.id)["row_key"].tolist() == ["1", "2", "0"]
    assert store.decisions(second.id)["row_key"].tolist() == ["9"]
    assert store.count_decisions(first.id) == 3


def test_versions_are_numbered_one_two_three_per_project(store: Store, wine: Sample, wine_schema: Schema) -> None:
    first, v1 = start_wine(store, wine, wine_schema)
    second, w1 = start_wine(store, wine, wine_schema)
    assert v1.version == w1.version == 1
    loop.retrain(store, first, trigger="manual")
    loop.retrain(store, second, trigger="manual")
    loop.retrain(store, first, trigger="manual")
    assert [v.version for v in store.model_versions(first.id)] == [1, 2, 3]
    assert [v.version for v in store.model_versions(second.id)] == [1, 2]
    assert store.latest_version(first.id).version == 3
    assert [v.trigger for v in store.model_versions(first.id)] == ["initial", "manual", "manual"]


def test_project_without_a_model_has_no_latest_version(store: Store, wine: Sample, wine_schema: Schema) -> None:
    dataset = Dataset.create("wine", wine.frame, wine_schema)
    dataset_hash = store.save_dataset(dataset, content_hash(dataset.frame))
    project = store.create_project(name="empty", dataset_hash=dataset_hash, source="sample:wine", schema=wine_schema,
                                   model_kind="logreg")
    assert store.latest_version(project.id) is None
    assert store.model_versions(project.id) == []
    assert store.decisions(project.id).empty


def test_loaded_model_predicts_the_same_as_before_saving(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    dataset = store.load_dataset(project)
    labels = dataset.labels
    model, _ = loop.train_and_evaluate(dataset, labels, "rf", seed=project.seed)
    store.add_model_version(project.id, model=model, n_human_labels=0, n_train=0, n_decisions=0, trigger="manual",
                            validation={}, test={}, baselines={}, confusion={})
    loaded = store.load_model(project.id, 2)
    X = dataset.features
    before = predict_with_confidence(model, X, wine_schema.classes).proba
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
    dataset_hash = store.save_dataset(dataset, content_hash(dataset.frame))
    project = store.create_project(name="loan", dataset_hash=dataset_hash, source="sample:loan", schema=loan_schema,
                                   model_kind="logreg")
    loaded = store.load_dataset(project)
    assert loaded.frame.index.equals(dataset.frame.index)
    pd.testing.assert_series_equal(loaded.split, dataset.split, check_dtype=False)
    pd.testing.assert_series_equal(loaded.labels, dataset.labels, check_dtype=False)
    assert loaded.labels.isna().sum() == dataset.labels.isna().sum() > 0
    pd.testing.assert_frame_equal(loaded.features, dataset.features, check_dtype=False)


def test_project_settings_can_change_but_only_known_ones(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    changed = store.update_project(project.id, retrain_policy="every_n", retrain_every=3, model_kind="hgb")
    assert (changed.retrain_policy, changed.retrain_every, changed.model_kind) == ("every_n", 3, "hgb")
    assert store.project(project.id) == changed
    with pytest.raises(ValueError, match=r"Cannot change \['seed'\]"):
        store.update_project(project.id, seed=5)


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
