"""Feedback on explanations: stored with who and which model version through the write path, then counted."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect

from hitl_core import actions, users
from hitl_core.explain import WHOLE_EXPLANATION, feedback_counts
from hitl_core.migrations import upgrade_to_head
from hitl_core.store import Store, event_record
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401 (fixtures)

WAVE1 = Path(__file__).resolve().parents[1] / "fixtures" / "wave1.db"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:  # noqa: F811 - one store per backend
    store = Store(database_url)
    yield store
    store.engine.dispose()


def _row(store: Store, project_id: int, position: int = 0) -> str:
    return str(store.pool_rows(store.project(project_id))[0][position])


def test_feedback_is_stored_with_who_which_version_and_an_event_in_the_same_transaction(store: Store) -> None:
    project = create_project(store, "loan")
    key = _row(store, project.id)
    feedback_id = actions.give_explanation_feedback(store, project.id, "bea", row_key=key, model_version=1,
                                                    method="shap", feature="income", verdict="wrong",
                                                    note="  income cannot push this way  ")
    stored = store.explanation_feedback(project.id)
    assert len(stored) == 1
    row = stored.iloc[0]
    assert (row["id"], row["row_key"], row["model_version"], row["method"], row["feature"], row["verdict"],
            row["note"], row["created_by"]) == (feedback_id, key, 1, "shap", "income", "wrong",
                                                 "income cannot push this way", "bea")
    assert row["created_at"].tzinfo is not None
    event = event_record(store.events(project.id).iloc[-1])
    assert (event.actor, event.action, event.object) == ("bea", "explanation_feedback", f"row {key}")
    assert event.after == {"feedback": feedback_id, "model_version": 1, "method": "shap", "feature": "income",
                           "verdict": "wrong"}
    assert event.note == "income cannot push this way"


@pytest.mark.parametrize("change, message", [
    ({"method": "kernel"}, "Unknown explanation method 'kernel'"),
    ({"verdict": "meh"}, "Unknown verdict 'meh'"),
    ({"feature": "email"}, "'email' is not a feature"),
    ({"row_key": "no-such-row"}, "Row 'no-such-row' is not in this project's data"),
    ({"model_version": 9}, "no model version 9"),
    ({"note": "x" * 2001}, "keep it under 2,000"),
])
def test_bad_feedback_is_refused_with_a_message_and_nothing_is_written(store: Store, change, message) -> None:
    project = create_project(store, "loan")
    request = {"row_key": _row(store, project.id), "model_version": 1, "method": "lime", "verdict": "helpful",
               **change}
    events_before = len(store.events(project.id))
    with pytest.raises(actions.InvalidAction, match=message):
        actions.give_explanation_feedback(store, project.id, "bea", **request)
    assert store.explanation_feedback(project.id).empty
    assert len(store.events(project.id)) == events_before


def test_a_viewer_may_not_give_feedback_once_accounts_exist(store: Store) -> None:
    project = create_project(store, "loan")
    actions.add_user(store, "local", name="root", role="admin")
    actions.add_user(store, "root", name="vic", role="viewer")
    actions.add_user(store, "root", name="ann", role="annotator")
    key = _row(store, project.id)
    with pytest.raises(users.PermissionDenied, match="viewer may not give feedback"):
        actions.give_explanation_feedback(store, project.id, "vic", row_key=key, model_version=1, method="shap",
                                          verdict="helpful")
    actions.give_explanation_feedback(store, project.id, "ann", row_key=key, model_version=1, method="shap",
                                      verdict="helpful")
    assert list(store.explanation_feedback(project.id)["created_by"]) == ["ann"]


def test_feedback_is_counted_per_feature_and_per_model_version(store: Store) -> None:
    project = create_project(store, "loan")
    actions.retrain(store, project.id, "ana", trigger="manual")
    keys = [_row(store, project.id, i) for i in range(4)]
    given = [(keys[0], 1, "shap", "income", "wrong"), (keys[1], 1, "shap", "income", "wrong"),
             (keys[2], 2, "lime", "income", "helpful"), (keys[3], 2, "shap", None, "helpful"),
             (keys[0], 2, "shap", "credit_score", "not helpful")]
    for key, version, method, feature, verdict in given:
        actions.give_explanation_feedback(store, project.id, "bea", row_key=key, model_version=version,
                                          method=method, feature=feature, verdict=verdict)
    feedback = store.explanation_feedback(project.id)
    by_feature = feedback_counts(feedback, "feature")
    assert by_feature.index[0] == "income"  # most "wrong" first
    assert set(by_feature.index[1:]) == {"credit_score", WHOLE_EXPLANATION}
    assert by_feature.loc["income"].to_dict() == {"helpful": 1, "not helpful": 0, "wrong": 2, "total": 3}
    by_version = feedback_counts(feedback, "model_version")
    assert by_version.to_dict("index") == {1: {"helpful": 0, "not helpful": 0, "wrong": 2, "total": 2},
                                           2: {"helpful": 2, "not helpful": 1, "wrong": 0, "total": 3}}


def test_counts_of_no_feedback_are_an_empty_table() -> None:
    empty = pd.DataFrame(columns=["feature", "model_version", "verdict"])
    assert feedback_counts(empty, "feature").empty


def test_the_table_has_the_columns_a_withdrawal_deletes_by(store: Store) -> None:
    columns = {c["name"] for c in inspect(store.engine).get_columns("explanation_feedback")}
    assert {"project_id", "row_key", "model_version", "created_by", "created_at"} <= columns


def test_a_database_from_before_the_feedback_table_upgrades_and_keeps_its_rows(tmp_path) -> None:
    path = tmp_path / "wave1.db"
    shutil.copy(WAVE1, path)  # made by main before Alembic: no feedback table
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    assert "explanation_feedback" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        decisions_before = connection.exec_driver_sql("SELECT count(*) FROM annotations").scalar()
    upgrade_to_head(engine)
    assert "explanation_feedback" in inspect(engine).get_table_names()
    engine.dispose()
    reopened = Store(url)
    try:
        project = reopened.projects()[0]
        assert len(reopened.decisions(project.id)) == decisions_before
        assert reopened.explanation_feedback(project.id).empty
    finally:
        reopened.engine.dispose()
