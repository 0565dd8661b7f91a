"""Counterfactuals: every one shown really flips the model's prediction, keeps immutable columns and ranges,
and changes nothing it does not list; a what-if that flips the prediction is saved with who and which version."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, counterfactual, users
from hitl_core.counterfactual import CounterfactualError, CounterfactualExplainer, RecourseSettings
from hitl_core.data import Dataset, Schema, check
from hitl_core.loop import fit_on_pool
from hitl_core.models import FittedModel, predict_with_confidence
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def loan_data(loan: Sample) -> Dataset:
    """The loan sample with its sensitive attributes as features, so that immutability is tested on them."""
    schema, _ = check(loan.frame, loan.target, id_column=loan.id_column, sensitive=loan.sensitive, pii=loan.pii,
                      sensitive_as_features=True)
    return Dataset.create("loan", loan.frame, schema, seed=0)


@pytest.fixture(scope="module")
def wine_data(wine: Sample, wine_schema: Schema) -> Dataset:
    return Dataset.create("wine", wine.frame, wine_schema, seed=0)


def _independently_checked(model: FittedModel, schema: Schema, row: pd.DataFrame, cf: counterfactual.Counterfactual,
                           desired: str, immutable: tuple[str, ...]) -> None:
    """What a reader of the JSON would check: apply the listed changes to the row, predict, compare."""
    changed = row[list(schema.features)].copy()
    for column, (old, new) in cf.changes.items():
        value = row.iloc[0][column]
        assert (old is None and pd.isna(value)) or old == value or np.isclose(float(old), float(value))
        changed[column] = changed[column].astype(float if column in schema.numeric else object)
        changed[column] = np.nan if new is None else new
    assert not set(cf.changes) & set(immutable)
    now = predict_with_confidence(model, changed, schema.classes)
    assert now.labels[0] == desired == cf.predicted
    assert now.confidence[0] == pytest.approx(cf.confidence)
    untouched = [c for c in schema.features if c not in cf.changes]
    pd.testing.assert_frame_equal(changed[untouched], row[untouched])


@pytest.mark.parametrize("kind", ["logreg", "hgb", "rf"])
def test_every_loan_counterfactual_flips_the_prediction_and_keeps_immutable_columns(kind: str,
                                                                                      loan_data: Dataset) -> None:
    schema = loan_data.schema
    model = fit_on_pool(loan_data, loan_data.labels, kind, seed=0)
    explainer = CounterfactualExplainer(model, schema, loan_data.features.loc[loan_data.rows("train")])
    immutable = counterfactual.default_immutable(schema)
    assert set(immutable) == {"age", "gender", "group"}
    shown = 0
    for key in loan_data.rows("validation")[:3]:
        row = loan_data.features.loc[[key]]
        predicted = predict_with_confidence(model, row, schema.classes).labels[0]
        desired = "no" if predicted == "yes" else "yes"
        result = explainer.explain(row, RecourseSettings(desired=desired, count=3, immutable=immutable))
        assert result.predicted == predicted and len(result.counterfactuals) <= 3
        assert len(result.counterfactuals) + result.n_dropped <= result.found
        for cf in result.counterfactuals:
            _independently_checked(model, schema, row, cf, desired, immutable)
        shown += len(result.counterfactuals)
    assert shown > 0


@pytest.mark.parametrize("kind", ["logreg", "hgb", "rf"])
def test_multiclass_counterfactuals_reach_the_chosen_class(kind: str, wine_data: Dataset) -> None:
    schema = wine_data.schema
    model = fit_on_pool(wine_data, wine_data.labels, kind, seed=0)
    explainer = CounterfactualExplainer(model, schema, wine_data.features.loc[wine_data.rows("train")])
    key = wine_data.rows("validation")[0]
    row = wine_data.features.loc[[key]]
    proba = predict_with_confidence(model, row, schema.classes)
    desired = counterfactual.default_desired(schema, schema.classes, proba.proba[0], proba.labels[0])
    assert desired != proba.labels[0]
    result = explainer.explain(row, RecourseSettings(desired=desired, count=4))
    assert result.counterfactuals, result.summary()
    for cf in result.counterfactuals:
        _independently_checked(model, schema, row, cf, desired, ())


def test_allowed_ranges_hold_for_every_changed_number(loan_data: Dataset) -> None:
    schema = loan_data.schema
    model = fit_on_pool(loan_data, loan_data.labels, "logreg", seed=0)
    explainer = CounterfactualExplainer(model, schema, loan_data.features.loc[loan_data.rows("train")])
    scored = predict_with_confidence(model, loan_data.features.loc[loan_data.rows("validation")],
                                     schema.classes).to_frame()
    key = scored[scored["predicted"] == "no"]["confidence"].idxmin()  # the refusal closest to the line
    row = loan_data.features.loc[[key]]
    income = float(row.iloc[0]["income"])
    ranges = (("income", income, income * 1.5), ("credit_score", 300.0, 700.0))
    result = explainer.explain(row, RecourseSettings(desired="yes", count=4, ranges=ranges,
                                                     immutable=("age", "gender", "group", "employment_type")))
    assert result.counterfactuals, result.summary()
    for cf in result.counterfactuals:
        for column, low, high in ranges:
            if column in cf.changes:
                assert low <= cf.changes[column][1] <= high
        assert "employment_type" not in cf.changes


def test_the_check_drops_candidates_that_break_a_rule_and_says_why(loan_data: Dataset) -> None:
    schema = loan_data.schema
    model = fit_on_pool(loan_data, loan_data.labels, "logreg", seed=0)
    key = loan_data.rows("validation")[0]
    row = loan_data.features.loc[[key]]
    predicted = predict_with_confidence(model, row, schema.classes).labels[0]
    desired = "no" if predicted == "yes" else "yes"
    flip_income = 1.0 if desired == "no" else 10_000_000.0  # an income far enough to flip either way
    candidates = [{}, {"age": 99}, {"income": flip_income, "credit_score": 2000.0}, {"income": flip_income},
                  {"debt_to_income": float(row.iloc[0]["debt_to_income"])}]
    valid, reasons = counterfactual.check(model, schema, row, candidates, desired=desired, immutable=("age",),
                                          ranges=(("credit_score", 300.0, 850.0),))
    assert [cf.changes for cf in valid] == [{"income": (float(row.iloc[0]["income"]), flip_income)}]
    assert reasons == {"changed nothing": 2, "changed an immutable column": 1, "outside an allowed range": 1}
    _, reasons = counterfactual.check(model, schema, row, [{"years_employed": float(row.iloc[0]["years_employed"])
                                                            + 0.1}], desired=desired)
    assert reasons == {f"not predicted '{desired}' when re-checked": 1}


def test_age_like_columns_are_recognised_by_their_words() -> None:
    assert all(counterfactual.is_age_like(c) for c in ["age", "Age", "age_years", "dateOfBirth", "birth_year", "DOB"])
    assert not any(counterfactual.is_age_like(c) for c in ["percentage", "mileage", "usage", "page_views", "stage"])


def test_a_what_if_form_reports_only_what_the_person_changed(loan_data: Dataset) -> None:
    schema = loan_data.schema
    row = loan_data.features.iloc[[0]].copy()
    row["employment_type"] = np.nan
    row["income"] = np.nan
    edited = {f: row.iloc[0][f] for f in schema.features}
    edited.update({"employment_type": "", "income": None, "credit_score": float(row.iloc[0]["credit_score"]),
                   "age": int(row.iloc[0]["age"]) + 1})  # the form gives "" / None for missing, floats for numbers
    assert counterfactual.edited_changes(schema, row, edited) == {"age": float(row.iloc[0]["age"]) + 1}


def test_settings_that_cannot_work_are_refused_with_a_message(loan_data: Dataset) -> None:
    schema = loan_data.schema
    with pytest.raises(CounterfactualError, match="not a class"):
        RecourseSettings(desired="maybe").validated(schema)
    with pytest.raises(CounterfactualError, match="not a feature"):
        RecourseSettings(desired="yes", immutable=("email",)).validated(schema)
    with pytest.raises(CounterfactualError, match="lowest value first"):
        RecourseSettings(desired="yes", ranges=(("income", 10.0, 1.0),)).validated(schema)
    with pytest.raises(CounterfactualError, match="not numeric"):
        RecourseSettings(desired="yes", ranges=(("gender", 0.0, 1.0),)).validated(schema)
    with pytest.raises(CounterfactualError, match="allow at least one"):
        RecourseSettings(desired="yes", immutable=schema.features).validated(schema)
    model = fit_on_pool(loan_data, loan_data.labels, "logreg", seed=0)
    explainer = CounterfactualExplainer(model, schema, loan_data.features.loc[loan_data.rows("train")])
    row = loan_data.features.iloc[[0]]
    predicted = predict_with_confidence(model, row, schema.classes).labels[0]
    with pytest.raises(CounterfactualError, match="already predicted"):
        explainer.explain(row, RecourseSettings(desired=predicted))


def test_a_row_with_missing_values_gets_counterfactuals_that_keep_them_missing(loan_data: Dataset) -> None:
    schema = loan_data.schema
    model = fit_on_pool(loan_data, loan_data.labels, "hgb", seed=0)
    explainer = CounterfactualExplainer(model, schema, loan_data.features.loc[loan_data.rows("train")])
    row = loan_data.features.iloc[[5]].copy()
    row["years_employed"] = np.nan
    predicted = predict_with_confidence(model, row, schema.classes).labels[0]
    desired = "no" if predicted == "yes" else "yes"
    result = explainer.explain(row, RecourseSettings(desired=desired, immutable=("age", "gender", "group")))
    for cf in result.counterfactuals:
        _independently_checked(model, schema, row, cf, desired, ("age", "gender", "group"))


# --------------------------------------------------------------------------- saved what-ifs (write path)
def _flipping_change(store: Store, project_id: int, version: int, key: str) -> tuple[dict, str, str]:
    """A one-column change found by the search itself, the row's prediction and the flipped one."""
    project = store.project(project_id)
    data = store.load_dataset(project)
    model = store.load_model(project_id, version)
    row = data.features.loc[[key]]
    proba = predict_with_confidence(model, row, project.schema.classes)
    desired = counterfactual.default_desired(project.schema, project.schema.classes, proba.proba[0], proba.labels[0])
    explainer = CounterfactualExplainer(model, project.schema, data.features.loc[data.rows("train")])
    found = explainer.explain(row, RecourseSettings(desired=desired, count=1)).counterfactuals[0]
    return {c: new for c, (_, new) in found.changes.items()}, str(proba.labels[0]), desired


