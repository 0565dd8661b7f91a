"""Exports: the labels table says who decided what, the audit tables read well, and no cell runs as a formula."""
from __future__ import annotations

import io
from datetime import date, timedelta

import pandas as pd
import pytest

from hitl_core import actions, export
from hitl_core.records import DecisionRequest


@pytest.fixture
def project(store, wine, wine_schema):
    project, _ = actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                        schema=wine_schema, model_kind="logreg", retrain_policy="manual")
    return project


def _pool_keys(store, project, n):
    keys, _ = store.pool_rows(project)
    return [str(k) for k in keys[:n]]


# --------------------------------------------------------------------------- formulas
@pytest.mark.parametrize("trigger", export.FORMULA_TRIGGERS)
def test_text_starting_with_a_formula_trigger_is_written_as_text(trigger):
    cell = f"{trigger}HYPERLINK(\"http://evil.example\",\"click\")"
    frame = pd.DataFrame({"note": [cell, "fine"], "n": [1, 2]})
    safe = export.neutralise_formulas(frame)
    assert safe["note"].tolist() == ["'" + cell, "fine"]
    assert frame["note"].iloc[0] == cell  # the input is not changed


def test_negative_numbers_stay_numbers():
    frame = pd.DataFrame({"delta": [-1.5, 2.0], "count": [-3, 4], "label": ["-1", "+2.5e-3"]})
    safe = export.neutralise_formulas(frame)
    assert safe["delta"].tolist() == [-1.5, 2.0] and safe["count"].tolist() == [-3, 4]
    assert safe["delta"].dtype == float and safe["count"].dtype == frame["count"].dtype
    assert safe["label"].tolist() == ["-1", "+2.5e-3"]  # text that is just a number runs nothing
    assert export.neutralise_formulas(pd.DataFrame({"x": ["-1+cmd|' /C calc'!A0"]}))["x"].iloc[0].startswith("'-1+")


def test_missing_values_categories_and_column_names_are_handled():
    frame = pd.DataFrame({"=cost": [None, "@SUM(A1)"], "group": pd.Categorical(["=a", "b"])})
    safe = export.neutralise_formulas(frame)
    assert list(safe.columns) == ["'=cost", "group"]
    assert pd.isna(safe["'=cost"].iloc[0]) and safe["'=cost"].iloc[1] == "'@SUM(A1)"
    assert safe["group"].astype(str).tolist() == ["'=a", "b"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_files_read_back_with_formulas_neutralised(fmt):
    frame = pd.DataFrame({"row_key": ["1", "2"], "note": ["=1+1", "José, \"quoted\"\nnext line"],
                          "confidence": [0.25, -0.5], "model_version": pd.array([1, None], dtype="Int64")})
    data = export.write_table(frame, fmt)
    back = (pd.read_csv(io.BytesIO(data), dtype={"row_key": str}) if fmt == "csv"
            else pd.read_parquet(io.BytesIO(data)))
    assert back["row_key"].tolist() == ["1", "2"]
    assert back["note"].tolist() == ["'=1+1", "José, \"quoted\"\nnext line"]
    assert back["confidence"].tolist() == [0.25, -0.5]
    assert back["model_version"].iloc[0] == 1 and pd.isna(back["model_version"].iloc[1])


def test_an_unknown_format_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="csv, parquet"):
        export.write_table(pd.DataFrame({"a": [1]}), "xlsx")


@pytest.mark.parametrize("what", list(export.TABLES))
def test_every_export_survives_a_parquet_and_csv_round_trip(store, project, what):
    key = _pool_keys(store, project, 1)[0]
    actions.record_decisions(store, project.id, "bob", [DecisionRequest(key, "class_2", note="=cmd")])
    table = export.export(store, project.id, what)
    back = pd.read_parquet(io.BytesIO(export.write_table(table, "parquet")))
    pd.testing.assert_frame_equal(back, export.neutralise_formulas(table), check_dtype=False)
    csv = pd.read_csv(io.BytesIO(export.write_table(table, "csv")), dtype=str, keep_default_na=False)
    assert list(csv.columns) == list(table.columns) and len(csv) == len(table)


# --------------------------------------------------------------------------- labels table
def test_labels_table_effective_label_is_the_latest_decision_and_says_who(store, project, wine):
    first, second = _pool_keys(store, project, 2)
    actions.record_decisions(store, project.id, "bob", [DecisionRequest(first, "class_1"),
                                                        DecisionRequest(second, "class_0")])
    actions.record_decisions(store, project.id, "carol", [DecisionRequest(first, "class_2", note="on second look")])

    table = export.export(store, project.id, "labels").set_index("row_key")

    assert list(table.reset_index().columns) == list(export.LABEL_COLUMNS)
    assert len(table) == len(wine.frame)
    assert table.loc[first, "effective_label"] == "class_2" and table.loc[first, "decided_by"] == "carol"
    assert table.loc[first, "n_decisions"] == 2
    assert table.loc[second, "effective_label"] == "class_0" and table.loc[second, "decided_by"] == "bob"
    decisions = store.decisions(project.id)
    assert table.loc[first, "decided_at"] == decisions["created_at"].iloc[-1]


