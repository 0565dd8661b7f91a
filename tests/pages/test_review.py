"""Review page: every click saves the row it shows, ticks follow rows, conflicts are shown, retrains run in a worker."""
from __future__ import annotations

import json

import pytest

from hitl_core import actions, jobs
from hitl_core.models import MODEL_KINDS
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
from hitl_ui.retrain_line import NO_WORKER
from hitl_ui.review_panel import human_value, next_key
from hitl_ui.text import md_escape

REVIEW = "pages/review.py"


# --------------------------------------------------------------------------- helpers
def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _picker(at):
    return next(s for s in at.selectbox if s.label == "Row to decide on")


def _open_key(at):
    return _picker(at).value


def _label_radio(at):
    return next(r for r in at.radio if r.label == "Correct label")


def _table(at):
    return next(d for d in at.dataframe if d.key and d.key.startswith("review_table_"))


def _frame(at, column):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _captions(at):
    return [c.value for c in at.caption]


def _review(start_app):
    at = start_app()
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    return at


def _override_open_row(at, note=""):
    """Pick the other class for the row in the decision panel and save it; returns (row key, new label)."""
    key = _open_key(at)
    radio = _label_radio(at)
    new_label = next(c for c in radio.options if c != radio.value)
    radio.set_value(new_label)
    if note:
        next(t for t in at.text_input if t.label == "Note (optional)").set_value(note)
    _button(at, "Save label").click()
    at.run()
    assert not at.exception, at.exception
    return key, new_label


def _latest_by(store, project_id, key):
    history = store.row_history(project_id, key)
    return history.iloc[-1]


# --------------------------------------------------------------------------- saving the row the panel shows
def test_save_stores_the_row_the_panel_shows_says_exactly_what_changed_and_opens_the_next(start_app, database_url):
    at = _review(start_app)
    order = list(_table(at).value.index)
    key = _open_key(at)
    assert key == order[0]

    saved_key, label = _override_open_row(at)

    store = Store(database_url)
    decisions = store.decisions(1)
    assert list(decisions["row_key"]) == [key] and saved_key == key
    assert decisions.iloc[0]["new_label"] == label and decisions.iloc[0]["old_label"] is None
    assert [s.value for s in at.success] == [md_escape(f"Labelled row {key}: unlabeled → {label} (given: unlabeled). "
                                                        "A retrain is queued.")]
    assert _open_key(at) == order[1]  # the next row of the view the person was working through


def test_a_click_is_never_dropped_when_the_open_row_left_the_view(start_app, database_url):
    at = _review(start_app)
    at.radio(key="review_view").set_value("Unlabeled").run()
    second = _picker(at).options[1]
    _picker(at).set_value(second).run()
    assert _open_key(at) == second
    store = Store(database_url)
    actions.record_decision(store, 1, "bob", DecisionRequest(row_key=second, new_label="yes", expected=None))

    at.run()  # bob's label takes the row out of the "Unlabeled" view; the panel keeps it open
    assert second not in list(_table(at).value.index)
    assert _open_key(at) == second
    assert any("not in the current view" in c for c in _captions(at))
    _label_radio(at).set_value("no")
    _button(at, "Save label").click()
    at.run()

    assert not at.exception
    assert at.radio(key="review_view").value == "Unlabeled"  # a save never resets the view
    assert list(store.decisions(1)["user"]) == ["bob", "local"]
    assert _latest_by(store, 1, second)["new_label"] == "no"
    assert [s.value for s in at.success] == [md_escape(f"Changed row {second}: yes → no (given: unlabeled). "
                                                        "A retrain is queued.")]


def test_every_save_in_a_row_is_stored_and_the_view_stays(start_app, database_url):
    at = _review(start_app)
    at.radio(key="review_view").set_value("All").run()
    saved = [_override_open_row(at)[0] for _ in range(3)]
    assert at.radio(key="review_view").value == "All"
    assert list(Store(database_url).decisions(1)["row_key"]) == saved
    assert len(set(saved)) == 3