def test_a_saved_what_if_is_stored_with_who_and_which_version(database_url: str) -> None:  # noqa: F811
    store = Store(database_url)
    try:
        project = create_project(store, "wine")
        key = str(store.pool_rows(project)[0][0])
        changes, was, desired = _flipping_change(store, project.id, 1, key)
        saved = actions.save_counterfactual(store, project.id, "bea", row_key=key, model_version=1, changes=changes,
                                            note="would the other cultivar")
        stored = store.counterfactuals(project.id, key)
        assert list(stored["id"]) == [saved] and stored.iloc[0]["created_by"] == "bea"
        assert stored.iloc[0]["model_version"] == 1 and stored.iloc[0]["source"] == "what-if"
        result = json.loads(stored.iloc[0]["result_json"])
        assert result["was"] == was and result["predicted"] == desired and set(result["changes"]) == set(changes)
        event = store.events(project.id).iloc[-1]
        assert (event["actor"], event["action"], event["object"]) == ("bea", "counterfactual_saved", f"row {key}")
        assert json.loads(event["after"])["counterfactual"] == saved
    finally:
        store.engine.dispose()


def test_withdrawing_a_row_removes_its_saved_counterfactuals(store: Store) -> None:
    project = create_project(store, "wine")
    key = str(store.pool_rows(project)[0][0])
    changes, _, _ = _flipping_change(store, project.id, 1, key)
    actions.save_counterfactual(store, project.id, "bea", row_key=key, model_version=1, changes=changes)
    actions.withdraw_rows(store, project.id, "bea", [key], "the data subject asked")
    assert store.counterfactuals(project.id).empty


