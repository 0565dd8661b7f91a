"""The live workshop in real browsers: a lead and a viewer on a phone vote from their own sessions, and the shared
screen shows the count while voting and the tally beside the model after the lead reveals it.

Its own server and database: the workshop needs accounts (a viewer role), and one account switches the whole
app to sign-in, which the shared e2e app must not be.
"""
from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from hitl_core import actions
from hitl_core.store import Store
from tests.e2e.ui import ARTIFACTS, loan_project, new_page, settle, wait_until
from tests.support.server import streamlit_server

PEOPLE = {"lea": ("lead", "lea password"), "vic": ("viewer", "vic password")}


def _sign_in(page: Page, url: str, name: str) -> None:
    """Sign in on the form every session meets first, then open the Workshop page from the sidebar, as a person
    does (a deep link before signing in also works: tests/e2e/test_sign_in.py)."""
    page.goto(url)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(PEOPLE[name][1])
    page.get_by_role("button", name="Sign in").click()
    nav = page.get_by_test_id("stSidebarNav")
    expand = page.get_by_test_id("stExpandSidebarButton")
    wait_until(lambda: nav.is_visible() or expand.is_visible(), "the signed-in app is drawn")
    folded = not nav.is_visible()  # a phone: the sidebar starts folded, and stays open over the page once opened
    if folded:
        expand.click()
    more = nav.get_by_text(re.compile(r"^View \d+ more$"))
    if more.count():
        more.click()
    nav.get_by_text("Workshop", exact=True).click()
    if folded:
        page.get_by_test_id("stSidebar").hover()
        page.get_by_test_id("stSidebarCollapseButton").click()
        expect(nav).not_to_be_in_viewport()
    expect(page.get_by_role("heading", name="Workshop", exact=True)).to_be_visible()


def _picture(page: Page, name: str) -> Path:
    """The window as people see it (no stretching: the shared screen is one projector's 1280 × 720)."""
    ARTIFACTS.mkdir(exist_ok=True)
    settle(page)
    page.wait_for_timeout(1000)  # plotly draws after the script run ends
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def test_two_people_vote_and_the_shared_screen_shows_the_tally_after_the_reveal(tmp_path: Path,
                                                                               browser: Browser) -> None:
    database_url = f"sqlite:///{tmp_path / 'hitl.db'}"
    store = Store(database_url)
    project = loan_project(store, "Loan workshop (e2e)")
    actions.add_user(store, "local", name="root", role="admin", password="root password")
    for name, (role, password) in PEOPLE.items():
        actions.add_user(store, "root", name=name, role=role, password=password)
    env = {"HITL_DATABASE_URL": database_url, "HITL_DATA_DIR": str(tmp_path)}
    lead, phone, screen = (new_page(browser, width=1280, height=1000),
                           new_page(browser, width=390, height=844), new_page(browser, width=1280, height=720))
    try:
        with streamlit_server(env=env, log_dir=tmp_path / "logs") as url:
            base = f"{url}/?project={project.id}"
            _sign_in(screen, base, "lea")  # the lead's second session, on the projector
            screen.get_by_text("Shared screen (for the projector)").click()
            expect(screen).to_have_url(re.compile(r"[?&]screen=1(&|$)"))
            expect(screen.get_by_text("No row on the screen yet")).to_be_visible()
            _sign_in(lead, base, "lea")
            _sign_in(phone, base, "vic")
            expect(phone.get_by_text("Waiting for the lead")).to_be_visible()

            lead.get_by_role("button", name="Open row").click()
            opened = wait_until(lambda: store.workshop_round(project.id), "the lead's round is stored")
            expect(screen.get_by_text("0 votes so far")).to_be_visible()  # the screen follows by itself
            yes = phone.get_by_role("button", name="yes", exact=True)
            expect(yes).to_be_visible()  # the phone follows by itself too
            yes.click()
            expect(phone.get_by_text("Your vote: yes")).to_be_visible()
            expect(phone.get_by_text("Waiting for the lead to reveal the tally.")).to_be_visible()
            lead.get_by_role("button", name="no", exact=True).click()
            expect(lead.get_by_text("Your vote: no")).to_be_visible()
            expect(screen.get_by_text("2 votes so far")).to_be_visible()
            expect(screen.get_by_text("1 person says")).to_have_count(0)  # nothing of the content before the reveal
            _picture(phone, "workshop-phone")

            lead.get_by_role("button", name="Reveal the tally and the model").click()
            predicted = wait_until(lambda: store.workshop_round(project.id).predicted_label, "the reveal is stored")
            expect(screen.get_by_text(f"The 2 people are split: 1 says no, 1 says yes; the model says "
                                      f"{predicted}")).to_be_visible()
            expect(screen.locator(".js-plotly-plot")).to_have_count(1)
            expect(screen.get_by_text("What moved the model most")).to_be_visible()
            expect(phone.get_by_text("The lead has revealed the tally")).to_be_visible()
            _picture(screen, "workshop-shared-screen")
            _picture(phone, "workshop-phone-revealed")

        decisions = store.decisions(project.id)
        assert sorted(zip(decisions["user"], decisions["new_label"], decisions["kind"])) == [
            ("lea", "no", "workshop"), ("vic", "yes", "workshop")]
        assert set(decisions["row_key"]) == {opened.row_key}
    except Exception:
        for name, page in (("lead", lead), ("phone", phone), ("screen", screen)):  # what each browser showed
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"failed-workshop-{name}.png"))
        raise
    finally:
        for page in (lead, phone, screen):
            page.context.close()
        store.engine.dispose()
