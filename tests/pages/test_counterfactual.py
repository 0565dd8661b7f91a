"""Review page: the counterfactual panel shows checked changes and saves one; the what-if form starts from the open
row and saves a what-if that flips the prediction, with who and which version."""
from __future__ import annotations

import json

import pytest

from hitl_core import actions
from hitl_core.models import predict_with_confidence
from hitl_core.store import Store
from hitl_ui import state

REVIEW = "pages/review.py"


def _open_row(at) -> str:
    return next(box for box in at.selectbox if box.label == "Row to decide on").value


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def _review(start_app):
    at = start_app()
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    return at


def test_what_if_form_starts_from_the_open_row_for_every_feature(start_app, database_url) -> None:
    at = _review(start_app)
    store = Store(database_url)
    data = store.load_dataset(store.project(1))
    first = _open_row(at)
    _button(at, "Next row").click()
    at.run()
    second = _open_row(at)
    assert second != first
    for feature in data.schema.numeric:
        box = at.number_input(key=f"wi_{second}_v1_{feature}")
        assert box.value == pytest.approx(float(data.frame.loc[second, feature]))
    for feature in data.schema.categorical:
        assert at.selectbox(key=f"wi_{second}_v1_{feature}").value == str(data.frame.loc[second, feature])
    assert not [w for w in at.number_input if w.key and w.key.startswith(f"wi_{first}_")]


def test_a_what_if_that_flips_the_prediction_is_saved_with_who_and_version(start_app, database_url) -> None:
    at = _review(start_app)
    store = Store(database_url)
    project = store.project(1)
    key = _open_row(at)
    model = store.load_model(1, 1)
    row = store.load_dataset(project).features.loc[[key]]
    before = predict_with_confidence(model, row, project.schema.classes).labels[0]
    # the income that flips this row: far up for a refusal, nothing for an approval (the loan model leans on income)
    income = 5_000_000.0 if before == "no" else 0.0
    at.number_input(key=f"wi_{key}_v1_income").set_value(income)
    at.text_input(key=f"wi_note_{key}_v1").input("a raise would do it")
    _button(at, "Save as counterfactual").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Saved for row" in s.value for s in at.success), [e.value for e in at.error]
    saved = store.counterfactuals(1, key)
    assert len(saved) == 1
    item = saved.iloc[0]
    assert (item["created_by"], item["model_version"], item["source"], item["note"]) == (
        "local", 1, "what-if", "a raise would do it")
    result = json.loads(item["result_json"])
    assert list(result["changes"]) == ["income"] and result["changes"]["income"][1] == income
    assert result["was"] == before and result["predicted"] != before
    assert store.events(1).iloc[-1]["action"] == "counterfactual_saved"
    # the panel lists it for the row
    assert any("who" in df.value.columns and list(df.value["source"]) == ["what-if"] for df in at.dataframe)


def test_a_what_if_that_keeps_the_prediction_is_not_saved_and_says_why(start_app, database_url) -> None:
    at = _review(start_app)
    key = _open_row(at)
    _button(at, "Save as counterfactual").click()  # nothing changed: same prediction
    at.run()
    assert not at.exception
    assert any("only a change that flips it" in e.value for e in at.error)
    assert Store(database_url).counterfactuals(1).empty


def test_the_panel_finds_checked_counterfactuals_and_saves_one(start_app, database_url) -> None:
    at = _review(start_app)
    key = _open_row(at)
    at.selectbox(key=f"cf_desired_{key}_v1")  # the form is there before any search
    _button(at, "Find counterfactuals").click()
    at.run()
    assert not at.exception, at.exception
    summary = next(e.label for e in at.get("status") if "found by DiCE" in e.label)
    assert "counterfactual(s) to" in summary
    options = [df.value for df in at.dataframe if list(df.value.columns) == ["feature", "from", "to"]]
    assert options and all(not set(o["feature"]) & {"age"} for o in options)
    _button(at, "Save").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Saved for row" in s.value for s in at.success)
    saved = Store(database_url).counterfactuals(1, key)
    assert list(saved["source"]) == ["dice"] and json.loads(saved.iloc[0]["settings_json"])["immutable"] == ["age"]
    assert set(json.loads(saved.iloc[0]["result_json"])["changes"]) == set(options[0]["feature"])


def test_a_viewer_sees_counterfactuals_but_no_save_buttons(start_app, database_url) -> None:
    at = start_app()  # local mode creates the demo project first
    store = Store(database_url)
    actions.add_user(store, "local", name="root", role="admin")
    actions.add_user(store, "root", name="vic", role="viewer")
    at.session_state[state.SIGNED_IN_KEY] = "vic"
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    _button(at, "Find counterfactuals").click()
    at.run()
    assert not at.exception, at.exception
    assert [df for df in at.dataframe if list(df.value.columns) == ["feature", "from", "to"]]
    assert not [b for b in at.button if b.label in ("Save as counterfactual", "Save")]
    store.engine.dispose()
