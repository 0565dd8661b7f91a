"""The model card: every section, self-contained HTML, hostile names inert in HTML and Markdown, the CLI writes both."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from hitl_core import actions, jobs, report
from hitl_core import brief as briefs
from hitl_core import costs
from hitl_core.data import check
from hitl_core.samples import load_sample
from hitl_core.store import Store
from tests.core import helpers

REPO = Path(__file__).resolve().parents[2]
NAME = '<script>alert("name")</script> [click](http://evil.example/name)'
YES = '<script>alert("yes")</script>'
NO = "[no](http://evil.example/no)"
COLUMN = '<img src=x onerror=alert("col")>'
GROUP = "[ga](http://evil.example/group)"
NOTE = '<script>alert("note")</script> [note](http://evil.example/note)'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """A loan project whose name, classes, a feature column, a group and a rollback reason are attacks."""
    db = f"sqlite:///{tmp_path_factory.mktemp('card') / 'hitl.db'}"
    store = Store(db)
    sample = load_sample("loan")
    frame = sample.frame.rename(columns={"income": COLUMN}).assign(
        approved=sample.frame["approved"].map({"yes": YES, "no": NO}),
        group=sample.frame["group"].replace({"group_a": GROUP}))
    schema, _ = check(frame, "approved", id_column=sample.id_column, sensitive=sample.sensitive, pii=sample.pii,
                      favourable=YES)
    project, _ = actions.create_project(store, "ana", name=NAME, source="sample:loan", frame=frame, schema=schema,
                                        model_kind="logreg", retrain_policy="manual")
    actions.record_decisions(store, project.id, "bob", helpers.corrections(store, project, 12))
    actions.record_decisions(store, project.id, "cy", helpers.corrections(store, project, 6, skip=12))
    jobs.run_now(store, project.id, "ana")
    actions.set_current_version(store, project.id, "ana", version=1, reason=NOTE)
    store.engine.dispose()
    return db, project.id


@pytest.fixture(scope="module")
def card(hostile) -> report.CardData:
    db, project_id = hostile
    store = Store(db)
    try:
        return report.gather(store, project_id)
    finally:
        store.engine.dispose()


def test_the_card_has_every_section_in_both_formats(card):
    page, text = report.to_html(card), report.to_markdown(card)
    for title in report.SECTION_TITLES:
        assert f"<h2>{title}</h2>" in page
        assert f"## {title}" in text
    assert [s.title for s in report.sections(card)] == list(report.SECTION_TITLES)


def test_the_html_card_is_self_contained(card):
    page = report.to_html(card)
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and not any("src" in tag for tag in scripts)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.DOTALL)  # plotly.js mentions URLs in its code
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert "<link" not in markup and "<iframe" not in markup
    figures = sum(isinstance(b, report.Figure) for s in report.sections(card) for b in s.blocks)
    assert figures == 4  # accuracy, selection rates by group and by gender, drivers
    assert page.count("Plotly.newPlot(") == figures and page.count("plotly.js v") == 1  # the library once, inline


def test_hostile_names_stay_text_in_html(card):
    page = report.to_html(card)
    for payload in ('<script>alert("', "<img src=x", '<a href="http://evil'):
        assert payload not in page, payload
    assert "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;" in page  # the name is there, as text
    assert "&lt;img src=x onerror=alert(&quot;col&quot;)&gt;" in page  # column name in the data section
    assert "&lt;script&gt;alert(&quot;note&quot;)&lt;/script&gt;" in page  # the rollback reason in the history


def test_hostile_names_stay_text_in_markdown(card):
    text = report.to_markdown(card)
    assert not re.search(r"(?<!\\)[<>]", text)  # every angle bracket escaped: no HTML reaches a renderer
    assert "](http" not in text and "<script" not in text.replace("\\<script", "")
    assert r"\<script\>alert\(\"name\"\)\<\/script\>" in text
    assert r"\[ga\]\(http" in text  # the group's name in the fairness table, escaped


def test_the_card_names_the_favourable_outcome_and_who_labelled(card):
    text = report.to_markdown(card)
    assert card.fairness and all(r.positive_class == YES for r in card.fairness)
    assert "share predicted" in text.lower() and r"approved \= \<script\>alert\(\"yes\"\)\<\/script\>" in text
    assert list(card.labellers["person"]) == ["bob", "cy"] and list(card.labellers["decisions"]) == [12, 6]
    assert "one labeller per row" in report.labels_sentence(card)


def test_a_card_without_a_brief_or_costs_says_what_to_do(card):
    assert card.brief is None and card.cost_model is None
    text = "\n".join(b.text for s in report.sections(card) for b in s.blocks if isinstance(b, report.Paragraph))
    assert "No project brief yet" in text and "No costs set" in text


def cli(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hitl_core", *args, "--db", db], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin"})


@pytest.mark.parametrize("out, fmt, expected", [("card.html", None, "html"), ("card.md", None, "md"),
                                                ("card.txt", "md", "md")])
def test_the_report_command_writes_the_format_asked_for(hostile, tmp_path, out, fmt, expected):
    db, project_id = hostile
    path = tmp_path / out
    done = cli("report", "--project", str(project_id), "--out", str(path), *(["--format", fmt] if fmt else []), db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["format"] == expected
    written = path.read_text(encoding="utf-8")
    assert written.startswith("<!DOCTYPE html>") if expected == "html" else written.startswith("# Model card")


def test_the_report_command_on_an_unknown_project_exits_2(hostile, tmp_path):
    done = cli("report", "--project", "999", "--out", str(tmp_path / "x.html"), db=hostile[0])
    assert done.returncode == 2 and "No project 999" in done.stderr and not (tmp_path / "x.html").exists()


def test_a_card_with_a_brief_and_costs_tells_goal_checks_cost_and_stakeholders_as_text(store, wine, wine_schema):
    project, _ = helpers.start_wine(store, wine, wine_schema)
    classes = wine_schema.classes
    actions.set_costs(store, project.id, helpers.ACTOR, costs.CostModel(
        classes, tuple(tuple(0.0 if i == j else 10.0 * (1 + i) for j in range(3)) for i in range(3)), 2.0, "€"))
    actions.save_brief(store, project.id, helpers.ACTOR, briefs.Brief(
        hypothesis=NOTE, optimisation_metric="accuracy", success_measures="fewer wasted tastings",
        stakeholders=(briefs.Stakeholder(name=NAME, kind="impacted", concerns=GROUP, success="fair prices"),),
        goal=briefs.SmartGoal(metric="accuracy", target=0.99, deadline=date(2030, 1, 1)),
        premortem=(briefs.PremortemItem(failure=COLUMN, mitigation="retrain monthly"),),
        checks=(briefs.SafetyCheck(name="beats the guess", kind="beats_majority", metric="accuracy"),
                briefs.SafetyCheck(name="near perfect", kind="metric", metric="accuracy", value=0.999))))
    card = report.gather(store, project.id, today=date(2029, 12, 1))
    current = card.current
    assert card.goal.value == current.validation["accuracy"] and card.goal.days_left == 31
    assert report.goal_sentence(card) == card.goal.sentence()
    passed = [r.passed for r in card.checks]
    assert passed == [True, current.validation["accuracy"] >= 0.999]
    assert report.checks_sentence(card.checks, True).startswith(f"{sum(passed)} of 2 safety checks pass on v1")
    model = card.version_costs["model"]
    assert model.low <= model.per_row <= model.high
    guess, sentence = card.version_costs["majority"], report.cost_sentence(card)
    assert model.text() in sentence and guess.text() in sentence and f"'{card.majority_class}'" in sentence
    verdict = "cheaper" if model.high < guess.low else "costs more" if model.low > guess.high else "no clear difference"
    assert sentence.endswith(f"{verdict}.")
    page, text = report.to_html(card), report.to_markdown(card)
    for payload in ('<script>alert("', "<img src=x", '<a href="http://evil'):
        assert payload not in page
    assert not re.search(r"(?<!\\)[<>]", text) and "](http" not in text
    assert "&lt;img src=x onerror=alert(&quot;col&quot;)&gt; → retrain monthly" in page  # the premortem, as text
    assert "fewer wasted tastings" in page and "Expected cost of the model" in page
