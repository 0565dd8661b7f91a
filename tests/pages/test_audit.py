"""Audit trail page: every change with who, when and before → after, filters, downloads; user text never renders
as Markdown on any page (names, sources, columns, groups, notes)."""
from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from hitl_core import actions
from hitl_core.data import Dataset, check, content_hash
from hitl_core.records import DecisionRequest, Project
from hitl_core.samples import Sample, load_sample
from hitl_core.store import Store
from hitl_ui.text import WORD_JOINER, md_code, md_escape

PAGE = "pages/audit.py"
EVIL_NAME = "[click](http://evil.example) **bold**"
EVIL_SOURCE = "upload:[file](http://evil.example)_x_.csv"
EVIL_COLUMN = "[column](http://evil.example)"
EVIL_GROUPS = ("[group](http://evil.example)", "**loud**")
EVIL_USER = "**mallory**"
EVIL_NOTE = "[note](http://evil.example) =HYPERLINK(\"http://evil.example\")"
MARKDOWN_ELEMENTS = ("title", "header", "subheader", "caption", "markdown", "info", "warning", "error", "success")
# what GitHub-flavoured Markdown links by itself, looked for in the text as rendered (escapes resolved)
BARE_LINK = re.compile(r"(?i)https?://|www\.|[\w.+-]@[\w-]")
LABELLED_WIDGETS = ("selectbox", "multiselect", "radio", "text_input", "number_input", "checkbox", "toggle", "slider",
                    "button", "date_input", "expander", "tabs", "download_button")


@pytest.fixture(scope="module")
def wine() -> Sample:
    return load_sample("wine")


def _project(database_url: str, wine: Sample, *, name: str = "wine", source: str = "sample:wine",
             frame: pd.DataFrame | None = None, sensitive: tuple[str, ...] = ()) -> tuple[Store, Project]:
    store = Store(database_url)
    frame = wine.frame if frame is None else frame
    schema = check(frame, wine.target, sensitive=list(sensitive))[0]
    project, _ = actions.create_project(store, "ana", name=name, source=source, frame=frame, schema=schema,
                                        model_kind="logreg", retrain_policy="manual")
    return store, project


def _pool(store: Store, project: Project, n: int) -> list[str]:
    return [str(k) for k in store.pool_rows(project)[0][:n]]