def test_accepting_records_who_what_and_the_model_version_shown(start_app, database_url):
    at = start_app()
    at.sidebar.text_input(key="user_input").set_value("ana").run()
    at.switch_page(REVIEW).run()
    key = _open_key(at)
    predicted = _label_radio(at).value
    next(t for t in at.text_input if t.label == "Note (optional)").set_value("looks right")
    _button(at, "Accept prediction").click()
    at.run()
    assert not at.exception

    store = Store(database_url)
    decision = store.decisions(1).iloc[0]
    assert decision["row_key"] == key
    assert decision["user"] == "ana"
    assert decision["action"] == "accept"
    assert decision["new_label"] == decision["predicted_label"] == predicted
    assert decision["model_version"] == 1
    assert decision["note"] == "looks right"
    assert 0.0 <= decision["confidence"] <= 1.0
    assert [s.value for s in at.success] == [
        md_escape(f"Labelled row {key}: unlabeled → {predicted} (given: unlabeled). A retrain is queued.")]


def test_confirming_a_given_label_says_confirmed(start_app, database_url):
    at = _review(start_app)
    at.radio(key="review_view").set_value("All").run()
    table = _table(at).value
    key = table.index[(table["label"] == "yes") & (table["predicted"] == "yes")][0]
    _picker(at).set_value(key).run()
    assert _open_key(at) == key
    _button(at, "Accept prediction").click()
    at.run()
    assert [s.value for s in at.success] == [md_escape(f"Confirmed row {key}: yes (given: yes). A retrain is queued.")]


# --------------------------------------------------------------------------- ticks follow rows
def test_accept_selected_accepts_exactly_the_ticked_rows_and_the_ticks_clear(start_app, database_url):
    at = _review(start_app)
    table = _table(at)
    shown = table.value
    at.session_state[table.key] = {"selection": {"rows": [1, 3], "columns": []}}
    at.run()
    assert _open_key(at) == shown.index[3]  # the row ticked last opens in the panel
    button = _button(at, "Accept 2 selected prediction(s)")
    assert not button.disabled
    button.click()
    at.run()
    assert not at.exception

    decisions = Store(database_url).decisions(1)
    assert list(decisions["row_key"]) == [shown.index[1], shown.index[3]]
    assert list(decisions["new_label"]) == [shown.loc[shown.index[1], "predicted"],
                                            shown.loc[shown.index[3], "predicted"]]
    assert set(decisions["action"]) == {"accept"}
    assert [s.value for s in at.success] == [md_escape("Saved 2 decision(s). A retrain is queued.")]
    assert _table(at).key != table.key  # a new table widget: no tick survives a save
    assert _button(at, "Accept 0 selected prediction(s)").disabled


def test_the_reviewed_view_opens_without_ticks(start_app):
    at = _review(start_app)
    _override_open_row(at)
    table = _table(at)
    at.session_state[table.key] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert _button(at, "Accept 1 selected prediction(s)")
    at.radio(key="review_view").set_value("Reviewed").run()
    assert len(_table(at).value) == 1
    assert _button(at, "Accept 0 selected prediction(s)").disabled


# --------------------------------------------------------------------------- conflicts
BOB = "bob [site](http://evil.example)"  # names are untrusted: shown as typed, never as a link


def _bob_labels_the_open_row(at, database_url):
    key = _open_key(at)
    store = Store(database_url)
    actions.record_decision(store, 1, BOB, DecisionRequest(row_key=key, new_label="yes", expected=None))
    changed_at = _latest_by(store, 1, key)["created_at"]
    return key, store, actions.Conflict(key, None, "yes", BOB, changed_at.to_pydatetime())


