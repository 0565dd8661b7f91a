"""Every page renders without an exception, and the data and metrics pages show what they promise."""
from __future__ import annotations

import pytest

from hitl_core.store import Store

PAGES = ["pages/data.py", "pages/review.py", "pages/metrics.py"]


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
    version = Store(database_url).latest_version(project.id)
    assert version.version == 1 and version.validation["brier"] is None
    at.switch_page("pages/metrics.py").run()
    assert not at.exception
    assert any("Only one model version so far" in i.value for i in at.info)