def _table(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _rendered_as_markdown(at: AppTest) -> list[str]:
    """Every string Streamlit renders as Markdown: text elements, alerts, metric and widget labels, radio options."""
    texts = [e.value for kind in MARKDOWN_ELEMENTS for e in at.get(kind)]
    texts += [m.label for m in at.metric]
    texts += [w.label for kind in LABELLED_WIDGETS for w in getattr(at, kind)]
    texts += [str(option) for radio in at.radio for option in radio.options]
    return texts


# --------------------------------------------------------------------------- the trail
def test_audit_page_shows_each_change_with_who_when_and_before_after(start_app, database_url, wine):
    store, project = _project(database_url, wine)
    row = _pool(store, project, 1)[0]
    given = store.load_dataset(project).labels[row]
    actions.record_decisions(store, project.id, "bob", [DecisionRequest(row, "class_2", note="checked it twice")])
    actions.change_settings(store, project.id, "carol", threshold=0.6)

    at = start_app()
    at.switch_page(PAGE).run()

    assert not at.exception, at.exception
    events = _table(at, "change")
    assert events["actor"].tolist()[:2] == ["carol", "bob"]  # newest first
    assert "threshold: 0.7 → 0.6" in events["change"].tolist()
    decided = events[events["object"] == f"row {row}"].iloc[0]
    assert decided["change"].startswith(f"label: {given} → class_2") and decided["note"] == "checked it twice"
    decisions = _table(at, "predicted_label")
    assert decisions[["user", "row_key", "label", "note"]].values.tolist() == [
        ["bob", row, f"{given} → class_2", "checked it twice"]]


def test_filters_narrow_the_trail_by_person_row_and_action(start_app, database_url, wine):
    store, project = _project(database_url, wine)
    first, second = _pool(store, project, 2)
    actions.record_decisions(store, project.id, "bob", [DecisionRequest(first, "class_1")])
    actions.record_decisions(store, project.id, "carol", [DecisionRequest(second, "class_0")])
    at = start_app()
    at.switch_page(PAGE).run()

    at.multiselect(key=f"audit_people_{project.id}").set_value(["carol"]).run()
    assert set(_table(at, "change")["actor"]) == {"carol"}
    assert _table(at, "predicted_label")["row_key"].tolist() == [second]

    at.multiselect(key=f"audit_people_{project.id}").set_value([]).run()
    at.text_input(key=f"audit_row_{project.id}").input(first).run()
    assert _table(at, "change")["actor"].tolist() == ["bob"]

    at.text_input(key=f"audit_row_{project.id}").input("").run()
    at.multiselect(key=f"audit_actions_{project.id}").set_value(["version"]).run()
    assert not at.exception
    assert set(_table(at, "change")["action"]) == {"version"}
    assert any("No decision matches these filters" in i.value for i in at.info)


def test_downloads_hold_the_whole_project_with_formulas_neutralised(start_app, database_url, wine, monkeypatch):
    store, project = _project(database_url, wine)
    row = _pool(store, project, 1)[0]
    actions.record_decisions(store, project.id, "bob", [DecisionRequest(row, "class_2", note="=1+1")])
    built = {}
    register = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        built[file_name] = data_callable
        return register(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    at = start_app()
    at.switch_page(PAGE).run()

    assert not at.exception
    assert sorted(built) == sorted(f"project-{project.id}-{what}.{fmt}"
                                   for what in ("labels", "decisions", "events", "complaints")
                                   for fmt in ("csv", "parquet"))
    decisions = pd.read_csv(io.BytesIO(built[f"project-{project.id}-decisions.csv"]()), dtype=str)
    assert decisions[["user", "row_key", "note"]].values.tolist() == [["bob", row, "'=1+1"]]
    labels = pd.read_parquet(io.BytesIO(built[f"project-{project.id}-labels.parquet"]())).set_index("row_key")
    assert len(labels) == len(wine.frame)
    assert (labels.loc[row, "effective_label"], labels.loc[row, "decided_by"]) == ("class_2", "bob")
    events = pd.read_csv(io.BytesIO(built[f"project-{project.id}-events.csv"]()), dtype=str, keep_default_na=False)
    assert "'=1+1" in events["note"].tolist()


def test_a_project_with_nothing_recorded_says_what_to_do(start_app, database_url, wine):
    """A project stored before the audit trail existed (no events, no decisions, no model yet)."""
    store = Store(database_url)
    schema = check(wine.frame, wine.target)[0]
    dataset = Dataset.create("legacy", wine.frame, schema)
    dataset_hash = content_hash(dataset.frame)
    store.save_dataset(dataset, dataset_hash)
    with store.write() as tx:  # bypasses hitl_core.actions on purpose: the legacy shape has no event rows
        tx.add_project(name="legacy", dataset_hash=dataset_hash, source="sample:wine", schema=schema,
                       model_kind="logreg")

    at = start_app()
    at.switch_page(PAGE).run()

    assert not at.exception, at.exception
    assert any("Nothing recorded for this project yet" in i.value for i in at.info)
    assert len(at.download_button) == 8  # the given labels can still be exported (and the empty complaints)


# --------------------------------------------------------------------------- user text is never Markdown
TITLES = {"pages/data.py": "Data", "pages/metrics.py": "Metrics", "pages/fairness.py": "Fairness",
          "pages/explain.py": "Explain the model", "pages/simulation.py": "Simulation", PAGE: "Audit trail"}


@pytest.mark.parametrize("page", list(TITLES))
def test_names_from_users_render_as_plain_text(start_app, database_url, wine, page):
    frame = wine.frame.assign(**{EVIL_COLUMN: [EVIL_GROUPS[i % 2] for i in range(len(wine.frame))]})
    store, project = _project(database_url, wine, name=EVIL_NAME, source=EVIL_SOURCE, frame=frame,
                              sensitive=(EVIL_COLUMN,))
    row = _pool(store, project, 1)[0]
    actions.record_decisions(store, project.id, EVIL_USER, [DecisionRequest(row, "class_1", note=EVIL_NOTE)])

    at = start_app()
    at.switch_page(page).run()

    assert not at.exception, at.exception
    assert at.title[0].value == TITLES[page]
    texts = _rendered_as_markdown(at)
    assert texts
    for text in texts:
        assert "](http" not in text, text  # no Markdown link
        assert not BARE_LINK.search(re.sub(r"\\(.)", r"\1", text)), text  # nor a bare URL GFM would link
        assert "**bold**" not in text and "**loud**" not in text and "**mallory**" not in text, text
    if page == "pages/data.py":
        assert any(f"Current project: {md_escape(EVIL_NAME)}" == s.value for s in at.subheader)
        assert any("\\[click\\]" in s.value for s in at.subheader)
        assert any(md_escape(EVIL_SOURCE) in c.value and md_escape(EVIL_COLUMN) in c.value for c in at.caption)
    if page == "pages/fairness.py":
        assert any(md_escape(EVIL_GROUPS[0]) in t or md_escape(EVIL_GROUPS[1]) in t for t in texts)


@pytest.mark.parametrize(("text", "escaped"), [
    (EVIL_NAME, r"\[click\]\(http" + WORD_JOINER + r"\:\/\/evil\.example\) \*\*bold\*\*"),
    ("1. first", r"1\. first"),
    ("# heading", r"\# heading"),
    ("<b>x</b> & y", r"\<b\>x\<\/b\> \& y"),
    ("a | b ~~c~~ $x$", r"a \| b \~\~c\~\~ \$x\$"),
    ("back\\slash `code`", r"back\\slash \`code\`"),
    ("_em_ *em*", r"\_em\_ \*em\*"),
    ("www.evil.example", "www" + WORD_JOINER + r"\.evil\.example"),
    ("HTTPS://x.y or ana@evil.example",
     "HTTPS" + WORD_JOINER + r"\:\/\/x\.y or ana\@" + WORD_JOINER + r"evil\.example"),
    ("first line\n# second\r\nthird", r"first line \# second third"),
    ("group_b × male", "group_b × male"),  # an underscore inside a word never makes emphasis
    ("José 42", "José 42"),
    (3.5, r"3\.5"),
])
def test_md_escape(text, escaped):
    assert md_escape(text) == escaped


@pytest.mark.parametrize("special", list("[]()*_`#<>|~$\\!+-.{}:"))
def test_md_escape_backslashes_every_markdown_character(special):
    assert md_escape(f"a {special} b") == f"a \\{special} b"


@pytest.mark.parametrize(("text", "code"), [
    ("python -m hitl_core simulate 'my file.csv'", "`python -m hitl_core simulate 'my file.csv'`"),
    ("a `b` [x](http://e.x)", "``a `b` [x](http://e.x)``"),
    ("`x", "`` `x ``"),
    ("two\nlines", "`two lines`"),
    ("", ""),
])
def test_md_code_cannot_be_broken_out_of(text, code):
    assert md_code(text) == code