def test_a_conflict_says_who_changed_the_row_and_apply_mine_anyway_saves_it(start_app, database_url):
    at = _review(start_app)
    key, store, conflict = _bob_labels_the_open_row(at, database_url)  # between render and click
    _label_radio(at).set_value("no")
    _button(at, "Save label").click()
    at.run()
    assert not at.exception

    assert list(store.decisions(1)["user"]) == [BOB]  # nothing overwritten unseen
    assert [w.value for w in at.warning if "Not saved" in w.value] == [
        md_escape(f"Not saved: {conflict.message()} Your decision was no.")]
    assert f"changed by {BOB} to yes at " in conflict.message() and "you saw unlabeled" in conflict.message()
    assert _open_key(at) == key  # the panel stays on the row in conflict

    _button(at, "Apply mine anyway").click()
    at.run()
    assert not at.exception
    mine = _latest_by(store, 1, key)
    assert (mine["user"], mine["old_label"], mine["new_label"]) == ("local", "yes", "no")
    assert [s.value for s in at.success] == [
        md_escape(f"Changed row {key}: yes → no (given: unlabeled). A retrain is queued.")]
    assert not any("Not saved" in w.value for w in at.warning)
    assert _open_key(at) != key  # resolved: on to the next row


def test_keep_theirs_drops_my_decision(start_app, database_url):
    at = _review(start_app)
    key, store, _ = _bob_labels_the_open_row(at, database_url)
    _label_radio(at).set_value("no")
    _button(at, "Save label").click()
    at.run()
    _button(at, "Keep theirs").click()
    at.run()
    assert not at.exception
    assert list(store.decisions(1)["user"]) == [BOB]
    assert [i.value for i in at.info if "Kept" in i.value] == [
        md_escape(f"Kept {BOB}'s label for row {key}: yes. Your no was not saved.")]
    assert not any(b.label == "Apply mine anyway" for b in at.button)


# --------------------------------------------------------------------------- retrains off the request path
def test_every_policy_queues_a_retrain_that_a_worker_turns_into_the_next_version(start_app, database_url):
    at = start_app()
    at.selectbox(key="sample_name").set_value("breast_cancer").run()
    _button(at, "Create project and train").click()
    at.run()
    at.switch_page(REVIEW).run()
    assert not at.exception
    assert next(m for m in at.metric if m.label == "Pool rows").value == "341"  # breast cancer's training pool

    overridden = dict(_override_open_row(at) for _ in range(3))
    assert len(overridden) == 3
    store = Store(database_url)
    project = store.projects()[-1]
    decisions = store.decisions(project.id)
    assert dict(zip(decisions["row_key"], decisions["new_label"])) == overridden
    assert set(decisions["action"]) == {"override"}
    assert [v.version for v in store.model_versions(project.id)] == [1]  # saving never trains
    assert [j.status for j in store.jobs(project.id)] == ["queued"]  # three requests, one job
    assert ":material/model_training: Retrain requested (3 new decision(s)), waiting: no worker is running." in \
        _captions(at)
    assert NO_WORKER in [w.value for w in at.warning]

    assert jobs.work(store, once=True) == 1
    at.run()  # the page shows the worker's version (in the browser the status fragment reruns the page)
    assert not at.exception
    assert any(c.startswith("Model **v2**") for c in _captions(at))
    assert ":material/model_training: The model includes every decision." in _captions(at)
    assert store.model_versions(project.id)[-1].n_human_labels == 3

    restarted = start_app()  # a new server process on the same database
    restarted.switch_page(REVIEW).run()
    assert not restarted.exception
    assert next(m for m in restarted.metric if m.label == "Reviewed by people").value == "3"


def test_manual_policy_waits_for_retrain_now_which_trains_here_without_a_worker(start_app, database_url):
    start_app()
    store = Store(database_url)
    actions.change_settings(store, 1, "lead", retrain_policy="manual")
    at = _review(start_app)
    _override_open_row(at)
    assert len(store.model_versions(1)) == 1 and store.jobs(1) == []
    assert ":material/model_training: 1 decision(s) not yet in the model." in _captions(at)
    _button(at, "Retrain now").click()
    at.run()
    assert not at.exception
    assert [v.trigger for v in store.model_versions(1)] == ["initial", "manual"]
    assert any(c.startswith("Model **v2**") for c in _captions(at))


