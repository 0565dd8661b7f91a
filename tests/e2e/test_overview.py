"""The Overview at projector size (1280×720), and its model card opened in a browser with no network."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from hitl_core import report
from tests.e2e.ui import (
    ARTIFACTS, WORD_JOINER, App, loan_project, new_page, settle, shot, tracebacks, visible_text,
)

HOSTILE = '<script>window.pwned = 1</script> [click](http://evil.example)'


def test_overview_fits_a_projector_and_its_card_opens_offline_with_the_name_as_text(app: App, browser: Browser,
                                                                                       tmp_path: Path):
    project = loan_project(app.store, HOSTILE)
    page: Page = new_page(browser, width=1280, height=720)
    try:
        shown = HOSTILE.replace("http:", f"http{WORD_JOINER}:")  # md_escape stops the autolink, invisibly
        page.goto(app.link(project=project.id))  # the default page; at 720 px the sidebar folds some page links
        expect(page.get_by_role("heading", name=f"Overview: {shown}", exact=True)).to_be_visible()
        expect(page.get_by_text("held-out rows it never trained on", exact=False)).to_be_visible()
        expect(page.locator(".js-plotly-plot")).to_have_count(3)
        settle(page)
        assert tracebacks(page).count() == 0
        overflow = page.evaluate("""() => { const m = document.querySelector('[data-testid=stMain]');
            return m.scrollWidth - m.clientWidth; }""")
        assert overflow <= 0, f"the Overview scrolls sideways by {overflow}px at 1280×720"
        shot(page, "overview-1280x720-full")  # the whole page, stretched to its height
        page.screenshot(path=str(ARTIFACTS / "overview-1280x720.png"))  # what the room sees first

        with page.expect_download() as download:
            page.get_by_role("button", name="Model card (HTML, opens offline)").click()
        card = tmp_path / "card.html"
        download.value.save_as(card)
    finally:
        page.context.close()

    offline = browser.new_context(viewport={"width": 1280, "height": 720}, offline=True)
    try:
        reader = offline.new_page()
        requests: list[str] = []
        reader.on("request", lambda r: requests.append(r.url) if not r.url.startswith("file:") else None)
        reader.goto(card.as_uri())
        expect(reader.get_by_role("heading", level=1)).to_have_text(f"Model card: {HOSTILE}")
        for title in report.SECTION_TITLES:
            expect(reader.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(reader.locator(".js-plotly-plot .main-svg").first).to_be_visible()  # plotly.js ran, from the file
        assert reader.evaluate("() => window.pwned") is None
        assert reader.locator("a[href*='evil.example']").count() == 0
        assert "[click](http://evil.example)" in visible_text(reader.get_by_role("heading", level=1))
        assert requests == [], f"the card asked the network for {requests}"
    finally:
        offline.close()
