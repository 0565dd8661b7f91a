"""Costs on the Metrics and Versions pages: an empty state, the lead's form through the write path, expected cost
beside the baselines, the cheapest review threshold, and both versions' costs side by side."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from hitl_core import actions, costs
from hitl_core.costs import CostModel
from hitl_core.store import Store, event_record
from tests.pages.conftest import APP
from tests.pages.test_sign_in import _sign_in
from hitl_ui.text import md_escape
from tests.pages.test_versions import _second_version

METRICS = "pages/metrics.py"
VERSIONS = "pages/versions.py"
WRONG_YES = "costs_1_no_yes"  # loan demo: approved = yes is favourable; deciding yes for a "no" costs most
WRONG_NO = "costs_1_yes_no"


def _costs(database_url: str) -> CostModel | None:
    store = Store(database_url)
    try:
        return costs.project_costs(store, 1)
    finally:
        store.engine.dispose()


def test_without_costs_the_metrics_page_says_what_to_do(start_app):
    at = start_app(METRICS)
    assert not at.exception, at.exception
    assert any("No costs set yet" in i.value and "Set them below" in i.value for i in at.info)
    assert not [m for m in at.metric if m.label.startswith("Expected cost")]
    labels = [n.label for n in at.number_input]
    assert md_escape("Cost of deciding approved = yes (favourable) when it is no") in labels  # shown unescaped
    assert md_escape("Cost of deciding approved = no when it is yes (favourable)") in labels


def test_the_form_saves_through_the_action_and_shows_cost_beside_the_baselines(start_app, database_url):
    at = start_app(METRICS)
    at.number_input(key=WRONG_YES).set_value(500.0)
    at.number_input(key=WRONG_NO).set_value(100.0)
    at.number_input(key="costs_review_1").set_value(20.0)
    at.text_input(key="costs_unit_1").input("USD")
    next(b for b in at.get("form_submit_button") if b.label == "Save costs").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    saved = _costs(database_url)
    assert saved is not None and saved.cost("no", "yes") == 500 and saved.cost("yes", "no") == 100
    assert saved.review == 20 and saved.unit == "USD"
    store = Store(database_url)
    try:
        [event] = [event_record(r) for _, r in store.events(1).iterrows() if r["action"] == "costs"]
        version = store.current_version(1)
    finally:
        store.engine.dispose()
    assert event.actor == "local" and event.before is None and event.after == saved.to_dict()
    assert any("Costs saved" in s.value and "USD" in s.value for s in at.success)
    shown = {m.label: m.value for m in at.metric if m.label.startswith("Expected cost")}
    assert set(shown) == {"Expected cost: model", "Expected cost: majority class", "Expected cost: random (uniform)"}
    model_cost = costs.version_costs(version, saved, majority="yes")["model"]  # numbers from the stored version
    assert shown["Expected cost: model"] == costs.format_amount(model_cost.per(100), "USD")
    spread = costs.format_number((model_cost.high - model_cost.low) * 50, like=model_cost.per(100))
    assert any(md_escape(f"per 100 decisions, ± {spread}") in c.value for c in at.caption)
    # a defaulter approved costs 5 refusals: always refusing is cheaper than the model's most-probable-class decisions
    assert any("The model costs more than always deciding no" in w.value for w in at.warning)
    sentence = next(m.value for m in at.markdown if "costly errors" in m.value)
    assert "validation rows" in sentence and "with no review" in sentence
    titles = " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    assert "Triage cost" in titles and "Expected cost per 100 decisions" in titles


def test_impossible_costs_get_a_message_and_nothing_is_saved(start_app, database_url):
    at = start_app(METRICS)
    next(b for b in at.get("form_submit_button") if b.label == "Save costs").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Every wrong decision costs 0" in e.value for e in at.error)
    assert _costs(database_url) is None


def test_a_viewer_sees_costs_but_no_form(start_app, database_url):
    start_app()
    store = Store(database_url)
    try:
        actions.add_user(store, "local", name="root", role="admin", password="root password")
        actions.add_user(store, "root", name="vic", role="viewer", password="vic password")
        actions.set_costs(store, 1, "root", CostModel.binary(("no", "yes"), favourable="yes", wrongly_favourable=5,
                                                             wrongly_unfavourable=1, review=0.5, unit="€"))
    finally:
        store.engine.dispose()
    at = _sign_in(AppTest.from_file(APP, default_timeout=120).run(), "vic", "vic password")
    at.switch_page(METRICS).run()
    assert not at.exception, at.exception
    assert [m for m in at.metric if m.label == "Expected cost: model"]
    assert not [b for b in at.get("form_submit_button") if b.label == "Save costs"]


def test_versions_page_compares_both_versions_costs(start_app, database_url):
    at = start_app()
    store = _second_version(database_url)
    try:
        model = CostModel.binary(("no", "yes"), favourable="yes", wrongly_favourable=10, wrongly_unfavourable=3,
                                 review=1, unit="€")
        actions.set_costs(store, 1, "ana", model)
        v1, v2 = store.model_versions(1)
    finally:
        store.engine.dispose()
    at.switch_page(VERSIONS).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "measure" in d.value.columns)
    row = table.set_index("measure").loc["expected cost per 100 decisions"]
    for name, version in (("v1", v1), ("v2", v2)):
        expected = costs.cost_of_counts(costs.confusion_counts(version.confusion, model.classes), model).per(100)
        assert abs(row[name] - expected) < 1e-9
    assert abs(row["change"] - (row["v1"] - row["v2"])) < 1e-9  # candidate v1 minus reference v2
    assert any("v1 costs" in m.value and "for v2" in m.value for m in at.markdown)


def test_versions_page_without_costs_points_to_the_metrics_page(start_app, database_url):
    at = start_app()
    _second_version(database_url).engine.dispose()
    at.switch_page(VERSIONS).run()
    assert not at.exception, at.exception
    assert any("No costs set for this project" in i.value for i in at.info)


def test_a_multiclass_target_gets_the_full_matrix(start_app, database_url):
    from hitl_core.data import check
    from hitl_core.samples import load_sample

    start_app()
    wine = load_sample("wine")
    store = Store(database_url)
    try:
        project, _ = actions.create_project(store, "local", name="wine", source="sample:wine", frame=wine.frame,
                                            schema=check(wine.frame, wine.target)[0], model_kind="logreg")
    finally:
        store.engine.dispose()
    classes = project.schema.classes
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["project"] = str(project.id)
    at.switch_page(METRICS).run()
    keys = {n.key for n in at.number_input if n.key.startswith(f"costs_{project.id}_")}
    assert keys == {f"costs_{project.id}_{t}_{p}" for t in classes for p in classes if t != p}
    at.number_input(key=f"costs_{project.id}_{classes[0]}_{classes[2]}").set_value(7.0)
    at.number_input(key=f"costs_{project.id}_{classes[2]}_{classes[0]}").set_value(3.0)
    next(b for b in at.get("form_submit_button") if b.label == "Save costs").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    store = Store(database_url)
    try:
        saved = costs.project_costs(store, project.id)
    finally:
        store.engine.dispose()
    assert saved.cost(classes[0], classes[2]) == 7 and saved.cost(classes[2], classes[0]) == 3
    assert saved.cost(classes[0], classes[1]) == 0
    assert [m for m in at.metric if m.label == "Expected cost: model"]
