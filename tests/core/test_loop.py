"""The HITL cycle: effective labels, when to retrain, decisions stored before any retraining."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from hitl_core import loop
from hitl_core.data import Dataset, Schema
from hitl_core.models import predict_with_confidence
from hitl_core.records import Decision, ModelVersion, Project
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import corrections, pool, start_wine


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


def _version(n_decisions: int) -> ModelVersion:
    return ModelVersion(id=1, project_id=1, version=1, model_kind="logreg", n_human_labels=0, n_train=10,
                        n_decisions=n_decisions, trigger="initial", fit_seconds=0.1,
                        created_at=datetime.now(timezone.utc), validation={}, test={})


@pytest.mark.parametrize(("policy", "n_decisions", "due"), [
    ("every", 5, False),
    ("every", 6, True),
    ("every_n", 6, False),
    ("every_n", 7, False),
    ("every_n", 8, True),
    ("every_n", 20, True),
    ("manual", 5, False),
    ("manual", 50, False),
])
def test_retrain_due_follows_the_policy(policy: str, n_decisions: int, due: bool) -> None:
    assert loop.retrain_due(_project(policy, every=3), n_decisions, _version(n_decisions=5)) is due


@pytest.mark.parametrize("policy", ["every", "every_n", "manual"])
def test_a_project_without_a_model_is_always_due(policy: str) -> None:
    assert loop.retrain_due(_project(policy), 0, None)


# --------------------------------------------------------------------------- decisions from reviewed rows
def _reviewed() -> pd.DataFrame:
    return pd.DataFrame({
        "given": ["a", None, "b"],
        "label": ["a", None, "a"],
        "predicted": ["a", "b", "b"],
        "confidence": [0.9, 0.6, 0.55],
    }, index=pd.Index(["r0", "r1", "r2"], name="row"))


def test_decisions_for_without_new_labels_accepts_every_prediction() -> None:
    decisions = loop.decisions_for(_reviewed(), new_labels=None, user="ana", model_version=3, note="batch")
    assert [(d.row_key, d.new_label, d.action) for d in decisions] == [
        ("r0", "a", "accept"), ("r1", "b", "accept"), ("r2", "b", "accept")]
    assert all(d.user == "ana" and d.model_version == 3 and d.note == "batch" for d in decisions)
    assert [d.old_label for d in decisions] == ["a", None, "a"]
    assert [d.confidence for d in decisions] == [0.9, 0.6, 0.55]


def test_decisions_for_marks_a_changed_label_as_override() -> None:
    new = pd.Series({"r0": "b", "r1": "b", "r2": "a"})
    decisions = loop.decisions_for(_reviewed(), new_labels=new, user="ana", model_version=1)
    assert [(d.new_label, d.action, d.predicted_label) for d in decisions] == [
        ("b", "override", "a"), ("b", "accept", "b"), ("a", "override", "b")]


# --------------------------------------------------------------------------- the cycle against a store
def test_retraining_after_decisions_creates_a_version_with_more_human_labels(
        store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, v1 = start_wine(store, wine, wine_schema)
    assert v1.n_human_labels == 0 and v1.trigger == "initial"
    saved = loop.record(store, project, corrections(store, project, 3))
    assert saved.n_saved == 3
    assert saved.new_version is not None
    assert saved.new_version.version == 2
    assert saved.new_version.n_human_labels == 3
    assert saved.new_version.n_decisions == 3
    assert saved.new_version.trigger == "correction"


def test_manual_policy_stores_decisions_without_retraining(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="manual")
    saved = loop.record(store, project, corrections(store, project, 2))
    assert saved == loop.Saved(2, None)
    assert store.count_decisions(project.id) == 2
    assert [v.version for v in store.model_versions(project.id)] == [1]


def test_every_n_policy_retrains_on_the_nth_decision(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="every_n", retrain_every=3)
    assert loop.record(store, project, corrections(store, project, 1)).new_version is None
    assert loop.record(store, project, corrections(store, project, 1, skip=1)).new_version is None
    third = loop.record(store, project, corrections(store, project, 1, skip=2)).new_version
    assert third is not None and third.version == 2 and third.n_decisions == 3


def test_decisions_are_committed_before_retraining(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    decisions = corrections(store, project, 2)
    broken = store.update_project(project.id, model_kind="no-such-model")
    with pytest.raises(ValueError, match="Unknown model 'no-such-model'"):
        loop.record(store, broken, decisions)
    stored = store.decisions(project.id)
    assert stored["row_key"].tolist() == [d.row_key for d in decisions]
    assert stored["new_label"].tolist() == [d.new_label for d in decisions]
    assert [v.version for v in store.model_versions(project.id)] == [1]


def test_corrections_become_the_pool_labels_after_retraining(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema, retrain_policy="manual")
    rows = pool(store, project).index[:10]
    store.add_decisions(project.id, [Decision(row_key=k, new_label="class_2", action="override") for k in rows])
    version = loop.retrain(store, project, trigger="manual")
    frame = pool(store, project)
    assert version.n_human_labels == 10
    assert (frame.loc[rows, "label"] == "class_2").all()
    assert frame.loc[rows, "reviewed"].all() and not frame.drop(index=rows)["reviewed"].any()


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
    project, v1 = loop.start_project(store, name="loan", source="sample:loan", frame=loan.frame, schema=loan_schema,
                                     model_kind="logreg")
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
