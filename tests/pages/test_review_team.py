"""Review with several people: blind mode hides the model, guidelines sit beside the row, reasons are asked,
viewers read only, and two people per row each get the same queued row while a third gets others."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from hitl_core import actions
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
from tests.pages.conftest import APP

REVIEW = "pages/review.py"


def _review(start_app) -> AppTest:
    at = start_app()
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    return at


def _store(database_url: str) -> Store:
    return Store(database_url)


def _table(at: AppTest):
    return next(d for d in at.dataframe if d.key and d.key.startswith("review_table_"))


def test_blind_review_hides_the_model_and_records_the_label_as_given(start_app, database_url) -> None:
    start_app()
    store = _store(database_url)
    actions.change_settings(store, 1, "local", blind=True)
    at = _review(start_app)
    assert not {"predicted", "confidence", "disagrees"} & set(_table(at).value.columns)
    assert "Accept prediction" not in [b.label for b in at.button]
    assert any("blind review" in m.value for m in at.markdown)
    assert "Why this prediction?" not in [h.value for h in at.subheader]
    radio = next(r for r in at.radio if r.label == "Correct label")
    assert radio.value is None  # no preselected answer to anchor on
    radio.set_value(radio.options[0])
    next(b for b in at.button if b.label == "Save label").click()
    at.run()
    decision = store.decisions(1).iloc[-1]
    assert decision["new_label"] == radio.options[0] and decision["user"] == "local"
    store.engine.dispose()


def test_guidelines_show_beside_the_row_and_an_override_needs_a_reason(start_app, database_url) -> None:
    start_app()
    store = _store(database_url)
    actions.set_guidelines(store, 1, "local", guidelines="Check **income** against the loan first.",
                           reasons=["income misread", "policy exception"])
    at = _review(start_app)
    assert any("Check **income** against the loan first." == m.value for m in at.markdown)
    radio = next(r for r in at.radio if r.label == "Correct label")
    radio.set_value(next(c for c in radio.options if c != radio.value))
    next(b for b in at.button if b.label == "Save label").click()
    at.run()
    assert "say why you override the model" in at.error[0].value and store.decisions(1).empty
    radio = next(r for r in at.radio if r.label == "Correct label")
    radio.set_value(next(c for c in radio.options if c != radio.value))
    next(s for s in at.selectbox if s.label.startswith("Reason")).set_value("policy exception")
    next(b for b in at.button if b.label == "Save label").click()
    at.run()
    assert store.decisions(1)["reason"].tolist() == ["policy exception"]
    store.engine.dispose()


def _signed_in(name: str, password: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    boxes = {box.label: box for box in at.text_input}
    boxes["Name"].input(name)
    boxes["Password"].input(password)
    at = at.get("form_submit_button")[0].click().run()
    return at.switch_page(REVIEW).run()


def test_a_viewer_reads_but_cannot_label(start_app, database_url) -> None:
    start_app()
    store = _store(database_url)
    actions.add_user(store, "local", name="root", role="admin", password="root password")
    actions.add_user(store, "root", name="vic", role="viewer", password="vic password")
    store.engine.dispose()
    at = _signed_in("vic", "vic password")
    assert not at.exception, at.exception
    assert "Save label" not in [b.label for b in at.button]
    assert any("you can read every row" in i.value for i in at.info)


def test_two_people_per_row_share_the_queue_and_a_third_gets_other_rows(start_app, database_url) -> None:
    start_app()
    store = _store(database_url)
    actions.add_user(store, "local", name="root", role="admin", password="root password")
    for name in ("ann", "bob", "cat"):
        actions.add_user(store, "root", name=name, role="annotator", password=f"{name} password")
    actions.change_settings(store, 1, "root", overlap=2)
    store.engine.dispose()
    asked = {}
    for name in ("ann", "bob", "cat"):
        at = _signed_in(name, f"{name} password")
        asked[name] = list(_table(at).value.index)
    assert asked["ann"] == asked["bob"] and asked["ann"]
    assert not set(asked["cat"]) & set(asked["ann"])


def test_personal_data_is_shown_to_a_signed_in_admin_and_masked_for_others(start_app, database_url) -> None:
    start_app()  # the loan demo: 'email' is personal data
    store = _store(database_url)
    actions.add_user(store, "local", name="root", role="admin", password="root password")
    actions.add_user(store, "root", name="ann", role="annotator", password="ann password")
    emails = set(store.load_dataset(store.project(1)).frame["email"].astype(str))
    store.engine.dispose()
    admin = _signed_in("root", "root password")
    assert "email" in _table(admin).value.columns
    annotator = _signed_in("ann", "ann password")
    assert "email" not in _table(annotator).value.columns
    values = next(d.value for d in annotator.dataframe if "role" in d.value.columns and "value" in d.value.columns)
    assert values.loc[values["column"] == "email", "value"].tolist() == ["•••"]
    shown = {str(v) for d in annotator.dataframe for column in d.value.columns for v in d.value[column]}
    assert not shown & emails  # no table the annotator receives holds an address


def test_a_tie_is_listed_under_to_adjudicate(start_app, database_url) -> None:
    start_app()
    store = _store(database_url)
    actions.change_settings(store, 1, "local", overlap=2)
    key = str(store.pool_rows(store.project(1))[0][0])
    classes = store.project(1).schema.classes
    actions.record_decision(store, 1, "ann", DecisionRequest(key, classes[0]))
    actions.record_decision(store, 1, "bob", DecisionRequest(key, classes[1]))
    store.engine.dispose()
    at = _review(start_app)
    show = next(r for r in at.radio if r.label == "Show")
    assert "To adjudicate" in show.options
    show.set_value("To adjudicate").run()
    assert list(_table(at).value.index) == [key]
