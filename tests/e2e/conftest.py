"""Browser test set-up: one Debian chromium and one app for the whole session.

The app is `streamlit run app.py` with `python -m hitl_core worker` beside it (as scripts/start.sh runs
them) on a SQLite file that already holds a trained project, so no test waits for the first-start demo
training (test_browser.py starts its own servers on an empty database for that). Tests create their own
projects through :mod:`hitl_core.actions` (0.3 s each, retrain policy "on demand" unless a test is about
retraining) and open them with ``?project=ID``: they share one server without sharing rows, and a busy
2-core machine pays for one server start and one warm-up instead of one per module.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from hitl_core.store import Store
from tests.e2e.ui import ARTIFACTS, TIMEOUT_MS, UPLOAD_LIMIT_MB, App, loan_project, new_page
from tests.support.server import launch_chromium, streamlit_server

expect.set_options(timeout=TIMEOUT_MS)  # a busy 2-core box: a rerun can take seconds, a first load tens


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome on the test item, so the page fixture can keep evidence of a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="package")  # torn down after tests/e2e: a live sync Playwright blocks any later one
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = new_page(browser)
    yield page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:  # keep what the browser showed when the test failed
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - evidence is best effort, the failure itself is reported anyway
            pass
    page.context.close()


@pytest.fixture(scope="package")  # one server and worker for the e2e tests, stopped when they are done
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The shared app: its own database with one trained project, a server and a retrain worker."""
    folder = tmp_path_factory.mktemp("e2e-app")
    database_url = f"sqlite:///{folder / 'hitl.db'}"
    store = Store(database_url)
    loan_project(store, "Loan approvals (e2e)")  # the app finds a project: no demo training on first load
    env = {"HITL_DATABASE_URL": database_url, "HITL_DATA_DIR": str(folder),
           "HITL_MAX_UPLOAD_MB": str(UPLOAD_LIMIT_MB)}
    logs = folder / "logs"
    with streamlit_server(env=env, worker=True, log_dir=logs) as url:
        yield App(url=url, database_url=database_url, store=store, logs=logs)
    store.engine.dispose()


@pytest.fixture(autouse=True)
def _server_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed test, print the tail of the module's server and worker logs (pytest shows it)."""
    yield
    failed = getattr(request.node, "report_call", None)
    if failed is None or not failed.failed or "app" not in request.fixturenames:
        return
    logs: Path = request.getfixturevalue("app").logs
    for log in sorted(logs.glob("*.log")):
        print(f"----- {log.name} (last 3,000 characters)\n{log.read_text(errors='replace')[-3000:]}")
