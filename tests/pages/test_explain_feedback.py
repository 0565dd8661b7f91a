"""Similar past cases and feedback on explanations on the Review page; exact global views and counts on Explain."""
from __future__ import annotations

from hitl_core import actions
from hitl_core.data import check
from hitl_core.records import DecisionRequest
from hitl_core.samples import load_sample
from hitl_core.store import Store


def _caption(at, text):
    return next((c.value for c in at.caption if text in c.value), None)


def _open_row(at):
    return next(box for box in at.selectbox if box.label == "Row to decide on").value


def test_review_panel_shows_similar_past_cases_with_who_decided_them(start_app, database_url) -> None:
    at = start_app()
    at.switch_page("pages/review.py").run()
    assert not at.exception
    key = _open_row(at)
    sentence = _caption(at, "similar past cases were labelled")
    assert sentence and sentence.split(" of ")[1].startswith("10 similar")
    table = next(df for df in at.dataframe if "decided_by" in df.value.columns)
    assert len(table.value) == 10 and key not in set(table.value["row"])
    assert set(table.value["decided_by"]) == {"given label"}
    # a person decides on the nearest case: it shows with their name and note
    nearest = table.value["row"].iloc[0]
    store = Store(database_url)
    flipped = next(c for c in ("yes", "no") if c != table.value["label"].iloc[0])
    actions.record_decision(store, 1, "bea", DecisionRequest(nearest, flipped, note="checked the payslips"))
    at.run()
    table = next(df for df in at.dataframe if "decided_by" in df.value.columns)
    first = table.value.iloc[0]
    assert (first["row"], first["label"], first["decided_by"], first["note"]) == (
        nearest, flipped, "bea", "checked the payslips")


def test_feedback_on_an_explanation_is_saved_and_counted_on_the_explain_page(start_app, database_url) -> None:
    at = start_app()
    at.switch_page("pages/review.py").run()
    key = _open_row(at)
    at.radio(key=f"feedback_method_{key}_v1").set_value("lime")
    at.radio(key=f"feedback_verdict_{key}_v1").set_value("wrong")
    at.selectbox(key=f"feedback_feature_{key}_v1").set_value("income")
    at.text_input(key=f"feedback_note_{key}_v1").input("income pushes the wrong way")
    next(b for b in at.button if b.label == "Send feedback").click()
    at.run()
    assert not at.exception
    assert any("Feedback saved: LIME" in s.value and "'income': wrong" in s.value for s in at.success)
    stored = Store(database_url).explanation_feedback(1)
    assert stored[["row_key", "model_version", "method", "feature", "verdict", "note", "created_by"]].values.tolist() \
        == [[key, 1, "lime", "income", "wrong", "income pushes the wrong way", "local"]]

    at.switch_page("pages/explain.py").run()
    assert not at.exception
    counts = [df.value for df in at.dataframe if "wrong" in df.value.columns]
    assert len(counts) == 2
    by_feature, by_version = counts
    assert by_feature.loc["income", "wrong"] == 1 and by_feature.loc["income", "total"] == 1
    assert by_version.loc["v1"].to_dict() == {"helpful": 0, "not helpful": 0, "wrong": 1, "total": 1}


def test_explain_page_says_what_to_do_before_any_feedback(start_app) -> None:
    at = start_app()
    at.switch_page("pages/explain.py").run()
    assert any(i.value.startswith("No feedback yet") for i in at.info)


def test_a_forest_gets_exact_treeshap_on_a_measured_sample_and_the_approximation_is_compared(
        start_app, database_url) -> None:
    sample = load_sample("loan")
    schema, _ = check(sample.frame, sample.target, id_column=sample.id_column, sensitive=sample.sensitive,
                      pii=sample.pii)
    actions.create_project(Store(database_url), "ana", name="loan forest", source="sample:loan",
                           frame=sample.frame, schema=schema, model_kind="rf")
    at = start_app()
    at.switch_page("pages/explain.py").run()
    assert not at.exception
    caption = _caption(at, "seeded rows")
    assert "exact TreeSHAP" in caption and "a row for this model" in caption and "approximate" not in caption
    at.number_input(key="global_rows").set_value(60).run()
    assert "60 seeded rows" in _caption(at, "seeded rows")
    at.toggle(key="global_approximate").set_value(True).run()
    assert not at.exception
    compared = [m.value for m in [*at.caption, *at.warning] if "Against the exact ranking" in m.value]
    assert compared and "on the same 60 rows" in compared[0] and "of the top 3 features shared" in compared[0]
    ranks = next(df.value for df in at.dataframe if "approximate rank" in df.value.columns)
    assert list(ranks["exact rank"]) == list(range(1, len(schema.features) + 1))
    assert sorted(ranks["approximate rank"]) == list(range(1, len(schema.features) + 1))


def test_a_viewer_sees_similar_cases_but_no_feedback_form(start_app, database_url) -> None:
    at = start_app()  # the demo project, made in local mode
    store = Store(database_url)
    actions.add_user(store, "local", name="root", role="admin")
    actions.add_user(store, "root", name="vic", role="viewer")
    at.session_state["signed_in"] = "vic"
    at.switch_page("pages/review.py").run()
    assert not at.exception
    assert _caption(at, "similar past cases were labelled")
    assert not any(b.label == "Send feedback" for b in at.button)
