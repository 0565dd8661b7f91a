"""The Overview page: the landing page, sentences that follow the numbers, charts, downloads of the model card."""
from __future__ import annotations

import re

from hitl_core import actions, jobs, story
from hitl_core.data import check
from hitl_core.samples import load_sample
from hitl_core.store import Store
from tests.core import helpers


def _text(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_a_fresh_project_lands_on_the_overview_and_says_what_to_do_next(start_app, database_url):
    at = start_app(page=None)
    assert not at.exception, at.exception
    assert at.title[0].value.startswith("Overview")
    text = _text(at)
    assert "Nobody has reviewed a prediction yet" in text
    assert "No SMART goal yet" in text or "SMART goal" in text
    assert len(at.get("plotly_chart")) >= 2
    assert [b.label for b in at.get("download_button")] == ["Model card (HTML, opens offline)",
                                                             "Model card (Markdown)"]


def _review_sentence(at) -> str:
    return next(m.value for m in at.markdown if "reviewed" in m.value or "Nobody has reviewed" in m.value)


def test_the_sentences_follow_the_decisions_and_the_retrain(start_app, database_url):
    at = start_app(page=None)
    store = Store(database_url)
    project = store.projects()[0]
    before = _review_sentence(at)
    actions.record_decisions(store, project.id, "bob", helpers.corrections(store, project, 7))
    at = start_app(page=None)
    waiting = _review_sentence(at)
    assert re.search(r"reviewed 7 predictions and changed 7", waiting.replace("\\", ""))
    assert "No model has been trained on their labels yet" in waiting
    jobs.run_now(store, project.id, "bob")
    at = start_app(page=None)
    after = _review_sentence(at).replace("\\", "")
    assert not at.exception, at.exception
    versions = store.model_versions(project.id)
    v1, v2 = versions[0].test["accuracy"], versions[-1].test["accuracy"]
    if round(100 * v1) != round(100 * v2):
        assert f"from {story.pct(v1)} (v1) to {story.pct(v2)} (v{versions[-1].version})" in after
    else:
        assert f"stayed at {story.pct(v2)}" in after or "within the" in after
    assert len({before, waiting, after}) == 3
    store.engine.dispose()


def test_the_fairness_sentence_names_the_favourable_outcome_and_the_favoured_group(start_app, database_url):
    at = start_app(page=None)
    project = Store(database_url).projects()[0]
    text = _text(at).replace("\\", "")
    assert f"Share predicted '{project.schema.target} = {project.schema.favourable}'" in text
    shares = re.search(r"by (\w+) \(validation\): (\d+)\s% for (\w+), (\d+)\s% for (\w+)", text)
    assert shares and int(shares.group(2)) >= int(shares.group(4))


def _newest(database_url: str, sample_name: str, **roles) -> None:
    """A second project (the newest, so a new session opens on it) from a bundled sample."""
    store = Store(database_url)
    sample = load_sample(sample_name)
    schema, _ = check(sample.frame, sample.target, **roles)
    actions.create_project(store, "ana", name=f"{sample_name} (newest)", source=f"sample:{sample_name}",
                           frame=sample.frame, schema=schema, model_kind="logreg")
    store.engine.dispose()


def test_a_multiclass_project_without_sensitive_columns_says_how_to_check_fairness(start_app, database_url):
    start_app(page=None)
    _newest(database_url, "wine")
    at = start_app(page=None)
    assert not at.exception, at.exception
    assert at.title[0].value == "Overview: wine \\(newest\\)"
    text = _text(at)
    assert "No sensitive attribute is marked" in text and "pushes" in text
    assert len(at.get("plotly_chart")) == 2  # accuracy and drivers; no fairness chart to draw


def test_without_a_favourable_outcome_the_overview_asks_for_it_instead_of_guessing(start_app, database_url):
    start_app(page=None)
    loan = load_sample("loan")
    _newest(database_url, "loan", id_column=loan.id_column, sensitive=loan.sensitive, pii=loan.pii)
    at = start_app(page=None)
    assert not at.exception, at.exception
    text = _text(at)
    assert "is the favourable outcome for people is not set" in text and "Share predicted" not in text