def test_retrain_now_asks_the_worker_when_one_is_running(start_app, database_url):
    start_app()
    store = Store(database_url)
    actions.change_settings(store, 1, "lead", retrain_policy="manual")
    at = _review(start_app)
    _override_open_row(at)
    with store.write() as tx:
        tx.beat_worker("test-worker")  # a live worker elsewhere
    at.run()
    assert NO_WORKER not in [w.value for w in at.warning] + _captions(at)
    _button(at, "Retrain now").click()
    at.run()
    assert not at.exception
    assert len(store.model_versions(1)) == 1  # nothing trained in the app
    assert [(j.status, j.trigger) for j in store.jobs(1)] == [("queued", "manual")]
    assert any("a worker will store v2" in i.value for i in at.info)


def test_changing_the_model_queues_a_retrain_with_the_new_family(start_app, database_url):
    at = _review(start_app)
    next(s for s in at.selectbox if s.label == "Model").set_value("hgb")
    _button(at, "Save settings").click()
    at.run()
    assert not at.exception
    assert [s.value for s in at.success] == [
        md_escape(f"Settings saved. A retrain with {MODEL_KINDS['hgb']} is queued.")]
    store = Store(database_url)
    assert store.project(1).model_kind == "hgb"
    assert "settings" in set(store.events(1)["action"])
    jobs.work(store, once=True)
    versions = store.model_versions(1)
    assert [v.model_kind for v in versions] == ["logreg", "hgb"]
    assert versions[-1].trigger == "model changed to hgb"


def test_threshold_changes_the_queue_and_is_stored_through_the_write_path(start_app, database_url):
    at = _review(start_app)
    queue = lambda: next(m for m in at.metric if m.label == "Needs review").value  # noqa: E731
    at.slider(key="threshold_1").set_value(0.5).run()
    assert queue() == "0"
    at.slider(key="threshold_1").set_value(1.0).run()
    assert queue() == next(m for m in at.metric if m.label == "Pool rows").value
    store = Store(database_url)
    assert store.project(1).threshold == 1.0
    events = store.events(1)
    assert (events["action"] == "settings").sum() == 2


# --------------------------------------------------------------------------- what the reviewer sees
def test_sensitive_and_id_columns_are_shown_and_pii_never(start_app, database_url):
    """Local mode has no verified person: personal data is masked (a signed-in admin sees it: test_review_team)."""
    at = _review(start_app)
    store = Store(database_url)
    emails = store.load_dataset(store.project(1)).frame["email"].astype(str)
    store.engine.dispose()
    table = _table(at).value
    assert table.index.name == "application_id"
    assert {"gender", "group"} <= set(table.columns)
    values = _frame(at, "role")
    assert {"application_id", "gender", "group"} <= set(values["column"])
    assert values.loc[values["column"] == "application_id", "value"].item() == _open_key(at)
    assert values.loc[values["column"] == "email", "value"].tolist() == ["•••"]
    assert "email" not in table.columns
    for frame in (d.value for d in at.dataframe):
        text = frame.to_string()
        assert not any(address in text for address in emails)
    assert not any("@example.org" in str(e.value) for e in at.markdown)


def test_numbers_are_formatted_for_people(start_app, database_url):
    at = _review(start_app)
    key = _open_key(at)
    data = Store(database_url).load_dataset(Store(database_url).project(1))
    values = _frame(at, "role").set_index("column")["value"]
    assert values["income"] == human_value(data.frame.loc[key, "income"])
    assert "," in values["income"] and not values["income"].endswith(".0")
    proto = _table(at).proto
    config = json.loads(proto.columns)
    assert config["income"]["type_config"]["format"] == "localized"
    assert config["p(yes)"]["type_config"]["format"] == "%.2f"
    assert proto.placeholder == "—"  # rows outside the strategy's batch have a blank rank, not "None"
    assert any(c.value.startswith(f"**Row {key}** · predicted") and "confidence **0." in c.value for c in at.markdown)


