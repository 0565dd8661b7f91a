"""What the browser tests do on the pages, in the words of the pages: open, wait for an element, read back.

Waits are on elements of the app (a heading, a button, the row in the decision panel), never on page
load: Streamlit renders over a websocket after the load event, in 3-6 s on a busy 2-core machine.
"""
from __future__ import annotations

import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Browser, Locator, Page, expect

from hitl_core import actions
from hitl_core.data import check
from hitl_core.records import Project
from hitl_core.samples import load_sample
from hitl_core.store import Store
from tests.support.server import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"
TIMEOUT_MS = int(os.environ.get("HITL_E2E_TIMEOUT_MS", "120000"))  # generous: a busy 2-core box
UPLOAD_LIMIT_MB = 5  # HITL_MAX_UPLOAD_MB of the test app: small enough for a cheap zip bomb to cross it
WORD_JOINER = "\u2060"  # md_escape puts one inside "http://" so Markdown cannot autolink it; invisible


# --------------------------------------------------------------------------- the app under test
@dataclass
class App:
    url: str
    database_url: str
    store: Store
    logs: Path

    def link(self, page: str = "", **params: object) -> str:
        """``/review?project=3&user=ana``-style address of a page ("" = the default page, Overview)."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return f"{self.url}/{page}" + (f"?{query}" if query else "")

    def new_project(self, name: str = "Loan review (e2e)", *, policy: str = "manual") -> Project:
        return loan_project(self.store, name, policy=policy)


def loan_project(store: Store, name: str, *, policy: str = "manual") -> Project:
    """The bundled loan sample as a project, trained (v1), through the write path like the Data page does.

    ``manual`` by default: no retrain is queued by a decision, so a worker never redraws a page under a test.
    """
    sample = load_sample("loan")
    schema, _ = check(sample.frame, sample.target, id_column=sample.id_column, sensitive=sample.sensitive,
                      pii=sample.pii, favourable=sample.favourable)
    project, _ = actions.create_project(store, "e2e-setup", name=name, source=f"sample:{sample.name}",
                                        frame=sample.frame, schema=schema, model_kind="logreg",
                                        retrain_policy=policy)
    return project


def given_labels(store: Store, project: Project) -> pd.Series:
    return store.pool_rows(project)[1]


def saved_message(key: str, old: str | None, new: str, given: str | None) -> str:
    """What the Review page must say after a save, exactly (README: "Changed row 8: yes → no (given: yes)")."""
    given_text = "unlabeled" if given is None or pd.isna(given) else given
    if old == new:
        return f"Confirmed row {key}: {new} (given: {given_text})."
    verb = "Labelled" if old is None else "Changed"
    return f"{verb} row {key}: {'unlabeled' if old is None else old} → {new} (given: {given_text})."


def message_of(store: Store, project: Project, decision: pd.Series) -> str:
    """The message a stored decision must have been announced with."""
    old = None if pd.isna(decision["old_label"]) else decision["old_label"]
    return saved_message(decision["row_key"], old, decision["new_label"],
                         given_labels(store, project).get(decision["row_key"]))


# --------------------------------------------------------------------------- any page
def new_page(browser: Browser, *, width: int = 1440, height: int = 1800) -> Page:
    """A fresh browser context (cookies, storage: a new Streamlit session) with one page."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def visible_text(locator: Locator) -> str:
    """Text as a person reads it: the invisible word joiner md_escape adds to URLs removed."""
    return locator.inner_text().replace(WORD_JOINER, "")


def wait_until(condition, what: str, *, timeout_ms: int | None = None, every_ms: int = 200):
    """Poll ``condition()`` until it returns something truthy (returned); fail after the timeout saying ``what``."""
    deadline = time.monotonic() + (timeout_ms or TIMEOUT_MS) / 1000
    while True:
        try:
            value = condition()
        except (AssertionError, PlaywrightError):  # an element redrawn under us: look again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(every_ms / 1000)


def settle(page: Page) -> None:
    """The script run (or fragment run) that the last action started has finished."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def open_page(page: Page, url: str, heading: str) -> None:
    """Open ``url`` and wait until the page's title and the frame's sidebar (app.py ran) are drawn."""
    page.goto(url)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    # the sidebar lists the first ten pages and folds the rest under "View more"
    expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Review")
    expect(sidebar_project(page)).to_be_visible()


def sidebar_project(page: Page) -> Locator:
    """The sidebar's project picker; its value is the selected "#ID · name"."""
    return page.get_by_test_id("stSidebar").get_by_role("combobox", name="Project")


def your_name(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Your name")


def set_name(page: Page, name: str) -> None:
    """Type a name in the sidebar and commit it (Enter), as a person does; it lands in the address."""
    box = your_name(page)
    box.fill(name)
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]user=" + re.escape(urllib.parse.quote_plus(name)) + r"(&|$)"))


class LaggingBrowser:
    """Holds back what the server sends to ``page`` while holding: a browser that has not drawn the last runs yet
    (a busy machine or a slow network), whose clicks still go out at once. Install before the page is opened."""

    def __init__(self, page: Page):
        self.page = page
        self.holding = False
        self.held: list[tuple[object, str | bytes]] = []
        page.route_web_socket(re.compile(r"/_stcore/stream$"), self._route)

    def _route(self, ws) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda message: self.held.append((ws, message)) if self.holding else ws.send(message))

    def hold(self) -> None:
        self.holding = True

    def held_bytes(self) -> bytes:
        """What the server sent meanwhile, as raw bytes (protobuf keeps rendered text verbatim)."""
        self.page.wait_for_timeout(50)  # the sync API takes in websocket messages only inside its own calls
        return b"".join(m.encode() if isinstance(m, str) else m for _, m in self.held)

    def release(self) -> None:
        """Deliver everything held, in order (messages arriving meanwhile queue behind), then stop holding."""
        while self.held:
            ws, message = self.held.pop(0)
            ws.send(message)
        self.holding = False


