"""Fairness page: the breakdown of the current version, its history per version, the reviewers, mitigation."""
from __future__ import annotations

from hitl_core import actions, jobs
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
from tests.core.helpers import pool

PAGE = "pages/fairness.py"
LOAN = "Loan approvals (synthetic, biased)"


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _tables(at, column):
    """The page's tables holding ``column`` (AppTest exposes no key for a read-only dataframe), in page order."""
    return [d.value for d in at.dataframe if column in d.value.columns]


def _groups(at, part=0):
    """The per-group table: validation (0), held-out test (1)."""
    return _tables(at, "Selection rate")[part]


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
    assert any("Four-fifths rule met" in s.value and "validation" in s.value for s in at.success)
    assert any("Four-fifths rule" in m.value and "test" in m.value for m in [*at.success, *at.error])
    labels = [m.label for m in at.metric]
    assert labels.count("Demographic parity ratio") == 2  # validation, and the held-out test set apart
    assert {"Equalized odds difference", "Equalized odds ratio", "Demographic parity difference"} <= set(labels)
    table = _groups(at)
    assert list(table.index) == ["group_a", "group_b"]
    assert {"Rows", "Base rate", "Selection rate", "Accuracy", "Balanced accuracy", "TPR (recall)", "FPR",
            "Precision", "Mean confidence"} <= set(table.columns)
    assert table["Rows"].sum() == 410
    assert _groups(at, 1)["Rows"].sum() == 410
    assert any("Positive class: **yes**" in m.value for m in at.markdown)


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
