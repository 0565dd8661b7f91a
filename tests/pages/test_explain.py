"""Explanations in the app: beside each prediction on the Review page, and globally on the Explain page."""
from __future__ import annotations

from hitl_core import actions, jobs
from hitl_core.records import DecisionRequest
from hitl_core.store import Store


def _caption(at, text):
    return next((c.value for c in at.caption if text in c.value), None)


def _pick_row_predicted(at, label):
    """Open a row the model predicts as ``label`` in the decision panel."""
    at.radio(key="review_view").set_value("All").run()
    at.multiselect(key="review_classes").set_value([label]).run()


def test_review_page_explains_the_selected_row_with_shap_and_lime(start_app):
    at = start_app()
    at.switch_page("pages/review.py").run()
    assert not at.exception
    assert "Explaining model v1" in _caption(at, "Explaining model")
    charts = at.get("plotly_chart")
    titles = " ".join(str(c.proto.spec) for c in charts)
    assert "SHAP for" in titles and "LIME for" in titles
    assert _caption(at, "SHAP and LIME agree") or any("SHAP and LIME share only" in w.value for w in at.warning)


def _row_picker(at):
    return next(box for box in at.selectbox if box.label == "Row to decide on")


def test_explanation_follows_the_new_model_version_after_a_correction(start_app, database_url):
    at = start_app()
    at.switch_page("pages/review.py").run()
    at.radio(key="review_view").set_value("All").run()
    key = _row_picker(at).value
    store = Store(database_url)
    given = store.pool_rows(store.project(1))[1][key]
    flipped = next(c for c in store.project(1).schema.classes if c != given)
    actions.record_decision(store, 1, "ana", DecisionRequest(key, flipped))
    jobs.work(store, once=True)  # the retrain the correction queued, as the worker beside the app runs it
    assert store.current_version(1).version == 2
    at.run()
    _row_picker(at).set_value(key).run()
    assert "Explaining model v2" in _caption(at, "Explaining model")


def test_what_if_changes_the_prediction_when_a_decisive_feature_changes(start_app):
    at = start_app()
    at.switch_page("pages/review.py").run()
    _pick_row_predicted(at, "no")
    assert _row_picker(at).value
    next(n for n in at.number_input if n.label == "income").set_value(500000.0)
    next(n for n in at.number_input if n.label == "debt_to_income").set_value(0.0)
    next(n for n in at.number_input if n.label == "credit_score").set_value(850.0)
    next(b for b in at.button if b.label == "Compare").click()
    at.run()
    assert not at.exception
    original = next(m for m in at.metric if m.label == "Original")
    changed = next(m for m in at.metric if m.label == "What-if")
    assert original.value.startswith("no")
    assert changed.value.startswith("yes")


def test_explain_page_shows_global_importance_on_a_seeded_sample(start_app):
    at = start_app()
    at.switch_page("pages/explain.py").run()
    assert not at.exception
    caption = _caption(at, "seeded rows")
    assert "500 seeded rows" in caption and "exact SHAP" in caption
    at.number_input(key="global_rows").set_value(120).run()
    assert not at.exception
    assert "120 seeded rows" in _caption(at, "seeded rows")
    features = at.selectbox(key="dependence_feature").options
    assert set(features) == {"age", "employment_type", "years_employed", "income", "loan_amount",
                             "credit_score", "debt_to_income"}


def test_explain_page_has_a_class_picker_for_multiclass(start_app, database_url):
    at = start_app()
    at.selectbox(key="sample_name").set_value("wine").run()
    next(b for b in at.button if b.label == "Create project and train").click()
    at.run()
    at.switch_page("pages/explain.py").run()
    assert at.selectbox(key="global_class").options == ["class_0", "class_1", "class_2"]
    at.selectbox(key="global_class").set_value("class_0").run()
    assert not at.exception
    assert "'class_0' score" in _caption(at, "seeded rows")
