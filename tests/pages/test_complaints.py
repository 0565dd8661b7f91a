"""Complaints on the Review page (raise, see first in the queue, resolve) and withdrawal on the Data page."""
from __future__ import annotations

from hitl_core import actions
from hitl_core.store import Store
from hitl_ui import state

REVIEW = "pages/review.py"


def _review(start_app):
    at = start_app()
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    return at


def _open_key(at) -> str:
    return next(s for s in at.selectbox if s.label == "Row to decide on").value


def _table_keys(at) -> list[str]:
    return [str(k) for k in next(d for d in at.dataframe if d.key and d.key.startswith("review_table_")).value.index]


def _complain(at, text: str):
    next(a for a in at.text_area if a.label == "What is wrong with it, and why?").set_value(text)
    next(b for b in at.button if b.label == "Send complaint").click().run()
    assert not at.exception, at.exception
    return at


def test_a_complaint_from_the_row_panel_puts_the_row_first_in_ask_next(start_app, database_url: str) -> None:
    at = _review(start_app)
    at.radio(key="review_view").set_value("All").run()
    table = next(d for d in at.dataframe if d.key and d.key.startswith("review_table_")).value.iloc[:1000]
    key = str(table.index[table["rank"].isna() & (table["label"] != "unlabeled")][-1])  # never asked: labelled
    next(s for s in at.selectbox if s.label == "Row to decide on").set_value(key).run()
    assert _open_key(at) == key

    _complain(at, "The applicant's income was entered wrongly")

    store = Store(database_url)
    assert [(c.row_key, c.status) for c in store.complaints(store.projects()[0].id)] == [(key, "open")]
    store.engine.dispose()
    assert any("now comes first in the review queue" in s.value for s in at.success)
    at.radio(key="review_view").set_value("Ask next").run()
    assert _table_keys(at)[0] == key
    at.radio(key="review_view").set_value("Complaints").run()
    assert _table_keys(at) == [key]


def test_resolving_as_changed_records_the_decision_and_shows_it_on_the_row(start_app, database_url: str) -> None:
    at = _review(start_app)
    key = _open_key(at)
    _complain(at, "wrong")
    assert _open_key(at) == key
    outcome = next(r for r in at.radio if r.label == "Outcome")
    outcome.set_value("changed")
    label = next(r for r in at.radio if r.label == "New label (for *changed*)")
    store = Store(database_url)
    project = store.projects()[0]
    current = store.pool_rows(project)[1][key]
    new = next(c for c in label.options if c != current)
    label.set_value(new)
    next(t for t in at.text_input if t.label.startswith("Why (required")).set_value("checked the payslip")
    next(b for b in at.button if b.label == "Resolve complaint").click().run()
    assert not at.exception, at.exception

    complaint = store.complaints(project.id)[0]
    assert (complaint.status, complaint.resolution, complaint.resolution_note) == ("resolved", "changed",
                                                                                 "checked the payslip")
    decisions = store.decisions(project.id)
    assert decisions["row_key"].tolist() == [key] and decisions["new_label"].tolist() == [new]
    store.engine.dispose()
    assert _open_key(at) == key
    shown = next(d.value for d in at.dataframe if "resolution_note" in d.value.columns)  # the row's complaints
    assert shown[["resolution", "resolution_note"]].values.tolist() == [["changed", "checked the payslip"]]


def test_a_viewer_sees_the_complaint_form_but_no_resolve_form(start_app, database_url: str) -> None:
    at = start_app()  # local mode creates the demo project first
    store = Store(database_url)
    actions.add_user(store, "local", name="root", role="admin")
    actions.add_user(store, "root", name="vic", role="viewer")
    at.session_state[state.SIGNED_IN_KEY] = "vic"
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    _complain(at, "I was refused for no reason")
    assert [c.created_by for c in store.complaints(store.projects()[0].id)] == ["vic"]
    store.engine.dispose()
    assert not [b for b in at.button if b.label == "Resolve complaint"]


def test_withdrawal_on_the_data_page_needs_the_typed_confirmation(start_app, database_url: str) -> None:
    at = start_app()
    store = Store(database_url)
    project = store.projects()[0]
    keys = [str(k) for k in store.pool_rows(project)[0][:2]]

    def submit(confirm: str):
        next(a for a in at.text_area if a.label.startswith("Row keys")).set_value("\n".join(keys))
        next(t for t in at.text_input if t.label.startswith("Type WITHDRAW")).set_value(confirm)
        next(b for b in at.button if b.label == "Withdraw these rows").click().run()
        assert not at.exception, at.exception

    submit("withdraw please")
    assert any("type WITHDRAW" in e.value for e in at.error)
    assert store.project(project.id).dataset_hash == project.dataset_hash

    submit("WITHDRAW")
    assert any(s.value.startswith("Withdrew 2 row") for s in at.success), [*at.success, *at.error]
    after = store.project(project.id)
    assert not store.load_dataset(after).frame.index.isin(keys).any() and after.current_version == 2
    store.engine.dispose()

    at.switch_page("pages/versions.py").run()
    assert not at.exception, at.exception
    assert any("model file dropped" in i.value for i in at.info)
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    assert not set(keys) & set(_table_keys(at))
