"""End to end in a real browser: Debian's chromium, driven by Playwright, against `streamlit run app.py`."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from hitl_core.store import Store
from tests.support.server import REPO_ROOT, launch_chromium, streamlit_server

ARTIFACTS = REPO_ROOT / "test-artifacts"
TIMEOUT_MS = 90_000
expect.set_options(timeout=TIMEOUT_MS)  # first loads train the demo model: slow on a busy 2-core machine


@pytest.fixture
def browser_page():
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1440, "height": 2200})
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def _open(page: Page, url: str, heading: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)  # no script still running
    # the frame ran (sidebar navigation of app.py), even for a deep link opened in a new session
    expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Explain")


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(4000)  # let tables and plotly finish drawing before the picture
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _metric(page: Page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def _override_current_row(page: Page) -> None:
    options = page.get_by_test_id("stRadio").filter(has_text="Correct label").locator("input[type=radio]")
    expect(options.first).to_be_attached()
    target = next(i for i in range(options.count()) if not options.nth(i).is_checked())
    options.nth(target).check(force=True)
    page.get_by_role("button", name="Save label").click()


def test_review_loop_in_the_browser_survives_a_restart(tmp_path: Path, browser_page: Page):
    db = f"sqlite:///{tmp_path / 'hitl.db'}"
    env = {"HITL_DATABASE_URL": db, "HITL_DATA_DIR": str(tmp_path)}
    page = browser_page
    with streamlit_server(env=env) as url:
        _open(page, url, "Data")
        expect(page.get_by_text("Current project: Loan approvals")).to_be_visible()
        _shot(page, "01-data")

        _open(page, f"{url}/review", "Review predictions")
        _shot(page, "02-review")
        for done in range(1, 4):
            _override_current_row(page)
            expect(page.get_by_text(re.compile(r"Overrode row \S+"))).to_be_visible()
            expect(_metric(page, "Reviewed by people")).to_have_text(str(done))
        _shot(page, "03-review-after-corrections")

        _open(page, f"{url}/metrics", "Metrics")
        expect(page.get_by_text("Validation metrics as human labels come in")).to_be_visible()
        _shot(page, "04-metrics")

        _open(page, f"{url}/explain", "Explain the model")
        expect(page.get_by_text("Global importance (mean |SHAP|)")).to_be_visible()
        _shot(page, "07-explain")
        _open(page, f"{url}/fairness", "Fairness")
        expect(page.get_by_text("Four-fifths rule", exact=False).first).to_be_visible()
        _shot(page, "08-fairness")
        _open(page, f"{url}/simulation", "Simulation")
        _shot(page, "09-simulation")

    store = Store(db)
    project = store.projects()[0]
    assert len(store.decisions(project.id)) == 3
    assert [v.n_human_labels for v in store.model_versions(project.id)] == [0, 1, 2, 3]

    with streamlit_server(env=env) as url:  # a restarted server on the same database, opened by a deep link
        page.context.clear_cookies()
        _open(page, f"{url}/review", "Review predictions")
        expect(_metric(page, "Reviewed by people")).to_have_text("3")
        _shot(page, "05-review-after-restart")


def test_a_bad_upload_gets_a_message_and_the_app_stays_up(tmp_path: Path, browser_page: Page):
    bad = tmp_path / "one_class.csv"
    bad.write_text("size,label\n1,a\n2,a\n3,a\n")
    env = {"HITL_DATABASE_URL": f"sqlite:///{tmp_path / 'hitl.db'}", "HITL_DATA_DIR": str(tmp_path)}
    page = browser_page
    with streamlit_server(env=env) as url:
        _open(page, url, "Data")
        page.get_by_text("Upload a file").click()
        page.locator("input[type=file]").set_input_files(str(bad))
        expect(page.get_by_text("only one class ('a')")).to_be_visible()
        _shot(page, "06-bad-upload")
        _open(page, f"{url}/review", "Review predictions")  # the app is still up and serving the project
