"""Versions page: two versions side by side, and a rollback that needs a reason and leaves an event."""
from __future__ import annotations

from hitl_core import actions, jobs
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
from tests.core.helpers import pool

PAGE = "pages/versions.py"
REASON_KEY = "versions_reason_1"


def _second_version(database_url: str) -> Store:
    """Correct one pool row of the demo project and let a worker train v2 (as beside the app)."""
    store = Store(database_url)
    rows = pool(store, store.project(1)).dropna(subset=["label"])
    for key, row in rows.head(25).iterrows():
        flipped = next(c for c in store.project(1).schema.classes if c != row["label"])
        actions.record_decision(store, 1, "ana", DecisionRequest(key, flipped, expected=row["label"],
                                                                 predicted_label=row["predicted"], model_version=1))
    jobs.work(store, once=True)
    assert store.current_version(1).version == 2
    return store


def _table(at, column):
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def _submit(at, reason: str):
    at.text_area(key=REASON_KEY).input(reason)
    next(b for b in at.button if b.label == "Roll back to v1").click()
    return at.run()


def test_one_version_shows_the_empty_state(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("Only one model version so far" in i.value for i in at.info)
    assert list(_table(at, "status")["version"]) == [1]


def test_two_versions_side_by_side_with_metrics_fairness_and_changed_rows(start_app, database_url):
    at = start_app()
    _second_version(database_url)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    versions = _table(at, "status")
    assert list(versions["version"]) == [2, 1] and list(versions["status"]) == ["current", "older"]
    assert at.selectbox(key="versions_a_1").value == 2 and at.selectbox(key="versions_b_1").value == 1
    metrics = _table(at, "majority baseline")
    assert {"v1", "v2", "change"} <= set(metrics.columns) and "Accuracy" in set(metrics["name"])
    fairness = _table(at, "fairer")
    assert set(fairness["attributes"]) >= {"group", "gender"}
    assert len(at.get("plotly_chart")) >= 1
    assert any(m.label == "Rows whose prediction changes" for m in at.metric)
    assert any(b.label == "Roll back to v1" for b in at.button)


def test_a_rollback_with_a_reason_makes_v1_current_and_records_who_and_why(start_app, database_url):
    at = start_app()
    _second_version(database_url)
    at.switch_page(PAGE).run()
    at = _submit(at, "v2 learnt from a bad batch of corrections")
    assert not at.exception, at.exception
    store = Store(database_url)
    assert store.current_version(1).version == 1
    events = store.events(1)
    rollback = events[events["action"] == "rollback"]
    assert len(rollback) == 1
    assert (rollback.iloc[0]["actor"], rollback.iloc[0]["note"], rollback.iloc[0]["object"]) == (
        "local", "v2 learnt from a bad batch of corrections", "v1")
    assert any("v1 is now the current version" in s.value for s in at.success)
    versions = _table(at, "status")
    assert dict(zip(versions["version"], versions["status"])) == {1: "current", 2: "older"}
    assert "v2 learnt from a bad batch" in versions.loc[versions["version"] == 1, "why"].item()
    assert at.selectbox(key="versions_a_1").value == 1  # the comparison follows the new current version


def test_a_rollback_without_a_reason_shows_the_error_and_changes_nothing(start_app, database_url):
    at = start_app()
    _second_version(database_url)
    at.switch_page(PAGE).run()
    before = len(Store(database_url).events(1))
    at = _submit(at, "   ")
    assert not at.exception, at.exception
    assert any("needs a reason" in e.value for e in at.error)
    store = Store(database_url)
    assert store.current_version(1).version == 2
    assert len(store.events(1)) == before
