"""Monitoring page: the empty state says how to add a batch; with batches, drift, shares and override rates show."""
from __future__ import annotations

from hitl_core import actions
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
from hitl_ui import state
from tests.core.helpers import pool

PAGE = "pages/monitoring.py"


def _add_batches(database_url: str) -> Store:
    """Two batches of the demo project's rows with new IDs: one as it was, one with income tripled; one override."""
    store = Store(database_url)
    project = store.project(1)
    frame = store.load_dataset(project).frame.reset_index(drop=True)
    fresh = frame.drop(columns=[project.schema.target]).head(300).assign(
        application_id=lambda f: f["application_id"] + 1_000_000)
    actions.add_batch(store, 1, "ana", fresh.iloc[:150], source="may.csv")
    actions.add_batch(store, 1, "ana", fresh.iloc[150:].assign(income=lambda f: f["income"] * 3), source="june.csv")
    key = str(fresh["application_id"].iloc[200])
    row = pool(store, store.project(1)).loc[key]
    flipped = next(c for c in project.schema.classes if c != row["predicted"])
    actions.record_decision(store, 1, "ana", DecisionRequest(key, flipped, expected=None,
                                                             predicted_label=row["predicted"], model_version=1))
    return store


def test_without_a_batch_the_page_says_how_to_add_one(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("No batch yet" in i.value and "batch add --project 1" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_batches_show_drift_shares_and_the_override_rate(start_app, database_url):
    at = start_app()
    store = _add_batches(database_url)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("income drifted in batch 2 \\(PSI" in w.value for w in at.warning)  # Markdown-escaped
    assert any("No feature drifted in batch 1" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 2
    override = next(m for m in at.metric if m.label == "Override rate")
    assert override.value == "100%"
    table = next(d.value for d in at.dataframe if "override_rate" in d.value.columns)
    assert list(table["batch"]) == [0, 1, 2] and list(table["rows"].iloc[1:]) == [150, 150]
    assert table["override_rate"].iloc[2] == 1.0 and list(table["version_at_arrival"].iloc[1:]) == [1, 1]
    drift = next(d.value for d in at.dataframe if "psi" in d.value.columns)
    assert drift.iloc[0]["feature"] == "income" and bool(drift.iloc[0]["drifted"])
    store.engine.dispose()


def test_the_add_form_is_for_admins_only(start_app, database_url):
    at = start_app()
    at.switch_page(PAGE).run()
    assert any(b.label == "Add batch" for b in at.button)  # local mode: the one person may do everything
    store = Store(database_url)
    actions.add_user(store, "local", name="boss", role="admin")
    actions.add_user(store, "boss", name="lea", role="lead")
    store.engine.dispose()
    at.session_state[state.SIGNED_IN_KEY] = "lea"
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert not any(b.label == "Add batch" for b in at.button)
    assert any("needs the admin role" in c.value for c in at.caption)


def _metric(at, label: str) -> int:
    return int(next(m for m in at.metric if m.label == label).value.replace(",", ""))


def test_new_batch_rows_reach_the_review_page_at_once(start_app, database_url):
    at = start_app()
    at.switch_page("pages/review.py").run()  # the pool is scored and cached before the batches arrive
    assert not at.exception, at.exception
    pool_rows, unlabeled = _metric(at, "Pool rows"), _metric(at, "Unlabeled")
    store = _add_batches(database_url)
    at.switch_page("pages/review.py").run()  # same session, same caches, same model version
    assert not at.exception, at.exception
    assert _metric(at, "Pool rows") == pool_rows + 300 and _metric(at, "Unlabeled") == unlabeled + 299
    store.engine.dispose()
