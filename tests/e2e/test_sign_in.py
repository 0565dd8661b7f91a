"""Sign-in in a real browser: a link to a page, opened before signing in, lands on that page after it.

Its own server and database: one account switches the whole app to sign-in, which the shared e2e app must not be.
"""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from hitl_core import actions
from hitl_core.store import Store
from tests.e2e.ui import loan_project, new_page
from tests.support.server import streamlit_server


def test_a_deep_link_opened_before_sign_in_lands_on_its_page_after_it(tmp_path: Path, browser: Browser) -> None:
    database_url = f"sqlite:///{tmp_path / 'hitl.db'}"
    store = Store(database_url)
    loan_project(store, "Loan approvals (sign-in)")
    actions.add_user(store, "local", name="root", role="admin", password="root password")
    actions.add_user(store, "root", name="ann", role="annotator", password="ann password")
    store.engine.dispose()
    env = {"HITL_DATABASE_URL": database_url, "HITL_DATA_DIR": str(tmp_path)}
    with streamlit_server(env=env, log_dir=tmp_path / "logs") as url:
        page = new_page(browser)
        page.goto(f"{url}/review")
        expect(page.get_by_role("heading", name="Sign in to HITL Workbench")).to_be_visible()
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)  # nothing of the app before signing in
        page.get_by_label("Name", exact=True).fill("ann")
        page.get_by_label("Password", exact=True).fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("do not match an account")).to_be_visible()
        page.get_by_label("Password", exact=True).fill("ann password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Review predictions", exact=True)).to_be_visible()
        expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as ann · annotator")
        expect(page).to_have_url(f"{url}/review?project=1")
        page.context.close()