def errors(page: Page) -> Locator:
    return page.get_by_test_id("stAlertContentError")


def tracebacks(page: Page) -> Locator:
    return page.get_by_test_id("stException")


def shot(page: Page, name: str, *, pause_ms: int = 1000) -> Path:
    """A screenshot of the whole page in test-artifacts/ once tables and plotly charts have drawn.

    Streamlit scrolls inside its main section, not the document, so a "full page" screenshot would
    stop at the window: the window is stretched to the content's height for the picture.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    settle(page)
    viewport = page.viewport_size
    height = page.evaluate("""() => Math.max(...['stMain', 'stSidebarContent'].map(id => {
        const e = document.querySelector(`[data-testid=${id}]`);
        return e ? e.scrollHeight : 0;
    }))""")
    if viewport and height > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": min(int(height) + 40, 12_000)})
    page.wait_for_timeout(pause_ms)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if viewport:
        page.set_viewport_size(viewport)
    return path


# --------------------------------------------------------------------------- the Review page
ROW_HEIGHT = 35  # px per table row in st.dataframe (glide-data-grid); the header is row 0
TICK_X = 15  # the row-marker column (tick boxes) of a table with row selection


def open_review(page: Page, app: App, project: Project, *, user: str | None = None) -> str:
    """Open the Review page of ``project`` (a new session when the page is new); return the open row's key."""
    open_page(page, app.link("review", project=project.id, user=user), "Review predictions")
    expect(save_button(page)).to_be_visible()
    settle(page)
    return open_row(page)


def panel_row(page: Page) -> Locator:
    """"**Row 100018** · predicted …" at the top of the decision panel."""
    return page.locator("[data-testid=stMarkdownContainer] strong").filter(has_text=re.compile(r"^Row \S"))


def open_row(page: Page) -> str:
    expect(panel_row(page)).to_have_count(1)
    return panel_row(page).inner_text().removeprefix("Row ").strip()


def expect_open_row(page: Page, key: str) -> None:
    expect(panel_row(page)).to_have_text(f"Row {key}")


def save_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Save label")


def accept_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Accept prediction")


def accept_selected_button(page: Page) -> Locator:
    return page.get_by_role("button", name=re.compile(r"^Accept \d+ selected prediction"))


def choose_label(page: Page, label: str) -> None:
    page.get_by_role("radiogroup", name="Correct label").get_by_text(label, exact=True).click()


def panel_prediction(page: Page) -> str:
    """The predicted class the panel shows for the open row ("… · predicted **no** · …")."""
    line = page.locator("[data-testid=stMarkdownContainer] p").filter(
        has=page.locator("strong").filter(has_text=re.compile(r"^Row \S")))
    return line.locator("strong").nth(1).inner_text()


def other_label(labels: list[str], label: str) -> str:
    return next(c for c in labels if c != label)


def pick_row(page: Page, key: str) -> None:
    """Open a row with the "Row to decide on" picker, typing its key as a person would."""
    page.get_by_test_id("stSelectbox").filter(has_text="Row to decide on").click()
    page.keyboard.type(key)
    page.get_by_role("option", name=key, exact=True).click()
    expect_open_row(page, key)
    settle(page)


def show_view(page: Page, view: str) -> None:
    page.get_by_role("radiogroup", name="Show").get_by_text(view, exact=True).click()


def expect_said(page: Page, text: str) -> None:
    """A success message on the page says exactly ``text``, nothing more."""
    said = page.get_by_test_id("stAlertContentSuccess").get_by_test_id("stMarkdownContainer").filter(has_text=text)
    expect(said).to_have_text(text)


def pool_table(page: Page) -> Locator:
    """The review table (the panel's tables have no "why asked" column)."""
    return page.get_by_test_id("stDataFrame").filter(has=page.locator("table[role=grid] th", has_text="why asked"))


def tick(table: Locator, position: int) -> None:
    """Tick the row at ``position`` (0 = first data row) in the table's row-marker column."""
    table.locator("canvas").first.scroll_into_view_if_needed()
    table.click(position={"x": TICK_X, "y": (position + 1) * ROW_HEIGHT + ROW_HEIGHT // 2})


def table_rows(table: Locator, *, selected_only: bool = False) -> list[dict[str, str]]:
    """The rows the grid draws, read from its accessible DOM table (the canvas has no text): cells by header."""
    read = """(element, selectedOnly) => {
        const grid = element.querySelector('table[role=grid]');
        if (!grid) return null;  // the grid is being redrawn
        const headers = [...grid.querySelectorAll('thead th')].map(th => th.textContent);
        return [...grid.querySelectorAll('tbody tr')]
            .filter(tr => !selectedOnly || tr.getAttribute('aria-selected') === 'true')
            .map(tr => Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [headers[i], td.textContent])));
    }"""
    def drawn():
        rows = table.evaluate(read, selected_only) if table.count() == 1 else None
        return None if rows is None else (rows,)

    return wait_until(drawn, "the table is drawn", every_ms=100)[0]


def ticked_keys(table: Locator, index_name: str = "application_id") -> list[str]:
    return [row[index_name] for row in table_rows(table, selected_only=True)]


def metric(page: Page, label: str) -> Locator:
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")