def test_a_what_if_that_keeps_the_prediction_is_refused_and_nothing_is_written(store: Store) -> None:
    project = create_project(store, "wine")
    key = str(store.pool_rows(project)[0][0])
    row = store.load_dataset(project).features.loc[key]
    events = len(store.events(project.id))
    with pytest.raises(actions.InvalidAction, match="keeps v1's prediction"):
        actions.save_counterfactual(store, project.id, "bea", row_key=key, model_version=1,
                                    changes={"alcohol": float(row["alcohol"]) + 1e-6})
    with pytest.raises(actions.InvalidAction, match="not a feature"):
        actions.save_counterfactual(store, project.id, "bea", row_key=key, model_version=1, changes={"nope": 1})
    with pytest.raises(actions.InvalidAction, match="no model version 7"):
        actions.save_counterfactual(store, project.id, "bea", row_key=key, model_version=7, changes={"alcohol": 1})
    assert store.counterfactuals(project.id).empty and len(store.events(project.id)) == events


def test_a_viewer_may_not_save_a_counterfactual(store: Store) -> None:
    project = create_project(store, "wine")
    key = str(store.pool_rows(project)[0][0])
    changes, _, _ = _flipping_change(store, project.id, 1, key)
    actions.add_user(store, "ana", name="ana", role="admin", password="correct horse")
    actions.add_user(store, "ana", name="vic", role="viewer", password="correct horse")
    with pytest.raises(users.PermissionDenied, match="viewer may not give feedback"):
        actions.save_counterfactual(store, project.id, "vic", row_key=key, model_version=1, changes=changes)
    assert store.counterfactuals(project.id).empty


