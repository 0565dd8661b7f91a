"""Two versions side by side: metrics, stored disparities and the rows whose prediction changed."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, compare, loop
from hitl_core.data import Schema, check
from hitl_core.evaluate import LOWER_IS_BETTER
from hitl_core.fairness import DISPARITIES, find_summary
from hitl_core.records import Project
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import corrections


def _two_versions(store: Store, wine: Sample, schema: Schema, n_corrections: int = 30) -> Project:
    """A wine project with v1 (given labels) and v2 (after ``n_corrections`` overrides)."""
    project, _ = actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                        schema=schema, model_kind="logreg", retrain_policy="manual")
    actions.record_decisions(store, project.id, "bob", corrections(store, project, n_corrections))
    actions.retrain(store, project.id, "ana", trigger="manual")
    return project


@pytest.fixture
def project(store: Store, wine: Sample, wine_schema: Schema) -> Project:
    return _two_versions(store, wine, wine_schema)


def _argmax_labels(model, X: pd.DataFrame) -> np.ndarray:
    """The brute-force prediction: the estimator's own ``predict_proba``, its own class order."""
    return np.asarray(model.estimator.classes_, dtype=object)[model.estimator.predict_proba(X).argmax(axis=1)]


@pytest.mark.parametrize("part", ["train", "validation", "test"])
def test_changed_rows_are_exactly_where_the_two_models_argmax_differs(store: Store, project: Project,
                                                                      part: str) -> None:
    dataset = store.load_dataset(project)
    m1, m2 = store.load_model(project.id, 1), store.load_model(project.id, 2)
    changes = compare.changed_predictions(m1, m2, dataset, project.schema.classes, part)
    X = dataset.features.loc[dataset.rows(part)]
    p1, p2 = _argmax_labels(m1, X), _argmax_labels(m2, X)
    differs = p1 != p2
    assert list(changes.rows.index) == list(X.index[differs])
    assert list(changes.rows["predicted_a"]) == list(p1[differs])
    assert list(changes.rows["predicted_b"]) == list(p2[differs])
    assert np.allclose(changes.rows["confidence_a"], m1.estimator.predict_proba(X).max(axis=1)[differs])
    assert np.allclose(changes.rows["confidence_b"], m2.estimator.predict_proba(X).max(axis=1)[differs])
    assert changes.n_rows == len(X) and changes.n_changed == int(differs.sum())
    assert changes.share == pytest.approx(differs.mean())
    assert "label" not in changes.rows and changes.n_fixed is None


def test_thirty_corrections_change_some_pool_predictions(store: Store, project: Project) -> None:
    dataset = store.load_dataset(project)
    changes = compare.changed_predictions(store.load_model(project.id, 1), store.load_model(project.id, 2), dataset,
                                          project.schema.classes)
    assert 0 < changes.n_changed < changes.n_rows == len(dataset.rows("train"))


def test_with_labels_each_changed_row_is_counted_as_fixed_broken_or_neither(store: Store, project: Project) -> None:
    dataset = store.load_dataset(project)
    labels = loop.effective_labels(dataset.labels, store.decisions(project.id))
    changes = compare.changed_predictions(store.load_model(project.id, 1), store.load_model(project.id, 2), dataset,
                                          project.schema.classes, labels=labels)
    rows = changes.rows
    assert list(rows["label"]) == list(labels.loc[rows.index])  # the effective label, decisions included
    assert changes.n_labelled == int(rows["label"].notna().sum())
    assert changes.n_fixed == int((rows["label"] == rows["predicted_b"]).sum())
    assert changes.n_broken == int((rows["label"] == rows["predicted_a"]).sum())
    assert changes.n_fixed + changes.n_broken <= changes.n_labelled
    assert changes.n_fixed > 0  # v2 learnt the corrections: it now predicts some of them


def test_a_model_compared_with_itself_changes_no_row(store: Store, project: Project) -> None:
    model = store.load_model(project.id, 2)
    changes = compare.changed_predictions(model, model, store.load_dataset(project), project.schema.classes)
    assert changes.n_changed == 0 and changes.share == 0.0 and changes.n_rows > 0


def test_an_unknown_split_is_refused_by_name(store: Store, project: Project) -> None:
    model = store.load_model(project.id, 1)
    with pytest.raises(ValueError, match="Unknown split 'pool'"):
        compare.changed_predictions(model, model, store.load_dataset(project), project.schema.classes, "pool")


def test_metrics_table_puts_both_versions_side_by_side_on_both_splits(store: Store, project: Project) -> None:
    v1, v2 = store.model_versions(project.id)
    table = compare.metrics_table(v1, v2)
    assert set(table["split"]) == {"validation", "test"}
    assert "brier" not in set(table["metric"])  # multiclass: neither version has it
    for row in table.to_dict("records"):
        assert row["v1"] == pytest.approx(getattr(v1, row["split"])[row["metric"]])
        assert row["v2"] == pytest.approx(getattr(v2, row["split"])[row["metric"]])
        assert row["change"] == pytest.approx(row["v2"] - row["v1"])
        assert row["lower_is_better"] == (row["metric"] in LOWER_IS_BETTER)
        assert row["majority baseline"] == pytest.approx(v2.baselines["majority"][row["split"]][row["metric"]])


@pytest.mark.parametrize("metric, a, b, better", [("accuracy", 0.8, 0.9, "v2"), ("accuracy", 0.9, 0.8, "v1"),
                                                  ("log_loss", 0.5, 0.4, "v2"), ("log_loss", 0.4, 0.5, "v1"),
                                                  ("accuracy", 0.8, 0.8, "same"), ("roc_auc", None, 0.8, "")])
