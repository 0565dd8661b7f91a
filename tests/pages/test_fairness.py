"""Fairness page: the breakdown of the current version for the named favourable outcome, its history per version,
the reviewers, mitigation; and the favourable outcome asked for when a project is created or opened without one."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from hitl_core import actions, jobs
from hitl_core.data import check
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
from tests.core.helpers import pool

PAGE = "pages/fairness.py"
LOAN = "Loan approvals (synthetic, biased)"
QUESTION = "Which outcome is favourable for the people in this data?"


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _tables(at, column):
    """The page's tables holding ``column`` (AppTest exposes no key for a read-only dataframe), in page order."""
    return [d.value for d in at.dataframe if column in d.value.columns]


def _groups(at, part=0):
    """The per-group table: validation (0), held-out test (1)."""
    return _tables(at, "flag")[part]


def _history(at):
    found = _tables(at, "Demographic parity ratio")
    return found[0] if found else None


def _reviewers(at):
    found = _tables(at, "Decisions")
    return found[0] if found else None


def _mitigation(at):
    found = _tables(at, "mitigated (demographic parity)")
    return found[0] if found else None


def test_the_demo_project_is_broken_down_by_group(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    verdict = next(s.value for s in at.success if "Four-fifths rule met" in s.value and "validation" in s.value)
    assert "for the favourable outcome 'yes'" in verdict  # what is compared is named, not assumed
    assert any("Four-fifths rule" in m.value and "test" in m.value for m in [*at.success, *at.error])
    labels = [m.label for m in at.metric]
    assert labels.count("Demographic parity ratio") == 2  # validation, and the held-out test set apart
    assert {"Equalized odds difference", "Equalized odds ratio", "Demographic parity difference"} <= set(labels)
    table = _groups(at)
    assert list(table.index) == ["group_a", "group_b"]
    assert {"Rows", "Share labelled 'yes'", "Share predicted 'yes'", "Accuracy", "Balanced accuracy", "TPR (recall)",
            "FPR", "Precision", "Mean confidence"} <= set(table.columns)
    assert table["Rows"].sum() == 410
    assert _groups(at, 1)["Rows"].sum() == 410
    assert any("Favourable outcome: **yes**" in m.value for m in at.markdown)
    assert any("share predicted 'yes' (favourable)" in c.value for c in at.caption)
    assert not any("positive class" in m.value.lower() for m in [*at.markdown, *at.caption, *at.success])


def test_the_history_gains_a_point_per_model_version(start_app, database_url):
    at = start_app()
    at.switch_page(PAGE).run()
    assert list(_history(at)["version"]) == [1]
    assert any("No decisions yet" in i.value for i in at.info)

    store = Store(database_url)
    row = pool(store, store.project(1)).dropna(subset=["label"]).iloc[0]
    flipped = next(c for c in store.project(1).schema.classes if c != row["label"])
    actions.record_decision(store, 1, "ana", DecisionRequest(row.name, flipped, expected=row["label"],
                                                             predicted_label=row["predicted"],
                                                             confidence=row["confidence"], model_version=1))
    jobs.work(store, once=True)  # the retrain the correction queued, as the worker beside the app runs it
    assert len(store.model_versions(1)) == 2

    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    history = _history(at)
    assert list(history["version"]) == [2, 1]
    assert list(history["human labels"]) == [1, 0]
    assert any("Model **v2**" in c.value for c in at.caption)
    assert _reviewers(at)["Decisions"].sum() == 1
    assert any(m.delta and "vs previous version" in m.delta for m in at.metric)  # change against version 1


def test_an_intersection_with_a_high_minimum_flags_small_groups(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    at.multiselect(key="fairness_attributes_1").set_value(["group", "gender"]).run()
    at.number_input(key="fairness_min_size_1").set_value(100).run()
    assert not at.exception, at.exception
    table = _groups(at)
    assert list(table.index) == ["group_a × female", "group_a × male", "group_b × female", "group_b × male"]
    assert set(table.loc[table["flag"] == "too small to judge"].index) == {"group_b × female", "group_b × male"}
    assert any("Too small to judge" in w.value and "group_b × male" in w.value for w in at.warning)
    verdict = next(s.value for s in at.success if "validation" in s.value)  # only the two group_a groups compared
    assert "Four-fifths rule met" in verdict and "group_b" not in verdict
    assert _history(at) is not None  # intersections have a stored history too
    at.number_input(key="fairness_min_size_1").set_value(200).run()
    assert any("Four-fifths rule not judged" in w.value for w in at.warning)  # no group has 200 rows
    assert set(_groups(at)["flag"]) == {"too small to judge"}


def test_sensitive_features_make_the_loan_bias_a_four_fifths_violation(start_app, database_url):
    at = start_app()
    at.selectbox(key="sample_name").set_value("loan").run()
    at.checkbox(key=f"sens_feat_{LOAN}").check().run()
    roles = next(d.value for d in at.dataframe if "role" in getattr(d.value, "columns", []))
    assert dict(zip(roles["column"], roles["role"]))["group"] == "sensitive + feature"
    _button(at, "Create project and train").click()
    at.run()
    assert not at.exception
    project = Store(database_url).projects()[-1]
    assert "group" in project.schema.features

    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    violation = next(e.value for e in at.error if "Four-fifths rule violated" in e.value and "validation" in e.value)
    assert "group_b" in violation
    assert _groups(at).loc["group_b", "flag"] == "below 4/5 of the highest"

    at.toggle(key=f"fairness_mitigate_{project.id}").set_value(True).run()
    assert not at.exception, at.exception
    comparison = _mitigation(at)
    assert list(comparison.columns) == ["model", "mitigated (demographic parity)"]
    assert comparison.loc["four-fifths violated"].tolist() == ["yes", "no"]


def test_mitigation_is_off_by_default(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    assert at.toggle(key="fairness_mitigate_1").value is False
    assert _mitigation(at) is None


def test_a_project_without_sensitive_attributes_says_how_to_choose_one(start_app):
    at = start_app()
    at.selectbox(key="sample_name").set_value("wine").run()
    _button(at, "Create project and train").click()
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    message = next(i.value for i in at.info if "sensitive attribute" in i.value)
    assert "Data" in message and "Sensitive attributes" in message
    assert not at.metric and not at.dataframe


def test_a_multiclass_target_gets_a_class_picker_and_binned_groups(start_app):
    at = start_app()
    at.selectbox(key="sample_name").set_value("wine").run()
    at.multiselect(key="sens_Wine cultivars (3 classes)").set_value(["alcohol"]).run()
    assert any("alcohol: 11" in c.value for c in at.caption)  # the groups are shown before creating the project
    _button(at, "Create project and train").click()
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    picker = at.selectbox(key="fairness_class_2")
    assert picker.options == ["class_0", "class_1", "class_2"] and picker.value == "class_2"
    picker.set_value("class_0").run()
    assert not at.exception, at.exception
    table = _groups(at)
    assert len(table) == 4 and all("–" in g for g in table.index)
    assert list(_history(at)["version"]) == [1]  # every class's history is stored


# --------------------------------------------------------------------------- the favourable outcome
def _mortgages(n: int = 1000, seed: int = 3) -> pd.DataFrame:
    """HMDA-like: ``deny`` no/yes, where 'yes' is the bad outcome and group A is denied more often."""
    rng = np.random.default_rng(seed)
    race = rng.choice(["A", "B"], size=n)
    debt = rng.beta(2, 5, n).round(3)
    income = rng.lognormal(11, 0.4, n).round(-2)
    score = -1.5 + 4 * debt - 0.8 * np.log(income / 60000) + 1.5 * (race == "A")
    deny = np.where(rng.random(n) < 1 / (1 + np.exp(-score)), "yes", "no")
    return pd.DataFrame({"application": np.arange(n), "race": race, "income": income, "debt_ratio": debt,
                         "deny": deny})


def _project_without_favourable(database_url: str) -> int:
    """A project stored as before this choice existed: sensitive attribute, binary target, no favourable outcome."""
    store = Store(database_url)
    frame = _mortgages()
    schema = check(frame, "deny", id_column="application", sensitive=["race"], sensitive_as_features=True)[0]
    project, _ = actions.create_project(store, "ana", name="Mortgages", source="upload:hmda.csv", frame=frame,
                                        schema=schema, model_kind="logreg")
    store.engine.dispose()
    return project.id


def test_a_project_without_a_favourable_outcome_is_asked_and_the_answer_is_saved(start_app, database_url):
    at = start_app()
    project_id = _project_without_favourable(database_url)
    at.query_params["project"] = str(project_id)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    prompt = next(w.value for w in at.warning if "No favourable outcome chosen yet" in w.value)
    assert "'no'" in prompt and "'yes'" in prompt
    choice = next(r for r in at.radio if r.label == QUESTION)
    assert choice.options == ["no", "yes"] and choice.value is None  # never guessed
    assert not at.metric and not at.dataframe  # no selection rate, no verdict until chosen
    assert not any("Four-fifths rule" in m.value for m in [*at.success, *at.error])

    _button(at, "Save the favourable outcome").click()
    at.run()
    assert any("Pick one of the outcomes first" in e.value for e in at.error)
    assert Store(database_url).project(project_id).schema.favourable is None

    next(r for r in at.radio if r.label == QUESTION).set_value("no")
    _button(at, "Save the favourable outcome").click()
    at.run()
    assert not at.exception, at.exception
    store = Store(database_url)
    assert store.project(project_id).schema.favourable == "no"
    event = store.events(project_id).iloc[-1]
    assert event["action"] == "settings" and json.loads(event["after"]) == {"favourable": "no"}
    assert any("Favourable outcome: **no**" in m.value for m in at.markdown)
    verdict = next(m.value for m in [*at.success, *at.error] if "Four-fifths rule" in m.value and "validation" in m.value)
    assert "for the favourable outcome 'no'" in verdict
    table = _groups(at)
    assert list(table.index) == ["A", "B"] and "Share predicted 'no'" in table.columns  # share approved
    assert list(_history(at)["version"]) == [1]  # version 1 was stored for 'yes': converted, not lost


def test_the_favourable_outcome_can_be_changed_through_the_write_path(start_app, database_url):
    at = start_app()
    at.switch_page(PAGE).run()
    next(r for r in at.radio if r.label == QUESTION).set_value("no")
    _button(at, "Save the favourable outcome").click()
    at.run()
    assert not at.exception, at.exception
    assert Store(database_url).project(1).schema.favourable == "no"
    assert any("Favourable outcome: **no**" in m.value for m in at.markdown)
    assert "Share predicted 'no'" in _groups(at).columns


def test_creating_a_project_with_sensitive_attributes_asks_for_the_favourable_outcome(start_app, database_url):
    at = start_app()
    at.selectbox(key="sample_name").set_value("loan").run()
    assert next(r for r in at.radio if r.label == QUESTION).value == "yes"  # the loan sample says so itself
    at.selectbox(key=f"target_{LOAN}").set_value("gender").run()
    at.multiselect(key=f"sens_{LOAN}").set_value(["group"]).run()
    choice = next(r for r in at.radio if r.label == QUESTION)
    assert choice.options == ["female", "male"] and choice.value is None  # another target: nobody said
    n_projects = len(Store(database_url).projects())
    _button(at, "Create project and train").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Choose the favourable outcome" in e.value for e in at.error)
    assert len(Store(database_url).projects()) == n_projects  # nothing created

    next(r for r in at.radio if r.label == QUESTION).set_value("male")
    _button(at, "Create project and train").click()
    at.run()
    assert not at.exception, at.exception
    project = Store(database_url).projects()[-1]
    assert (project.schema.target, project.schema.favourable) == ("gender", "male")
    assert any("favourable outcome: **male**" in c.value for c in at.caption)  # the current project's summary


def test_the_data_page_says_when_a_project_has_no_favourable_outcome(start_app, database_url):
    at = start_app()
    project_id = _project_without_favourable(database_url)
    at.query_params["project"] = str(project_id)
    at.run()
    assert any("favourable outcome: *not chosen yet*" in c.value for c in at.caption)