@pytest.mark.parametrize("value, text", [(45800.0, "45,800"), (45800, "45,800"), (0.363, "0.363"),
                                         (1234.56, "1,234.6"), (None, "—"), (float("nan"), "—"), ("a b", "a b")])
def test_human_value(value, text):
    assert human_value(value) == text


def test_next_key_follows_the_view_order():
    assert next_key(["a", "b", "c"], "a") == "b"
    assert next_key(["a", "b", "c"], "c") is None
    assert next_key(["a", "b", "c"], "z") == "a"  # not in the view: its first row
    assert next_key(["a", "b", "c"], "z", skip={"a"}) == "b"


def test_next_row_has_a_shortcut_and_moves_without_saving(start_app, database_url):
    at = _review(start_app)
    order = list(_table(at).value.index)
    shortcuts = {b.label: b.proto.shortcut for b in at.button}
    assert (shortcuts["Accept prediction"], shortcuts["Save label"], shortcuts["Next row"]) == ("a", "s", "n")
    _button(at, "Next row").click()
    at.run()
    assert _open_key(at) == order[1]
    assert Store(database_url).decisions(1).empty


def test_what_if_shows_the_open_rows_values_after_moving_to_another_row(start_app, database_url):
    at = _review(start_app)
    data = Store(database_url).load_dataset(Store(database_url).project(1))
    income = lambda: next(n for n in at.number_input if n.label == "income").value  # noqa: E731
    first = _open_key(at)
    assert income() == pytest.approx(float(data.frame.loc[first, "income"]))
    _button(at, "Next row").click()
    at.run()
    second = _open_key(at)
    assert second != first and data.frame.loc[second, "income"] != data.frame.loc[first, "income"]
    assert income() == pytest.approx(float(data.frame.loc[second, "income"]))


def test_the_decision_history_shows_who_what_and_the_note(start_app, database_url):
    at = start_app()
    at.sidebar.text_input(key="user_input").set_value("ana").run()
    at.switch_page(REVIEW).run()
    key, label = _override_open_row(at, note="**payslip** checked [ok](http://x)")
    at.radio(key="review_view").set_value("Reviewed").run()
    assert _open_key(at) == key
    history = _frame(at, "note")
    assert list(history["who"]) == ["ana"]
    assert list(history["change"]) == [f"unlabeled → {label}"]
    assert list(history["note"]) == ["**payslip** checked [ok](http://x)"]  # plain text in a table cell


# --------------------------------------------------------------------------- views, strategy, triage
def test_filters_that_match_nothing_say_what_to_do(start_app):
    at = _review(start_app)
    at.multiselect(key="review_classes").set_value([]).run()
    assert not at.exception
    assert any("No rows match" in i.value for i in at.info)


def test_queue_is_ordered_by_strategy_and_labelled_rows_leave_it(start_app):
    at = _review(start_app)
    assert at.radio(key="review_view").value == "Ask next"
    at.selectbox(key="review_strategy").set_value("margin").run()
    at.number_input(key="review_batch").set_value(5).run()
    assert not at.exception
    table = _table(at).value
    assert len(table) == 5 and list(table["rank"]) == [1, 2, 3, 4, 5]
    assert table["label"].eq("unlabeled").all()  # only unlabeled rows are asked about (shown as "unlabeled")
    margins = (table["p(yes)"] - table["p(no)"]).abs()
    assert margins.is_monotonic_increasing  # the most torn row is asked first
    first = _open_key(at)
    assert first == table.index[0]
    _override_open_row(at)
    table = _table(at).value
    assert first not in table.index and len(table) == 5
    assert _open_key(at) == table.index[0]


def test_triage_chart_shows_the_cost_of_the_threshold(start_app):
    at = _review(start_app)
    assert not at.get("plotly_chart") or "triage" not in " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    at.toggle(key="review_triage").set_value(True).run()
    at.slider(key="triage_human").set_value(0.8).run()
    assert not at.exception
    titles = " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    assert "model alone" in titles.lower() or "triage" in titles.lower()