def test_better_knows_that_lower_is_better_for_losses(store: Store, project: Project, metric, a, b, better) -> None:
    v1, v2 = store.model_versions(project.id)
    v1 = dataclasses.replace(v1, validation={**v1.validation, metric: a})
    v2 = dataclasses.replace(v2, validation={**v2.validation, metric: b})
    table = compare.metrics_table(v1, v2).set_index(["split", "metric"])
    assert table.loc[("validation", metric), "better"] == better


def test_a_version_is_not_compared_with_itself(store: Store, project: Project) -> None:
    v1 = store.model_versions(project.id)[0]
    with pytest.raises(ValueError, match="two different versions"):
        compare.metrics_table(v1, v1)


def test_fairness_table_shows_each_stored_disparity_of_both_versions(store: Store, wine: Sample) -> None:
    schema = check(wine.frame, wine.target, sensitive=["alcohol"])[0]
    project = _two_versions(store, wine, schema)
    v1, v2 = store.model_versions(project.id)
    table = compare.fairness_table(v1, v2)
    assert set(table["attributes"]) == {"alcohol"}
    assert set(table["positive class"]) == set(schema.classes)  # multiclass: each class against the rest
    assert len(table) == len(schema.classes) * len(DISPARITIES)
    for row in table.to_dict("records"):
        for name, version in (("v1", v1), ("v2", v2)):
            stored = getattr(find_summary(version.fairness, ["alcohol"], row["positive class"]), row["disparity"])
            assert row[name] == pytest.approx(np.nan if stored is None else stored, nan_ok=True)
        assert row["change"] == pytest.approx(row["v2"] - row["v1"], nan_ok=True)
        if row["fairer"] not in ("", "same"):
            lower_is_fairer = row["disparity"].endswith("difference")
            assert row["fairer"] == ("v2" if (row["change"] < 0) == lower_is_fairer else "v1")


def test_an_attribute_set_only_one_version_stored_leaves_the_other_blank(store: Store, project: Project) -> None:
    v1, v2 = store.model_versions(project.id)
    summary = {"sensitive": "region", "split": "validation", "positive_class": "class_1", "by_group": {},
               "demographic_parity_difference": 0.3, "demographic_parity_ratio": 0.6,
               "equalized_odds_difference": 0.2, "equalized_odds_ratio": None}
    table = compare.fairness_table(dataclasses.replace(v1, fairness=[]), dataclasses.replace(v2, fairness=[summary]))
    assert table["v1"].isna().all() and set(table["fairer"]) == {""}
    assert dict(zip(table["disparity"], table["v2"].fillna(-1))) == {
        "demographic_parity_difference": 0.3, "demographic_parity_ratio": 0.6, "equalized_odds_difference": 0.2,
        "equalized_odds_ratio": -1}


def test_without_sensitive_columns_there_is_no_fairness_to_compare(store: Store, project: Project) -> None:
    assert compare.fairness_table(*store.model_versions(project.id)).empty


def test_the_page_opens_on_current_versus_previous_and_after_a_rollback_on_the_newer_one(
        store: Store, project: Project) -> None:
    assert compare.default_pair(store.model_versions(project.id), 2) == (2, 1)
    actions.set_current_version(store, project.id, "lead", version=1, reason="v2 overfits the corrections")
    assert compare.default_pair(store.model_versions(project.id), 1) == (1, 2)
    assert compare.default_pair(store.model_versions(project.id)[:1], 1) is None


def test_previous_skips_a_superseded_version_that_was_never_current(store: Store, project: Project) -> None:
    stale = loop.train_snapshot(store, store.project(project.id))  # labels as of v2
    actions.record_decisions(store, project.id, "bob", corrections(store, project, 5, skip=40))
    actions.retrain(store, project.id, "ana", trigger="manual")  # v3, current
    late = actions.record_version(store, project.id, stale, actor="worker", trigger="correction")  # v4, superseded
    versions = store.model_versions(project.id)
    assert [v.status for v in versions] == ["older", "older", "current", "superseded"]
    assert late.version == 4 and compare.default_pair(versions, 3) == (3, 2)


def test_version_table_says_who_made_a_version_current_and_why(store: Store, project: Project) -> None:
    actions.set_current_version(store, project.id, "lead", version=1, reason="v2 is worse on class_2")
    table = compare.version_table(store.model_versions(project.id), store.events(project.id))
    assert list(table["version"]) == [2, 1]
    assert list(table["status"]) == ["older", "current"]
    assert table.loc[table["version"] == 1, "why"].item() == "rolled back to by lead: v2 is worse on class_2"
    assert list(table["decisions"]) == [30, 0] and list(table["trigger"]) == ["manual", "initial"]
    event = store.events(project.id).iloc[-1]
    assert (event["action"], event["note"], json.loads(event["after"])) == (
        "rollback", "v2 is worse on class_2", {"current": 1})


def test_the_chart_shows_both_versions_beside_the_baseline_from_zero(store: Store, project: Project) -> None:
    v1, v2 = store.model_versions(project.id)
    figure = json.loads(compare.metrics_figure(v1, v2).to_json())
    assert [t["name"] for t in figure["data"]] == ["v1", "v2", "majority baseline"]
    assert all(t["type"] == "bar" for t in figure["data"])
    assert figure["layout"]["barmode"] == "group" and figure["layout"]["yaxis"]["range"][0] == 0
    assert "Log loss ↓" in figure["data"][0]["x"]


def test_a_change_too_small_to_show_in_three_decimals_is_never_called_better() -> None:
    assert compare._better(-0.0004, True, "v1", "v2") == "same"
    assert compare._better(0.0006, False, "v1", "v2") == "v2"
