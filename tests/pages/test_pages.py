"""Every page renders without an exception, and the data and metrics pages show what they promise."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hitl_core import jobs
from hitl_core.store import Store

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["pages/data.py", "pages/review.py", "pages/metrics.py", "pages/audit.py"]
PAGE_FILES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))


def _calls_streamlit(node: ast.AST) -> bool:
    """Whether a statement calls ``st.<command>(...)`` (``st.column_config.*`` only describes, so it is fine)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
               and n.func.value.id == "st" for n in ast.walk(node))


@pytest.mark.parametrize("name", PAGE_FILES)
def test_every_page_is_in_the_navigation_and_goes_through_the_frame_first(name):
    """A page opened by a deep link runs without app.py until ``state.through_frame`` sends it back (DESIGN.md)."""
    assert f'st.Page("pages/{name}"' in (ROOT / "app.py").read_text(encoding="utf-8")
    body = ast.parse((ROOT / "pages" / name).read_text(encoding="utf-8")).body
    guard = next((i for i, node in enumerate(body) if "state.through_frame(__file__)" in ast.unparse(node)), None)
    assert guard is not None, f"{name} does not call state.through_frame(__file__)"
    assert not any(_calls_streamlit(node) for node in body[:guard]), f"{name} uses st before the frame guard"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(start_app, page):
    at = start_app()
    at.switch_page(page).run()
    assert not at.exception, at.exception


def test_fresh_database_opens_on_the_demo_project(start_app, database_url):
    at = start_app()
    assert not at.exception
    projects = Store(database_url).projects()
    assert [p.source for p in projects] == ["sample:loan"]
    assert any(m.label == "Held-out test" for m in at.metric)


def test_data_page_reports_the_sample_and_its_warnings(start_app):
    at = start_app()
    at.selectbox(key="sample_name").set_value("loan").run()
    assert any("unlabeled" in w.value for w in at.warning)  # 15 % pending applications
    report = next(d.value for d in at.dataframe if "role" in getattr(d.value, "columns", []))
    roles = dict(zip(report["column"], report["role"]))
    assert roles["approved"] == "target"
    assert roles["email"] == "pii (not a feature)"
    assert roles["group"] == "sensitive (not a feature)"


def test_data_page_shows_a_clear_error_for_a_bad_target(start_app):
    at = start_app()
    at.selectbox(key="sample_name").set_value("loan").run()
    at.selectbox(key="target_Loan approvals (synthetic, biased)").set_value("gender").run()
    at.multiselect(key="sens_Loan approvals (synthetic, biased)").set_value([]).run()
    assert not at.exception
    at.selectbox(key="target_Loan approvals (synthetic, biased)").set_value("income").run()
    assert not at.exception
    assert any("at most 100 classes" in e.value for e in at.error)


def test_creating_a_multiclass_project_trains_version_one(start_app, database_url):
    at = start_app()
    at.selectbox(key="sample_name").set_value("wine").run()
    next(b for b in at.button if b.label == "Create project and train").click()
    at.run()
    assert not at.exception
    project = Store(database_url).projects()[-1]
    assert project.schema.classes == ("class_0", "class_1", "class_2")
    version = Store(database_url).current_version(project.id)
    assert version.version == 1 and version.validation["brier"] is None
    at.switch_page("pages/metrics.py").run()
    assert not at.exception
    assert any("Only one model version so far" in i.value for i in at.info)


def test_a_metric_that_did_not_move_says_no_change_without_colour(start_app, database_url):
    start_app()

    jobs.run_now(Store(database_url), 1, "ana")  # v2 on the same labels: the same numbers
    at = start_app()
    at.switch_page("pages/metrics.py").run()
    assert not at.exception
    deltas = [m.delta for m in at.metric if m.delta]
    assert deltas and all(d == "no change vs v1" for d in deltas)
