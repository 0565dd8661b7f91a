"""Review page: decisions are stored, trigger retraining, and survive a restart."""
from __future__ import annotations

from hitl_core.store import Store


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _override_current_row(at):
    """Pick the other class for the row in the decision panel and save it; returns (row key, new label)."""
    key = at.selectbox(key="review_row").value
    radio = next(r for r in at.radio if r.label == "Correct label")
    new_label = next(c for c in radio.options if c != radio.value)
    radio.set_value(new_label)
    _button(at, "Save label").click()
    at.run()
    return key, new_label


def test_three_overrides_make_new_versions_and_survive_restart(start_app, database_url):
    at = start_app()
    assert not at.exception
    at.selectbox(key="sample_name").set_value("breast_cancer").run()
    _button(at, "Create project and train").click()
    at.run()
    assert not at.exception
    at.switch_page("pages/review.py").run()
    assert next(m for m in at.metric if m.label == "Pool rows").value == "341"  # breast cancer's training pool
    assert not at.exception

    overridden = {}
    for _ in range(3):
        key, label = _override_current_row(at)
        assert not at.exception
        overridden[key] = label
    assert len(overridden) == 3

    store = Store(database_url)
    project = store.projects()[-1]
    assert project.source == "sample:breast_cancer"
    decisions = store.decisions(project.id)
    assert dict(zip(decisions["row_key"], decisions["new_label"])) == overridden
    assert set(decisions["action"]) == {"override"}
    assert set(decisions["user"]) == {"local"}
    versions = store.model_versions(project.id)
    assert [v.version for v in versions] == [1, 2, 3, 4]  # policy "every correction"
    assert versions[-1].n_human_labels == 3

    at.switch_page("pages/metrics.py").run()
    assert not at.exception
    history = next(d.value for d in at.dataframe if "human labels" in d.value.columns)
    assert list(history["version"]) == [4, 3, 2, 1]
    assert list(history["human labels"]) == [3, 2, 1, 0]

    restarted = start_app()  # a new server process on the same database
    restarted.switch_page("pages/review.py").run()
    assert not restarted.exception
    reviewed = next(m for m in restarted.metric if m.label == "Reviewed by people")
    assert reviewed.value == "3"
    again = Store(database_url).decisions(project.id)
    assert dict(zip(again["row_key"], again["new_label"])) == overridden


def test_accepting_records_who_what_and_the_model_version_shown(start_app, database_url):
    at = start_app()
    at.sidebar.text_input(key="user_input").set_value("ana").run()
    at.switch_page("pages/review.py").run()
    key = at.selectbox(key="review_row").value
    next(t for t in at.text_input if t.label == "Note (optional)").set_value("looks right")
    _button(at, "Accept prediction").click()
    at.run()
    assert not at.exception

    store = Store(database_url)
    decision = store.decisions(store.projects()[0].id).iloc[0]
    assert decision["row_key"] == key
    assert decision["user"] == "ana"
    assert decision["action"] == "accept"
    assert decision["new_label"] == decision["predicted_label"]
    assert decision["model_version"] == 1
    assert decision["note"] == "looks right"
    assert 0.0 <= decision["confidence"] <= 1.0
    assert any("Accepted row" in s.value for s in at.success)


def test_manual_policy_waits_for_retrain_now(start_app, database_url):
    at = start_app()
    store = Store(database_url)
    project = store.projects()[0]
    store.update_project(project.id, retrain_policy="manual")
    at = start_app()
    at.switch_page("pages/review.py").run()
    _override_current_row(at)
    assert len(store.model_versions(project.id)) == 1
    assert "1 decision(s) not yet in the model" in at.caption[0].value
    _button(at, "Retrain now").click()
    at.run()
    assert not at.exception
    assert [v.trigger for v in store.model_versions(project.id)] == ["initial", "manual"]


def test_threshold_changes_the_queue_and_is_stored(start_app, database_url):
    at = start_app()
    at.switch_page("pages/review.py").run()
    queue = lambda: next(m for m in at.metric if m.label == "Needs review").value  # noqa: E731
    at.slider(key=f"threshold_1").set_value(0.5).run()
    assert queue() == "0"
    at.slider(key=f"threshold_1").set_value(1.0).run()
    assert queue() == next(m for m in at.metric if m.label == "Pool rows").value
    assert Store(database_url).project(1).threshold == 1.0


def test_filters_that_match_nothing_say_what_to_do(start_app):
    at = start_app()
    at.switch_page("pages/review.py").run()
    at.multiselect(key="review_classes").set_value([]).run()
    assert not at.exception
    assert any("No rows match" in i.value for i in at.info)


def test_changing_the_model_retrains_with_the_new_family(start_app, database_url):
    at = start_app()
    at.switch_page("pages/review.py").run()
    form_model = next(s for s in at.selectbox if s.label == "Model")
    form_model.set_value("hgb")
    _button(at, "Save settings").click()
    at.run()
    assert not at.exception
    versions = Store(database_url).model_versions(1)
    assert [v.model_kind for v in versions] == ["logreg", "hgb"]
    assert versions[-1].trigger == "model changed to hgb"


def test_queue_is_ordered_by_strategy_and_labelled_rows_leave_it(start_app, database_url):
    at = start_app()
    at.switch_page("pages/review.py").run()
    assert at.radio(key="review_view").value == "Ask next"
    at.selectbox(key="review_strategy").set_value("margin").run()
    at.number_input(key="review_batch").set_value(5).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "why asked" in d.value.columns)
    assert len(table) == 5 and list(table["rank"]) == [1, 2, 3, 4, 5]
    assert table["label"].eq("unlabeled").all()  # only unlabeled rows are asked about (shown as "unlabeled")
    margins = (table["p(yes)"] - table["p(no)"]).abs()
    assert margins.is_monotonic_increasing  # the most torn row is asked first
    first = at.selectbox(key="review_row").value
    assert first == table.index[0]
    _override_current_row(at)
    assert not at.exception
    assert first not in at.selectbox(key="review_row").options
    table = next(d.value for d in at.dataframe if "why asked" in d.value.columns)
    assert first not in table.index and len(table) == 5


def test_triage_chart_shows_the_cost_of_the_threshold(start_app):
    at = start_app()
    at.switch_page("pages/review.py").run()
    at.slider(key="triage_human").set_value(0.8).run()
    assert not at.exception
    titles = " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    assert "model alone" in titles.lower() or "triage" in titles.lower()
