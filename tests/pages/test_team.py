"""Team page: agreement, quality per person, gold rows, likely label errors; with 0, 1 and 3 people."""
from __future__ import annotations

import json
import re

import numpy as np
from streamlit.testing.v1 import AppTest

from hitl_core import actions
from hitl_core.records import DecisionRequest, Project
from hitl_core.store import Store
from hitl_ui import review_panel, state

PAGE = "pages/team.py"


def _demo(database_url: str) -> tuple[Store, Project]:
    store = Store(database_url)
    return store, store.projects()[-1]


def _label(store: Store, project: Project, person: str, keys: list[str], labels: list[str]) -> None:
    pool = store.pool_rows(project)[0]
    assert all(k in pool for k in keys)
    actions.record_decisions(store, project.id, person, [
        DecisionRequest(row_key=k, new_label=label, predicted_label=project.schema.classes[0], confidence=0.55)
        for k, label in zip(keys, labels)])


def _texts(at: AppTest) -> str:
    """Every text element as read on screen (Markdown escapes resolved)."""
    raw = " ".join([m.value for m in at.markdown] + [i.value for i in at.info] + [c.value for c in at.caption])
    return re.sub(r"\\(.)", r"\1", raw)


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_with_nobody_labelling_yet_the_page_says_what_to_do(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Nobody has labelled a row in this project yet" in text
    assert "Nobody has labelled so far: agreement needs two" in text
    assert not _figures(at)


def test_with_one_person_agreement_needs_two(start_app, database_url):
    at = start_app()
    store, project = _demo(database_url)
    keys = [str(k) for k in store.pool_rows(project)[0][:6]]
    _label(store, project, "ana", keys, [project.schema.classes[1]] * 6)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "One person has labelled so far: agreement needs two" in text
    assert "ana made 6 decision(s) on 6 row(s)" in text
    assert len(next(d.value for d in at.dataframe if "person" in d.value.columns)) == 1


def test_with_three_people_the_page_shows_kappa_quality_and_confusion(start_app, database_url):
    at = start_app()
    store, project = _demo(database_url)
    a, b = project.schema.classes[:2]
    keys = [str(k) for k in store.pool_rows(project)[0][:12]]
    rng = np.random.default_rng(0)
    truth = list(rng.choice([a, b], 12))
    _label(store, project, "ann", keys, truth)
    _label(store, project, "bob", keys, truth[:9] + [b if t == a else a for t in truth[9:]])
    _label(store, project, "cal", keys[:8], [b if t == a else a for t in truth[:4]] + truth[4:8])
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "On 12 row(s) labelled by two or more people" in text
    assert {m.label for m in at.metric} >= {"Percent agreement", "Krippendorff's alpha", "Fleiss' kappa"}
    titles = [json.dumps(f["layout"].get("title")) for f in _figures(at)]
    assert any("Cohen's kappa per pair" in t for t in titles)
    assert any("When two people labelled the same row" in t for t in titles)
    heatmap = next(f for f in _figures(at) if "Cohen's kappa" in json.dumps(f["layout"].get("title")))
    assert heatmap["data"][0]["x"] == ["ann", "bob", "cal"]
    pairs = next(d.value for d in at.dataframe if "rows both labelled" in d.value.columns)
    assert len(pairs) == 3 and pairs.set_index(["person", "other person"]).loc[("ann", "cal"), "rows both labelled"] == 8
    people = next(d.value for d in at.dataframe if "person" in d.value.columns and "gold accuracy" in d.value.columns)
    assert list(people["person"]) == ["ann", "bob", "cal"]


def test_a_lead_sets_gold_rows_and_the_rate_and_they_reach_the_queue(start_app, database_url):
    at = start_app()
    store, project = _demo(database_url)
    keys = [str(k) for k in store.pool_rows(project)[0][:40]]
    at.switch_page(PAGE).run()
    at.text_area(key="gold_keys").input(", ".join(keys[:30]))
    at.selectbox(key="gold_label").select(project.schema.classes[0])
    at.button[[b.label for b in at.button].index("Set as gold")].click().run()
    assert not at.exception, at.exception
    assert len(store.gold(project.id)) == 30
    at.slider(key="gold_rate").set_value(0.25)
    at.multiselect(key="gold_drop").select(keys[0])
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert not at.exception, at.exception
    assert store.gold_rate(project.id) == 0.25 and len(store.gold(project.id)) == 29
    assert "29 gold row(s); 25% of each" in _texts(at)
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    assert at.radio(key="review_view").value == "Ask next"
    batch = next(d.value for d in at.dataframe if "why asked" in d.value.columns)
    assert len(batch) == 20
    gold_in_batch = batch[batch.index.astype(str).isin(keys[1:30])]
    assert len(gold_in_batch) == 5  # 25 % of 20, unmarked: a reason any drawn row could have
    assert not any("gold" in str(v).lower() for v in batch["why asked"])


def test_gold_set_on_a_wrong_row_says_why(start_app, database_url):
    at = start_app()
    at.switch_page(PAGE).run()
    at.text_area(key="gold_keys").input("no-such-row")
    at.button[[b.label for b in at.button].index("Set as gold")].click().run()
    assert not at.exception, at.exception
    assert any("not in this project's review pool" in re.sub(r"\\(.)", r"\1", e.value) for e in at.error)


def test_an_annotator_does_not_see_which_rows_are_gold(start_app, database_url):
    at = start_app()
    store, project = _demo(database_url)
    key = str(store.pool_rows(project)[0][0])
    actions.set_gold(store, project.id, "local", {key: project.schema.classes[0]})
    actions.add_user(store, "local", name="boss", role="admin")
    actions.add_user(store, "boss", name="annie", role="annotator")
    at.session_state[state.SIGNED_IN_KEY] = "annie"
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert "Only a lead or an admin sees and sets gold rows" in _texts(at)
    assert not any("known label" in d.value.columns for d in at.dataframe)
    assert not [t for t in at.text_area if t.key == "gold_keys"]


def test_likely_label_errors_open_in_the_review_page(start_app, database_url):
    at = start_app()
    store, project = _demo(database_url)
    at.switch_page(PAGE).run()
    at.toggle(key=f"team_label_issues_{project.id}").set_value(True).run()
    assert not at.exception, at.exception
    assert "Confident learning flags" in _texts(at)
    table = next(d.value for d in at.dataframe if "quality" in d.value.columns)
    assert list(table.columns[:4]) == ["row", "label", "suggested", "quality"]
    assert table["quality"].is_monotonic_increasing
    row = table["row"].iloc[1]
    at.selectbox(key="team_issue_row").select(row)
    at.button(key="team_open_review").click().run()
    assert not at.exception, at.exception
    assert at.session_state[review_panel.OPEN][project.id] == row
    assert any(row in s.value for s in at.selectbox if s.key and s.key.startswith(review_panel.ROW_PICKER))


def test_override_reasons_are_counted(start_app, database_url):
    at = start_app()
    store, project = _demo(database_url)
    a, b = project.schema.classes[:2]
    actions.set_guidelines(store, project.id, "local", guidelines="", reasons=["data entry error", "context"])
    keys = [str(k) for k in store.pool_rows(project)[0][:3]]
    actions.record_decisions(store, project.id, "ana", [
        DecisionRequest(row_key=k, new_label=b, predicted_label=a, confidence=0.7, reason=reason)
        for k, reason in zip(keys, ["context", "data entry error", "context"])])
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    counted = next(d.value for d in at.dataframe if "overrides" in d.value.columns)
    assert counted.set_index("reason")["overrides"].to_dict() == {"context": 2, "data entry error": 1}