# --------------------------------------------------------------------------- CLI contract
def test_cli_explain_writes_counterfactuals_that_obey_the_contract(tmp_path: Path, loan_data: Dataset) -> None:
    out = tmp_path / "explain.json"
    key = str(loan_data.rows("validation")[0])
    done = subprocess.run(
        [sys.executable, "-m", "hitl_core", "explain", "sample:loan", "--target", "approved",
         "--id", "application_id", "--sensitive", "group", "--sensitive", "gender", "--pii", "email",
         "--row", key, "--counterfactuals", "3", "--immutable", "employment_type", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    found = report["counterfactuals"]
    assert 1 <= len(found) <= 3
    # check each one against a model trained the way the CLI trains it (version 1 on the file's labels)
    schema, _ = check(loan_data.frame, "approved", id_column="application_id", sensitive=["group", "gender"],
                      pii=["email"])
    data = Dataset.create("loan", loan_data.frame, schema, seed=0)
    model = fit_on_pool(data, data.labels, "logreg", seed=0)
    row = data.features.loc[[key]]
    predicted = predict_with_confidence(model, row, schema.classes).labels[0]
    for item in found:
        assert set(item) == {"changes", "predicted", "confidence"} and item["predicted"] != predicted
        assert "employment_type" not in item["changes"] and "age" not in item["changes"]
        cf = counterfactual.Counterfactual(changes={c: tuple(v) for c, v in item["changes"].items()},
                                           predicted=item["predicted"], confidence=item["confidence"])
        _independently_checked(model, schema, row, cf, item["predicted"], ("employment_type", "age"))
    assert f"{len(found)} counterfactual(s)" in done.stdout


def test_cli_refuses_an_unknown_desired_class_with_a_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hitl_core", "explain", "sample:wine", "--target", "target", "--row", "0",
         "--counterfactuals", "2", "--desired", "nonsense"],
        cwd=ROOT, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 2 and "'nonsense' is not a class of 'target'" in done.stderr
