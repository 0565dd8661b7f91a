"""The HITL cycle: effective labels, when to retrain, decisions committed before any retraining."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, jobs, loop
from hitl_core.data import Dataset, Schema
from hitl_core.models import predict_with_confidence
from hitl_core.records import DecisionRequest, Project
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import ACTOR, corrections, pool, start_wine


def _decisions(*rows: tuple[int, str, str]) -> pd.DataFrame:
    """(id, row_key, new_label) rows as ``Store.decisions`` returns them."""
    return pd.DataFrame(rows, columns=["id", "row_key", "new_label"])


# --------------------------------------------------------------------------- effective labels
def test_latest_decision_per_row_wins_over_the_original_label() -> None:
    original = pd.Series(["a", "b", None, "a"], index=["r0", "r1", "r2", "r3"], dtype=object)
    decisions = _decisions((3, "r1", "c"), (1, "r1", "a"), (2, "r2", "b"), (4, "gone", "a"))  # not in id order
    labels = loop.effective_labels(original, decisions)
    assert labels.to_dict() == {"r0": "a", "r1": "c", "r2": "b", "r3": "a"}
    assert original.iloc[1] == "b" and pd.isna(original.iloc[2]), "the original labels are not modified"


def test_without_decisions_effective_labels_are_the_original_ones() -> None:
    original = pd.Series(["a", None], index=["r0", "r1"], dtype=object)
    labels = loop.effective_labels(original, _decisions())
    assert labels.iloc[0] == "a" and pd.isna(labels.iloc[1])


def test_human_labels_count_rows_not_decisions() -> None:
    assert loop.n_human_labelled(_decisions((1, "r1", "a"), (2, "r1", "b"), (3, "r2", "a"))) == 2
    assert loop.n_human_labelled(_decisions()) == 0


# --------------------------------------------------------------------------- retrain policy
def _project(policy: str, every: int = 3) -> Project:
    schema = Schema(target="y", classes=("a", "b"), numeric=("x",), categorical=())
    return Project(id=1, name="p", dataset_hash="h", source="s", schema=schema, model_kind="logreg",
                   retrain_policy=policy, retrain_every=every, threshold=0.7, seed=0,
                   created_at=datetime.now(timezone.utc))


@pytest.mark.parametrize(("policy", "pending", "due"), [
    ("every", 0, False),
    ("every", 1, True),
    ("every_n", 1, False),
    ("every_n", 2, False),
    ("every_n", 3, True),
    ("every_n", 15, True),
    ("manual", 0, False),
    ("manual", 45, False),
])
def test_retrain_due_follows_the_policy(policy: str, pending: int, due: bool) -> None:
    assert loop.retrain_due(_project(policy, every=3), pending) is due


@pytest.mark.parametrize("policy", ["every", "every_n", "manual"])
def test_a_new_project_gets_its_first_model_whatever_the_policy(
        policy: str, store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, v1 = start_wine(store, wine, wine_schema, retrain_policy=policy)
    assert (v1.version, v1.trigger, v1.status) == (1, "initial", "current")
    assert project.current_version == 1 and store.current_version(project.id) == v1
    assert store.jobs(project.id) == [], "version 1 is trained in-process, not queued"


# --------------------------------------------------------------------------- decisions from reviewed rows
def _reviewed() -> pd.DataFrame:
    return pd.DataFrame({
        "given": ["a", None, "b"],
        "label": ["a", None, "a"],
        "predicted": ["a", "b", "b"],
        "confidence": [0.9, 0.6, 0.55],
    }, index=pd.Index(["r0", "r1", "r2"], name="row"))


def test_decisions_for_without_new_labels_accepts_every_prediction() -> None:
    requests = loop.decisions_for(_reviewed(), new_labels=None, model_version=3, note="batch")
    assert [(r.row_key, r.new_label, r.predicted_label) for r in requests] == [
        ("r0", "a", "a"), ("r1", "b", "b"), ("r2", "b", "b")]
    assert all(r.model_version == 3 and r.note == "batch" for r in requests)
    assert [r.expected for r in requests] == ["a", None, "a"], "each expects the label the person saw"
    assert [r.confidence for r in requests] == [0.9, 0.6, 0.55]


def test_decisions_for_takes_the_new_labels_over_the_predictions() -> None:
    new = pd.Series({"r0": "b", "r1": "b", "r2": "a"})
    requests = loop.decisions_for(_reviewed(), new_labels=new, model_version=1)
    assert [(r.new_label, r.predicted_label, r.expected) for r in requests] == [
        ("b", "a", "a"), ("b", "b", None), ("a", "b", "a")]


def test_a_label_other_than_the_prediction_is_recorded_as_an_override(
        store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, v1 = start_wine(store, wine, wine_schema, retrain_policy="manual")
    rows = pool(store, project).iloc[:3]
    classes = wine_schema.classes
    other = classes[(classes.index(rows["predicted"].iloc[0]) + 1) % 3]
    new = pd.Series([other, *rows["predicted"].iloc[1:]], index=rows.index)
    actions.record_decisions(store, project.id, ACTOR, loop.decisions_for(rows, new_labels=new,
                                                                          model_version=v1.version))
    stored = store.decisions(project.id)
    assert stored["action"].tolist() == ["override", "accept", "accept"]
    assert stored["new_label"].tolist() == new.tolist()
    assert stored["old_label"].tolist() == rows["label"].tolist()


# --------------------------------------------------------------------------- the cycle against a store
def test_retraining_after_decisions_creates_a_version_with_more_human_labels(
        store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, v1 = start_wine(store, wine, wine_schema)
    assert v1.n_human_labels == 0 and v1.trigger == "initial"
    outcome = actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 3))
    assert len(outcome.saved) == 3 and outcome.conflicts == []
    assert outcome.retrain is not None and outcome.retrain.status == "queued"
    assert store.current_version(project.id) == v1, "the click only queues the retrain"

    assert jobs.work(store, once=True) == 1
    v2 = store.current_version(project.id)
    assert v2.version == 2 and v2.status == "current"
    assert v2.n_human_labels == 3 and v2.n_decisions == 3
    assert v2.last_decision_id == max(d.id for d in outcome.saved)
    assert v2.trigger == "correction" and v2.job_id == outcome.retrain.id
    (job,) = store.jobs(project.id)
    assert (job.status, job.result_version) == ("done", 2)


def test_manual_policy_stores_decisions_without_retraining(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="manual")
    outcome = actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 2))
    assert len(outcome.saved) == 2 and outcome.retrain is None
    assert store.count_decisions(project.id) == 2
    assert store.jobs(project.id) == []
    assert jobs.work(store, once=True) == 0
    assert [v.version for v in store.model_versions(project.id)] == [1]


def test_every_n_policy_retrains_on_the_nth_decision(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="every_n", retrain_every=3)
    assert actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 1)).retrain is None
    assert actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 1, skip=1)).retrain is None
    third = actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 1, skip=2)).retrain
    assert third is not None and third.trigger == "correction"
    assert jobs.work(store, once=True) == 1
    v2 = store.current_version(project.id)
    assert v2.version == 2 and v2.n_decisions == 3


def test_decisions_are_committed_even_when_the_retrain_fails(
        monkeypatch: pytest.MonkeyPatch, store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    requests = corrections(store, project, 2)
    outcome = actions.record_decisions(store, project.id, ACTOR, requests)
    assert outcome.retrain is not None
    stored = store.decisions(project.id)  # before any worker ran
    assert stored["row_key"].tolist() == [r.row_key for r in requests]
    assert stored["new_label"].tolist() == [r.new_label for r in requests]

    def broken_fit(*args, **kwargs):
        raise MemoryError("the fit ran out of memory")

    monkeypatch.setattr(loop, "fit", broken_fit)
    jobs.work(store, once=True)  # retried until it gives up
    (job,) = store.jobs(project.id)
    assert job.status == "failed" and job.error == "MemoryError: the fit ran out of memory"
    pd.testing.assert_frame_equal(store.decisions(project.id), stored)
    assert [v.version for v in store.model_versions(project.id)] == [1]
    assert store.current_version(project.id).version == 1


def test_corrections_become_the_pool_labels_after_retraining(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="manual")
    rows = pool(store, project).index[:10]
    actions.record_decisions(store, project.id, ACTOR, [DecisionRequest(row_key=k, new_label="class_2") for k in rows])
    version = actions.retrain(store, project.id, ACTOR, trigger="manual")
    frame = pool(store, project)
    assert version.n_human_labels == 10 and version.status == "current"
    assert (frame.loc[rows, "label"] == "class_2").all()
    assert frame.loc[rows, "reviewed"].all() and not frame.drop(index=rows)["reviewed"].any()


def test_labels_at_a_version_leave_out_the_decisions_made_after_it(
        store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, v1 = start_wine(store, wine, wine_schema, retrain_policy="manual")
    first, later = pool(store, project).index[:2]
    actions.record_decisions(store, project.id, ACTOR, [DecisionRequest(row_key=first, new_label="class_2")])
    v2 = actions.retrain(store, project.id, ACTOR, trigger="manual")
    actions.record_decisions(store, project.id, ACTOR, [DecisionRequest(row_key=later, new_label="class_2")])
    dataset, decisions = store.load_dataset(project), store.decisions(project.id)

    pd.testing.assert_series_equal(loop.labels_at(dataset, decisions, v1), dataset.labels, check_dtype=False)
    at_v2 = loop.labels_at(dataset, decisions, v2)
    assert at_v2.loc[first] == "class_2"
    assert at_v2.loc[later] == dataset.labels.loc[later], "decided after v2 was trained"
    assert loop.effective_labels(dataset.labels, decisions).loc[later] == "class_2"


def test_a_snapshot_records_the_newest_decision_it_includes(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, v1 = start_wine(store, wine, wine_schema, retrain_policy="manual")
    assert v1.last_decision_id == 0 and v1.n_decisions == 0
    outcome = actions.record_decisions(store, project.id, ACTOR, corrections(store, project, 4))
    trained = loop.train_snapshot(store, project)
    assert trained.last_decision_id == max(d.id for d in outcome.saved)
    assert (trained.n_decisions, trained.n_human_labels) == (4, 4)
    assert [v.version for v in store.model_versions(project.id)] == [1], "a snapshot is not stored by itself"


def test_fit_sees_only_labelled_training_rows(monkeypatch: pytest.MonkeyPatch, wine: Sample,
                                              wine_schema: Schema) -> None:
    dataset = Dataset.create("wine", wine.frame, wine_schema)
    labels = dataset.labels.copy()
    unlabeled = dataset.rows("train")[:15]
    labels.loc[unlabeled] = None
    seen: list[pd.Index] = []
    real_fit = loop.fit

    def spy(kind, schema, X, y, **kwargs):
        assert X.index.equals(y.index)
        seen.append(X.index)
        return real_fit(kind, schema, X, y, **kwargs)

    monkeypatch.setattr(loop, "fit", spy)
    loop.train_and_evaluate(dataset, labels, "logreg")
    expected = set(dataset.rows("train")) - set(unlabeled)
    assert seen, "fit was not called"
    assert all(set(index) == expected for index in seen)  # the model and both baselines


def test_n_train_counts_labelled_training_rows_only(store: Store, loan: Sample, loan_schema: Schema) -> None:
    project, v1 = actions.create_project(store, ACTOR, name="loan", source="sample:loan", frame=loan.frame,
                                         schema=loan_schema, model_kind="logreg")
    dataset = store.load_dataset(project)
    train = dataset.rows("train")
    assert v1.n_train == int(dataset.labels.loc[train].notna().sum())
    assert v1.n_train < len(train), "pending loan rows are in the pool but not trained on"


def test_held_out_labels_never_change_the_fitted_model(wine: Sample, wine_schema: Schema) -> None:
    dataset = Dataset.create("wine", wine.frame, wine_schema)
    labels = dataset.labels
    scrambled = labels.copy()
    held_out = dataset.split.index[dataset.split != "train"]
    classes = wine_schema.classes
    scrambled.loc[held_out] = [classes[(classes.index(c) + 1) % 3] for c in labels.loc[held_out]]
    honest, evaluation = loop.train_and_evaluate(dataset, labels, "logreg")
    fooled, fooled_evaluation = loop.train_and_evaluate(dataset, scrambled, "logreg")
    X = dataset.features
    np.testing.assert_array_equal(predict_with_confidence(fooled, X, classes).proba,
                                  predict_with_confidence(honest, X, classes).proba)
    assert fooled_evaluation.test["accuracy"] < evaluation.test["accuracy"], "test rows are scored on their labels"


def test_evaluation_reports_baselines_and_a_validation_confusion_matrix(wine: Sample, wine_schema: Schema) -> None:
    dataset = Dataset.create("wine", wine.frame, wine_schema)
    _, evaluation = loop.train_and_evaluate(dataset, dataset.labels, "logreg")
    assert set(evaluation.baselines) == {"majority", "random"}
    assert evaluation.validation["accuracy"] > evaluation.baselines["majority"]["validation"]["accuracy"]
    counts = {t: sum(row.values()) for t, row in evaluation.confusion.items()}
    assert counts == dataset.labels.loc[dataset.rows("validation")].value_counts().to_dict()
    correct = sum(evaluation.confusion[c][c] for c in wine_schema.classes)
    assert correct / sum(counts.values()) == pytest.approx(evaluation.validation["accuracy"])


def test_pool_predictions_cover_only_the_training_pool(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    frame = pool(store, project)
    dataset = store.load_dataset(project)
    assert set(frame.index) == set(dataset.rows("train"))
    assert {"given", "label", "predicted", "confidence", "disagrees", "reviewed"} <= set(frame.columns)
    assert (frame["disagrees"] == (frame["label"] != frame["predicted"])).all()


def test_starting_twice_on_the_same_content_reuses_the_first_split(
        store: Store, wine: Sample, wine_schema: Schema) -> None:
    first, _ = start_wine(store, wine, wine_schema, seed=0)
    second, _ = start_wine(store, wine, wine_schema, seed=5)
    assert first.dataset_hash == second.dataset_hash
    pd.testing.assert_series_equal(store.load_dataset(second).split, store.load_dataset(first).split)
    fresh = Dataset.create("wine", wine.frame, wine_schema, seed=5).split
    assert (fresh != store.load_dataset(first).split).any(), "seed 5 alone would have drawn another split"
