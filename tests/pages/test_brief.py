"""Brief page: it renders, saves a new version with who, shows safety checks per version; the goal on Metrics."""
from __future__ import annotations

import json
from datetime import date, timedelta

from hitl_core import actions, brief
from hitl_core.brief import Brief, PremortemItem, SafetyCheck, SmartGoal, Stakeholder
from hitl_core.store import Store
from hitl_ui import state
from hitl_ui.text import md_escape

PAGE = "pages/brief.py"
HOSTILE = "[click](http://evil.example) **bold**"


def _save(database_url: str, made: Brief, actor: str = "lea") -> Store:
    store = Store(database_url)
    actions.save_brief(store, 1, actor, made)
    return store


def _checked_brief() -> Brief:
    """On the loan demo (favourable outcome 'yes'): one check that passes, one that fails, the four-fifths rule."""
    return Brief(hypothesis=HOSTILE, stakeholders=(Stakeholder(HOSTILE, "impacted", "denials", "fair share"),),
                 goal=SmartGoal("balanced_accuracy", 0.9, date.today() + timedelta(days=30)),
                 premortem=(PremortemItem("labels drift", "weekly audit"),),
                 checks=(SafetyCheck("floor", "metric", metric="accuracy", value=0.5),
                         SafetyCheck("moonshot", "metric", metric="accuracy", value=0.99),
                         SafetyCheck("four-fifths by group", "four_fifths", attribute="group")))


def _table(at, column):
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def test_a_project_without_a_brief_says_how_to_start(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("No brief yet" in i.value for i in at.info)
    assert [t.label for t in at.tabs] == ["Brief", "Edit", "History"]  # local mode: the one person is an admin


def test_saving_on_the_page_writes_a_new_version_with_who_and_the_goal(start_app, database_url):
    at = start_app()
    at.switch_page(PAGE).run()
    at.text_area(key="brief_hypothesis").input("Reviewing 300 rows lifts balanced accuracy above 0.80.")
    at.checkbox(key="brief_has_goal").check()
    at.number_input(key="brief_target").set_value(0.85)
    at.date_input(key="brief_deadline").set_value(date(2027, 3, 1))
    next(b for b in at.button if b.label == "Save as brief v1").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Saved brief v1." in s.value for s in at.success)
    store = Store(database_url)
    saved = brief.current_brief(store, 1)
    assert saved.goal == SmartGoal("balanced_accuracy", 0.85, date(2027, 3, 1))
    assert saved.hypothesis.startswith("Reviewing 300 rows")
    assert [(v, who) for v, who, _, _ in store.briefs(1)] == [(1, "local")]
    history = _table(at, "what changed")
    assert list(history["version"]) == [1] and list(history["saved by"]) == ["local"]
    assert any("0.85 goal" in i.value for i in [*at.info, *at.success])  # the progress sentence

    at.number_input(key="brief_target").set_value(1.5)  # out of range: refused, nothing written
    next(b for b in at.button if b.label == "Save as brief v2").click()
    at.run()
    assert any("out of range" in e.value for e in at.error)
    assert len(store.briefs(1)) == 1


def test_safety_checks_show_pass_and_fail_per_version_and_user_text_stays_text(start_app, database_url):
    at = start_app()
    store = _save(database_url, _checked_brief())
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    grid = _table(at, "moonshot")
    assert list(grid["version"]) == [1]
    assert grid.loc[0, "floor"].startswith("✓") and grid.loc[0, "moonshot"].startswith("✗")
    assert "share 'yes'" in grid.loc[0, "four-fifths by group"]
    assert any(md_escape("1 of 3 failed: moonshot") in e.value for e in at.error)
    hypothesis = next(m.value for m in at.markdown if "evil" in m.value)
    assert "\\[click\\]" in hypothesis and "](http" not in hypothesis  # escaped: no live link
    assert _table(at, "concerns")["name"].tolist() == [HOSTILE]  # tables are plain text already
    assert brief.current_brief(store, 1) == _checked_brief()


def test_versions_page_has_a_safety_checks_column(start_app, database_url):
    at = start_app()
    _save(database_url, _checked_brief())
    at.switch_page("pages/versions.py").run()
    assert not at.exception, at.exception
    assert _table(at, "status")["safety checks"].tolist() == ["✗ 1 of 3 failed: moonshot"]


def test_metrics_page_draws_the_goal_on_the_history_chart_with_the_progress_sentence(start_app, database_url):
    at = start_app()
    _save(database_url, _checked_brief())
    at.switch_page("pages/metrics.py").run()
    assert not at.exception, at.exception
    assert "balanced_accuracy" in at.multiselect(key="history_metrics").value
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    history = next(f for f in figures if "as human labels come in" in json.dumps(f["layout"].get("title")))
    lines = [s for s in history["layout"].get("shapes", []) if s.get("y0") == s.get("y1") == 0.9]
    assert len(lines) == 1
    assert any("goal: balanced accuracy ≥ 0.9 on validation" in a.get("text", "")
               for a in history["layout"]["annotations"])
    assert any("short of the 0.90 goal" in m.value for m in at.markdown)


def test_an_annotator_reads_the_brief_but_has_no_edit_tab(start_app, database_url):
    at = start_app()
    store = _save(database_url, _checked_brief(), actor="local")
    actions.add_user(store, "local", name="boss", role="admin")
    actions.add_user(store, "boss", name="annie", role="annotator")
    at.session_state[state.SIGNED_IN_KEY] = "annie"
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["Brief", "History"]
    assert _table(at, "moonshot") is not None and not any(b.label.startswith("Save as") for b in at.button)