def test_labels_table_rows_nobody_decided_keep_the_given_label_and_show_the_current_model(store, project):
    table = export.export(store, project.id, "labels")
    assert (table["effective_label"] == table["given_label"]).all()
    assert (table["decided_by"] == "").all() and table["decided_at"].isna().all()
    assert set(table["split"]) == {"train", "validation", "test"}
    assert set(table["predicted"]) <= set(project.schema.classes)
    assert table["confidence"].between(1 / 3, 1).all()
    assert (table["model_version"] == store.current_version(project.id).version).all()


def test_labels_table_without_a_model_leaves_the_prediction_empty(store, project):
    table = export.labels_table(store.load_dataset(project), store.decisions(project.id), None,
                                project.schema.classes)
    assert table["predicted"].isna().all() and table["confidence"].isna().all()
    assert table["model_version"].isna().all()


# --------------------------------------------------------------------------- decisions and events
def test_decisions_table_keeps_what_the_person_saw(store, project):
    key = _pool_keys(store, project, 1)[0]
    actions.record_decisions(store, project.id, "bob", [DecisionRequest(
        key, "class_1", predicted_label="class_0", confidence=0.61, model_version=1, note="looks like 1")])
    table = export.export(store, project.id, "decisions")
    assert list(table.columns) == list(export.DECISION_COLUMNS)
    row = table.iloc[0]
    assert (row["user"], row["row_key"], row["new_label"], row["predicted_label"], row["model_version"],
            row["note"]) == ("bob", key, "class_1", "class_0", 1, "looks like 1")
    assert row["confidence"] == pytest.approx(0.61)


def test_events_table_says_each_change_in_words(store, project):
    key = _pool_keys(store, project, 1)[0]
    given = store.load_dataset(project).labels[key]
    actions.record_decisions(store, project.id, "bob", [DecisionRequest(key, "class_2", note="checked twice")])
    actions.change_settings(store, project.id, "ana", threshold=0.6, name="Vinho Verde, José's")

    table = export.export(store, project.id, "events")

    assert list(table.columns) == list(export.EVENT_COLUMNS)
    decision = table[table["row_key"] == key].iloc[0]
    assert decision["change"].startswith(f"label: {given} → class_2")
    assert decision["note"] == "checked twice" and decision["actor"] == "bob"
    settings = table[table["action"] == "settings"].iloc[0]
    assert "threshold: 0.7 → 0.6" in settings["change"]
    assert "name: wine → Vinho Verde, José's" in settings["change"]
    assert "José" in settings["after"] and settings["before"].startswith("{")  # JSON, readable
    assert table.loc[table["action"] == "project_created", "row_key"].iloc[0] == ""


@pytest.mark.parametrize(("before", "after", "expected"), [
    ('{"label": null}', '{"label": "yes"}', "label: unlabeled → yes"),
    ('{"label": "yes"}', '{"label": "yes", "decision": 4}', "label: yes (unchanged); decision: 4"),
    ('{"threshold": 0.7}', '{"threshold": 0.6}', "threshold: 0.7 → 0.6"),
    ('{"current": 1}', '{"version": 2, "reason": ""}', "current was 1; version: 2"),
    (None, '{"joined_waiting_request": false}', "joined_waiting_request: no"),
    (None, None, ""),
])
def test_describe_change(before, after, expected):
    assert export.describe_change(before, after) == expected


def test_filter_trail_by_person_action_row_and_days(store, project):
    first, second = _pool_keys(store, project, 2)
    actions.record_decisions(store, project.id, "bob", [DecisionRequest(first, "class_1")])
    actions.record_decisions(store, project.id, "carol", [DecisionRequest(second, "class_0")])
    decisions = export.export(store, project.id, "decisions")
    events = export.export(store, project.id, "events")
    today = decisions["created_at"].iloc[0].date()

    assert export.filter_trail(decisions, people=["carol"])["row_key"].tolist() == [second]
    assert export.filter_trail(events, people=["bob"], person_column="actor")["row_key"].tolist() == [first]
    assert export.filter_trail(events, row_key=f" {second} ")["actor"].tolist() == ["carol"]
    assert set(export.filter_trail(events, actions=["project_created", "version"])["action"]) == {
        "project_created", "version"}
    assert len(export.filter_trail(decisions, start=today, end=today)) == 2
    assert export.filter_trail(decisions, start=today + timedelta(days=1)).empty
    assert export.filter_trail(decisions, end=date(2000, 1, 1)).empty
    assert len(export.filter_trail(events)) == len(events)


def test_an_unknown_table_is_refused_with_the_choices(store, project):
    with pytest.raises(ValueError, match="labels, decisions, events"):
        export.export(store, project.id, "people")
