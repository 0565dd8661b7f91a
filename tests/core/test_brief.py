"""The project brief: safety checks on real model versions, goal progress, versions kept with who, validation."""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_ratio
from sklearn.metrics import recall_score

from hitl_core import actions, brief, charts, users
from hitl_core.brief import Brief, PremortemItem, SafetyCheck, SmartGoal, Stakeholder
from hitl_core.data import Schema, check
from hitl_core.fairness import attribute_name, attribute_sets, find_summary
from hitl_core.models import predict_with_confidence
from hitl_core.records import ModelVersion, Project
from hitl_core.samples import Sample
from hitl_core.store import Store
from tests.core.helpers import ACTOR, bare_project
from tests.support.databases import database_url, pg_server  # noqa: F401 (fixtures)

TODAY = date(2026, 12, 2)


def _mortgages(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Denials (``deny`` = yes) rare in group A (~10 %) and commoner in group B (~18 %), like HMDA.

    The share *denied* fails the four-fifths rule (0.10 / 0.18); the share *approved* meets it (0.82 / 0.90).
    """
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], n)
    score = rng.normal(size=n) + np.where(group == "B", 0.35, 0.0)
    deny = np.where(score + rng.normal(scale=0.1, size=n) > 1.28, "yes", "no")
    return pd.DataFrame({"score": score, "income": rng.normal(50, 10, n), "group": group, "deny": deny})


@pytest.fixture(scope="module")
def mortgages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Project, ModelVersion, pd.DataFrame]]:
    """A real project and version 1 on the mortgage frame, favourable outcome: not denied."""
    frame = _mortgages()
    schema, _ = check(frame, "deny", sensitive=["group"], favourable="no")
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('brief') / 'hitl.db'}")
    project, version = actions.create_project(store, ACTOR, name="mortgages", source="test", frame=frame,
                                              schema=schema, model_kind="logreg")
    yield store, project, version, frame
    store.engine.dispose()


def _validation_predictions(store: Store, project: Project, version: ModelVersion) -> tuple[pd.Series, np.ndarray]:
    """The version's predictions on the validation rows, from the stored model (not from stored metrics)."""
    data = store.load_dataset(project)
    rows = data.rows("validation")
    preds = predict_with_confidence(store.load_model(project.id, version.version), data.features.loc[rows],
                                    project.schema.classes)
    return data.labels.loc[rows].astype(str), np.asarray(preds.labels, dtype=str)


def test_a_check_that_holds_passes_and_one_that_does_not_fails(mortgages) -> None:
    store, project, version, _ = mortgages
    accuracy = version.validation["accuracy"]
    checks = (SafetyCheck("accurate enough", "metric", metric="accuracy", value=round(accuracy - 0.05, 2)),
              SafetyCheck("near perfect", "metric", metric="accuracy", value=0.999),
              SafetyCheck("log loss low", "metric", metric="log_loss", comparison="<=", value=5.0, split="test"),
              SafetyCheck("beats majority", "beats_majority", metric="balanced_accuracy"),
              SafetyCheck("beats majority on log loss", "beats_majority", metric="log_loss", split="test"))
    results = brief.evaluate_checks(Brief(checks=checks), version, project.schema)
    assert [r.passed for r in results] == [True, False, True, True, True]
    assert results[0].value == pytest.approx(accuracy) and results[1].threshold == 0.999
    assert results[1].cell().startswith("✗") and "<" in results[1].detail
    assert results[3].threshold == pytest.approx(version.baselines["majority"]["validation"]["balanced_accuracy"])
    assert results[4].value < results[4].threshold  # lower is better: the model's log loss under the baseline's
    assert brief.summary(results) == "✗ 1 of 5 failed: near perfect"


def test_recall_of_a_class_matches_scikit_learn_on_the_validation_predictions(mortgages) -> None:
    store, project, version, _ = mortgages
    y_true, y_pred = _validation_predictions(store, project, version)
    expected = recall_score(y_true, y_pred, pos_label="yes")
    checks = (SafetyCheck("catch denials", "class_recall", class_name="yes", value=round(expected, 2) - 0.01),
              SafetyCheck("catch every denial", "class_recall", class_name="yes", value=min(1.0, expected + 0.01)))
    low, high = brief.evaluate_checks(Brief(checks=checks), version, project.schema)
    assert low.value == pytest.approx(expected) and low.passed is True
    assert high.passed is False


def test_four_fifths_check_judges_the_favourable_outcome_not_the_last_class(mortgages) -> None:
    """Approval meets the rule, denial (the alphabetically last class, 'yes') does not: the verdict flips."""
    store, project, version, _ = mortgages
    y_true, y_pred = _validation_predictions(store, project, version)
    groups = store.load_dataset(project).frame.loc[y_true.index, "group"]
    check = SafetyCheck("four-fifths by group", "four_fifths", attribute="group")
    approved, = brief.evaluate_checks(Brief(checks=(check,)), version, project.schema)
    denied, = brief.evaluate_checks(Brief(checks=(check,)), version, project.schema.with_favourable("yes"))
    assert approved.value == pytest.approx(demographic_parity_ratio(y_true == "no", y_pred == "no",
                                                                    sensitive_features=groups))
    assert denied.value == pytest.approx(demographic_parity_ratio(y_true == "yes", y_pred == "yes",
                                                                  sensitive_features=groups))
    assert approved.passed is True and denied.passed is False
    assert "share 'no'" in approved.detail and "share 'yes'" in denied.detail


def test_four_fifths_without_a_favourable_outcome_cannot_tell_and_says_what_to_do(mortgages) -> None:
    _, project, version, _ = mortgages
    result, = brief.evaluate_checks(Brief(checks=(SafetyCheck("ff", "four_fifths", attribute="group"),)), version,
                                    project.schema.with_favourable(None))
    assert result.passed is None and "favourable outcome" in result.detail
    assert brief.summary([result]) == "✓ 0/1 (1 cannot tell)"


def test_checks_table_has_a_row_per_version_and_a_column_per_check(mortgages) -> None:
    store, project, version, _ = mortgages
    checks = (SafetyCheck("ok", "metric", metric="accuracy", value=0.1),
              SafetyCheck("ff", "four_fifths", attribute="group"))
    table = brief.checks_table(Brief(checks=checks), [version], project.schema)
    assert list(table.columns) == ["version", "ok", "ff"] and table["version"].tolist() == [version.version]
    assert table.loc[0, "ok"].startswith("✓ ") and table.loc[0, "ff"].startswith("✓ ")


@pytest.mark.parametrize("value, comparison, days, expected", [
    (0.74, ">=", 89, "balanced accuracy 0.74 on validation, 0.06 short of the 0.80 goal, 89 days left."),
    (0.83, ">=", 1, "balanced accuracy 0.83 on validation: the 0.80 goal is met (1 day left)."),
    (0.70, ">=", -3, "balanced accuracy 0.70 on validation, 0.10 short of the 0.80 goal, the deadline (2026-11-29) "
                     "passed 3 days ago."),
    (0.85, "<=", 0, "balanced accuracy 0.85 on validation, 0.05 above the 0.80 goal, the deadline is today."),
])
def test_goal_progress_sentence_says_value_gap_and_time_left(mortgages, value, comparison, days, expected) -> None:
    _, _, version, _ = mortgages
    goal = SmartGoal("balanced_accuracy", 0.80, TODAY + timedelta(days=days), comparison=comparison)
    moved = ModelVersion(**{**version.__dict__, "validation": {**version.validation, "balanced_accuracy": value}})
    progress = brief.goal_progress(Brief(goal=goal), moved, TODAY)
    assert progress.sentence() == expected
    assert progress.met is (expected.count("met") == 1)


def test_goal_progress_reads_the_goal_split_and_is_none_without_a_goal(mortgages) -> None:
    _, _, version, _ = mortgages
    goal = SmartGoal("roc_auc", 0.805, date(2027, 3, 1), split="test")
    progress = brief.goal_progress(Brief(goal=goal), version, TODAY)
    assert progress.value == version.test["roc_auc"] and progress.days_left == 89
    assert f"{version.test['roc_auc']:.3f} on held-out test" in progress.sentence()  # 0.805 needs three decimals
    assert brief.goal_progress(Brief(), version, TODAY) is None


def _full_brief() -> Brief:
    return Brief(
        hypothesis="Reviewing 300 uncertain rows lifts balanced accuracy on validation above 0.80.",
        stakeholders=(Stakeholder("Loan officers", "invested", "time per file", "fewer files sent back"),
                      Stakeholder("Applicants", "impacted", "unfair denials", "same approval rate by group")),
        goal=SmartGoal("balanced_accuracy", 0.8, date(2027, 3, 1)), optimisation_metric="log_loss",
        success_measures="Officers trust the queue", premortem=(PremortemItem("labels drift", "weekly audit"),),
        checks=(SafetyCheck("four-fifths", "four_fifths", attribute="group"),
                SafetyCheck("recall of denials", "class_recall", class_name="yes", value=0.7)))


def test_json_round_trip_keeps_every_field() -> None:
    full = _full_brief()
    assert brief.from_json(brief.to_json(full)) == full
    assert brief.from_json("{}") == Brief()


def test_every_save_is_a_new_version_kept_with_who_and_what_changed(mortgages) -> None:
    store, project, _, _ = mortgages
    first = actions.save_brief(store, project.id, "ana", _full_brief())
    edited = Brief(**{**_full_brief().__dict__, "goal": SmartGoal("balanced_accuracy", 0.85, date(2027, 6, 1)),
                      "checks": _full_brief().checks[:1]})
    second = actions.save_brief(store, project.id, "ben", edited)
    assert second == first + 1
    history = brief.brief_history(store, project.id)
    assert [(h.version, h.created_by) for h in history][-2:] == [(first, "ana"), (second, "ben")]
    assert history[-2].brief == _full_brief() and brief.current_brief(store, project.id) == edited
    assert "check removed: recall of denials" in history[-1].changes
    assert any(c.startswith("goal: balanced accuracy ≥ 0.8 on validation by 2027-03-01 → "
                            "balanced accuracy ≥ 0.85") for c in history[-1].changes)
    events = store.events(project.id)
    saved = events[events["action"] == "brief"]
    assert saved["actor"].tolist()[-2:] == ["ana", "ben"] and saved["object"].tolist()[-1] == f"brief v{second}"


@pytest.mark.parametrize("change, message", [
    ({"goal": SmartGoal("accuracy_score", 0.8, date(2027, 1, 1))}, "unknown metric 'accuracy_score'"),
    ({"goal": SmartGoal("accuracy", 1.2, date(2027, 1, 1))}, "accuracy is between 0 and 1, so a target of 1.2"),
    ({"goal": SmartGoal("log_loss", -0.1, date(2027, 1, 1), comparison="<=")}, "log loss is 0 or more"),
    ({"stakeholders": (Stakeholder("  "),)}, "Stakeholder 1 has no name"),
    ({"checks": (SafetyCheck("", "metric", metric="accuracy", value=0.5),)}, "Safety check 1 has no name"),
    ({"checks": (SafetyCheck("a", "metric", metric="accuracy", value=0.5),) * 2}, "Two safety checks are named 'a'"),
    ({"checks": (SafetyCheck("ff", "four_fifths", attribute="gender"),)}, "'gender' is not a sensitive attribute"),
    ({"checks": (SafetyCheck("r", "class_recall", class_name="maybe", value=0.5),)}, "'maybe' is not a class"),
    ({"checks": (SafetyCheck("r", "class_recall", class_name="yes", value=0.5, split="test"),)},
     "validation split only"),
    ({"premortem": (PremortemItem("", "audit"),)}, "has a mitigation but no failure"),
])
def test_a_wrong_field_is_refused_with_a_message_and_nothing_is_written(mortgages, change, message) -> None:
    store, project, _, _ = mortgages
    before = len(store.briefs(project.id))
    with pytest.raises(actions.InvalidAction, match=message.replace("(", r"\(").replace(")", r"\)")):
        actions.save_brief(store, project.id, "ana", Brief(**{**_full_brief().__dict__, **change}))
    assert len(store.briefs(project.id)) == before


def test_brier_is_refused_for_a_multiclass_target(wine: Sample, wine_schema: Schema) -> None:
    with pytest.raises(brief.BriefError, match="unknown metric 'brier'"):
        brief.validate(Brief(goal=SmartGoal("brier", 0.1, TODAY, comparison="<=")), wine_schema)


def test_a_past_deadline_and_an_untestable_hypothesis_are_allowed_but_flagged(mortgages) -> None:
    store, project, _, _ = mortgages
    past = Brief(hypothesis="The model will help people.", goal=SmartGoal("accuracy", 0.8, date(2020, 1, 1)),
                 premortem=(PremortemItem("nobody reads the queue"),))
    assert actions.save_brief(store, project.id, "ana", past) >= 1
    found = brief.flags(past, TODAY)
    assert any("no measurable claim" in f for f in found)
    assert any("2020-01-01 is in the past" in f for f in found)
    assert any("has no mitigation" in f for f in found)
    assert brief.flags(_full_brief(), TODAY) == []


def test_edited_tables_become_brief_parts_and_blank_rows_are_dropped() -> None:
    checks = pd.DataFrame([{"name": "recall", "kind": "class_recall", "metric": None, "comparison": None,
                            "value": 0.7, "split": None, "attribute": None, "class": "yes"},
                           {"name": None, "kind": None, "metric": None, "comparison": None, "value": np.nan,
                            "split": None, "attribute": None, "class": None}])
    assert brief.checks_from_frame(checks) == (SafetyCheck("recall", "class_recall", value=0.7, class_name="yes"),)
    full = _full_brief()
    assert brief.stakeholders_from_frame(brief.stakeholders_frame(full)) == full.stakeholders
    assert brief.premortem_from_frame(brief.premortem_frame(full)) == full.premortem
    assert brief.checks_from_frame(brief.checks_frame(full)) == full.checks
    assert brief.stakeholders_from_frame(pd.DataFrame(columns=["name", "kind", "concerns", "success"])) == ()


def test_an_annotator_may_read_but_not_edit_the_brief(mortgages) -> None:
    store, project, _, _ = mortgages
    frame = _mortgages(300, seed=1)
    schema, _ = check(frame, "deny", sensitive=["group"], favourable="no")
    other = Store(store.url.replace("hitl.db", "roles.db"))
    try:
        target = bare_project(other, "roles", frame, schema)
        actions.add_user(other, "boss", name="boss", role="admin")
        actions.add_user(other, "boss", name="annie", role="annotator")
        actions.add_user(other, "boss", name="lea", role="lead")
        with pytest.raises(users.PermissionDenied, match="permission denied: annotator may not edit brief"):
            actions.save_brief(other, target.id, "annie", _full_brief())
        assert other.briefs(target.id) == []
        assert actions.save_brief(other, target.id, "lea", _full_brief()) == 1
    finally:
        other.engine.dispose()


def test_brief_versions_are_kept_on_every_backend(database_url: str, wine: Sample, wine_schema: Schema) -> None:
    store = Store(database_url)
    try:
        project = bare_project(store, "wine", wine.frame, wine_schema)
        goal = Brief(goal=SmartGoal("f1_macro", 0.9, date(2027, 1, 1)))
        assert [actions.save_brief(store, project.id, who, goal) for who in ("ana", "ben", "ana")] == [1, 2, 3]
        assert [(v, who) for v, who, _, _ in store.briefs(project.id)] == [(1, "ana"), (2, "ben"), (3, "ana")]
        assert brief.current_brief(store, project.id) == goal
        assert brief.brief_history(store, project.id)[1].changes == ["no change"]
    finally:
        store.engine.dispose()


def test_the_goal_is_a_dashed_line_on_the_history_chart_only_where_it_applies(mortgages) -> None:
    _, _, version, _ = mortgages
    goal = SmartGoal("balanced_accuracy", 0.8, date(2027, 3, 1))

    def lines(figure) -> list:
        return [s for s in figure.layout.shapes if s.y0 == s.y1]

    drawn = charts.metric_history([version], ["accuracy", "balanced_accuracy"], goal=goal)
    assert [(s.y0, s.line.dash) for s in lines(drawn)] == [(0.8, "dash")]
    assert "goal: balanced accuracy ≥ 0.8 on validation by 2027-03-01" in drawn.layout.annotations[0].text
    assert lines(charts.metric_history([version], ["accuracy"], goal=goal)) == []  # its metric is not shown
    on_test = SmartGoal("balanced_accuracy", 0.8, date(2027, 3, 1), split="test")
    assert lines(charts.metric_history([version], ["balanced_accuracy"], goal=on_test)) == []  # points are validation


def test_two_people_saving_at_once_get_consecutive_versions_on_every_backend(database_url: str, wine: Sample,
                                                                            wine_schema: Schema) -> None:
    """Saves serialise on the project's write lock: every save is kept, numbered 1..n without a gap or a clash."""
    setup = Store(database_url)
    project = bare_project(setup, "wine", wine.frame, wine_schema)

    def save_many(who: str) -> list[int]:
        store = Store(database_url, upgrade=False)
        try:
            return [actions.save_brief(store, project.id, who, Brief(hypothesis=f"{who} {i}")) for i in range(8)]
        finally:
            store.engine.dispose()

    try:
        with ThreadPoolExecutor(2) as pool:
            numbers = [n for saved in pool.map(save_many, ["ana", "ben"]) for n in saved]
        assert sorted(numbers) == list(range(1, 17))
        stored = setup.briefs(project.id)
        assert [v for v, _, _, _ in stored] == list(range(1, 17))
        assert {(who, brief.from_json(text).hypothesis.split()[0]) for _, who, _, text in stored} == {
            ("ana", "ana"), ("ben", "ben")}
    finally:
        setup.engine.dispose()


def test_four_fifths_for_the_other_class_equals_the_derived_fairness_report(store: Store, loan: Sample) -> None:
    """A version stored with 'yes' selected, judged for 'no': the quick ratio equals fairness.for_other_class's."""
    schema, _ = check(loan.frame, loan.target, id_column=loan.id_column, sensitive=loan.sensitive, pii=loan.pii,
                      favourable="yes")
    _, version = actions.create_project(store, ACTOR, name="loan", source="sample:loan", frame=loan.frame,
                                        schema=schema, model_kind="logreg")
    assert {item["positive_class"] for item in version.fairness} == {"yes"}
    for columns in attribute_sets(schema.sensitive):
        name = attribute_name(columns)
        result, = brief.evaluate_checks(Brief(checks=(SafetyCheck("ff", "four_fifths", attribute=name),)), version,
                                        schema.with_favourable("no"))
        derived = find_summary(version.fairness, columns, "no", classes=schema.classes)
        assert result.value == pytest.approx(derived.demographic_parity_ratio, abs=1e-12), name
        assert result.passed is (derived.demographic_parity_ratio >= 0.8)
