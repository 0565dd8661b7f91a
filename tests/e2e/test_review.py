"""The Review page in a real browser: the row you see is the row that is saved, ticks belong to the rows
ticked, the page says exactly what changed, and a worker's new version shows up by itself.

Each test works on its own project (created through hitl_core.actions, policy "on demand" unless the
test is about retraining) and checks the database, not only the page.
"""
from __future__ import annotations

import json
import re
import statistics
import time

import pandas as pd
from playwright.sync_api import Browser, Page, expect

from hitl_core import actions
from hitl_core.records import DecisionRequest
from tests.e2e.ui import (
    ARTIFACTS, App, LaggingBrowser, accept_button, accept_selected_button, choose_label, expect_open_row, expect_said,
    message_of, new_page, open_page, open_review, open_row, other_label, panel_prediction, panel_row, pick_row,
    pool_table, save_button, set_name, settle, shot, show_view, table_rows, tick, ticked_keys, wait_until,
)

LATENCY_CLICKS = 10


def _wait_for_other_row(page: Page, old: str) -> str:
    expect(panel_row(page)).not_to_have_text(f"Row {old}")
    settle(page)
    return open_row(page)


def _decisions(app: App, project_id: int) -> pd.DataFrame:
    return app.store.decisions(project_id)


def test_save_stores_the_row_the_panel_shows_when_the_view_changes_under_it(app: App, page: Page):
    project = app.new_project()
    classes = list(project.schema.classes)
    first = open_review(page, app, project)
    page.get_by_role("button", name="Next row").click()
    opened = _wait_for_other_row(page, first)  # a row opened by hand, not the view's first

    # another view that does not hold the open row (it is unlabeled, so it disagrees with nothing)
    show_view(page, "Disagreements")
    shown = _wait_for_other_row(page, opened)
    assert shown not in {first, opened}
    label = other_label(classes, panel_prediction(page))
    choose_label(page, label)
    save_button(page).click()
    expect(panel_row(page)).not_to_have_text(f"Row {shown}")  # the save is done and the next row opened
    decisions = _decisions(app, project.id)
    assert decisions["row_key"].tolist() == [shown], "the decision belongs to the row the panel showed"
    assert decisions["new_label"].tolist() == [label]
    expect_said(page, message_of(app.store, project, decisions.iloc[0]))


def test_save_stores_the_open_row_after_it_left_the_view(app: App, page: Page):
    """Lowering the threshold takes the open row out of *Needs review*; Save still stores that row."""
    project = app.new_project()
    classes = list(project.schema.classes)
    open_review(page, app, project)
    show_view(page, "Needs review")
    page.get_by_test_id("stSelectbox").filter(has_text="Sort").click()
    page.get_by_role("option", name="Most confident first").click()

    def most_confident_first():
        rows = table_rows(pool_table(page))
        confidence = [float(r["confidence"]) for r in rows]
        return rows if len(rows) > 1 and confidence == sorted(confidence, reverse=True) else None

    top = wait_until(most_confident_first, "the table is sorted by confidence, highest first")[0]
    assert float(top["confidence"]) < 0.70
    settle(page)
    key = top["application_id"]  # the most confident row under the 0.70 threshold: 0.69-something
    pick_row(page, key)
    page.get_by_role("slider", name=re.compile("^Confidence threshold")).press("ArrowLeft")  # 0.70 → 0.69
    expect(page.get_by_text(re.compile(r"not in the current view \(Needs review and filters\)"))).to_be_visible()
    expect_open_row(page, key)
    settle(page)

    label = other_label(classes, panel_prediction(page))
    choose_label(page, label)
    save_button(page).click()
    expect(panel_row(page)).not_to_have_text(f"Row {key}")
    decisions = _decisions(app, project.id)
    assert decisions["row_key"].tolist() == [key]
    assert decisions["new_label"].tolist() == [label]
    assert app.store.project(project.id).threshold == 0.69
    expect_said(page, message_of(app.store, project, decisions.iloc[0]))


def test_accepting_ticked_rows_decides_exactly_those_and_clears_the_ticks(app: App, page: Page):
    project = app.new_project()
    open_review(page, app, project)
    tick(pool_table(page), 0)
    expect(page.get_by_role("button", name="Accept 1 selected prediction(s)")).to_be_enabled()
    settle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Sort").click()  # the rows move under the tick
    page.get_by_role("option", name="Row ID").click()
    expect(page.get_by_role("button", name="Accept 0 selected prediction(s)")).to_be_disabled()
    settle(page)
    assert ticked_keys(pool_table(page)) == [], "a tick stays with its row, never with a position"

    table = pool_table(page)
    for count, position in enumerate((0, 2, 3), start=1):
        tick(table, position)
        expect(page.get_by_role("button", name=f"Accept {count} selected prediction(s)")).to_be_enabled()
        settle(page)
    drawn = table_rows(table)
    ticked = table_rows(table, selected_only=True)
    assert [r["application_id"] for r in ticked] == [drawn[p]["application_id"] for p in (0, 2, 3)]
    expect_open_row(page, ticked[-1]["application_id"])  # the row ticked last opens below

    accept_selected_button(page).click()
    expect_said(page, "Saved 3 decision(s).")
    decisions = _decisions(app, project.id)
    assert sorted(decisions["row_key"]) == sorted(r["application_id"] for r in ticked)
    predicted = {r["application_id"]: r["predicted"] for r in ticked}
    assert dict(zip(decisions["row_key"], decisions["new_label"])) == predicted
    assert set(decisions["action"]) == {"accept"}

    settle(page)
    expect(page.get_by_role("button", name="Accept 0 selected prediction(s)")).to_be_disabled()
    assert ticked_keys(pool_table(page)) == []

    show_view(page, "Reviewed")
    expect(page.get_by_role("radiogroup", name="Show")).to_contain_text("3 rows")
    settle(page)
    reviewed = pool_table(page)
    expect(reviewed.locator("tbody tr")).to_have_count(3)
    page.wait_for_timeout(1000)  # a tick restored by the frontend would arrive with the table's next paint
    assert sorted(r["application_id"] for r in table_rows(reviewed)) == sorted(decisions["row_key"])
    assert ticked_keys(reviewed) == []
    expect(page.get_by_role("button", name="Accept 0 selected prediction(s)")).to_be_disabled()


def test_a_lagging_browser_never_reopens_the_row_just_saved(app: App, browser: Browser):
    project = app.new_project()
    page = new_page(browser)
    lagging = LaggingBrowser(page)
    panel_rows = re.compile(rb"\*\*Row (\S+?)\*\*")  # "**Row 100018** · predicted …" as the server sends it
    try:
        key = open_review(page, app, project)
        lagging.hold()
        save_button(page).click()
        wait_until(lambda: any(r != key.encode() for r in panel_rows.findall(lagging.held_bytes())),
                   "the server opened the next row (the browser has not drawn it)")
        drawn = len(panel_rows.findall(lagging.held_bytes()))
        show_view(page, "All")  # the person goes on meanwhile (the retrain line's 2 s poll does the same)
        wait_until(lambda: len(panel_rows.findall(lagging.held_bytes())) > drawn, "the server drew the view chosen")
        final = panel_rows.findall(lagging.held_bytes())[-1].decode()
        lagging.release()
        expect_open_row(page, final)
        assert _decisions(app, project.id)["row_key"].tolist() == [key]
        assert final != key, f"row {key} was just saved, yet it opened again"
    finally:
        page.context.close()


def _what_if_form(page: Page):
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Compare"))
    if not form.is_visible():
        page.get_by_text("What if? Edit this row's values and compare").click()
    expect(form).to_be_visible()
    return form


def _expect_what_if_shows(page: Page, app: App, project, key: str) -> None:
    data = app.store.load_dataset(project)
    form = _what_if_form(page)
    for feature in project.schema.features:
        value = data.frame.loc[key, feature]
        if feature in project.schema.categorical:
            expect(form.get_by_role("combobox", name=feature, exact=True)).to_have_value(str(value))
        else:
            expect(form.get_by_role("spinbutton", name=feature, exact=True)).to_have_value("%g" % value)


def test_what_if_starts_from_the_open_row(app: App, page: Page):
    project = app.new_project()
    first = open_review(page, app, project)
    _expect_what_if_shows(page, app, project, first)
    page.get_by_role("button", name="Next row").click()
    second = _wait_for_other_row(page, first)
    _expect_what_if_shows(page, app, project, second)
    data = app.store.load_dataset(project).frame
    numeric = [f for f in project.schema.features if f not in project.schema.categorical]
    assert any(data.loc[first, f] != data.loc[second, f] for f in numeric), "pick rows that differ"


def test_a_note_saved_on_review_shows_in_the_audit_trail(app: App, browser):
    project = app.new_project()
    page = new_page(browser, width=1920, height=1400)  # wide enough for every column of the audit table
    try:
        key = open_review(page, app, project)
        set_name(page, "ana-e2e")
        note = "Checked the payslip: income is right"
        page.get_by_role("textbox", name="Note (optional)").fill(note)
        save_button(page).click()
        expect(panel_row(page)).not_to_have_text(f"Row {key}")
        decisions = _decisions(app, project.id)
        assert decisions[["row_key", "user", "note"]].values.tolist() == [[key, "ana-e2e", note]]

        open_page(page, app.link("audit", project=project.id, user="ana-e2e"), "Audit trail")
        events = page.get_by_test_id("stDataFrame").first
        rows = table_rows(events)
        mine = [r for r in rows if r.get("on") == f"row {key}"]
        assert mine and mine[0]["who"] == "ana-e2e" and mine[0]["note"] == note, rows
        shot(page, "review-audit-trail")
    finally:
        page.context.close()


def test_a_conflict_is_shown_and_resolved_without_overwriting_unseen(app: App, page: Page):
    project = app.new_project()
    classes = list(project.schema.classes)
    key = open_review(page, app, project, user="bea-e2e")
    theirs = panel_prediction(page)
    actions.record_decisions(app.store, project.id, "carl-e2e", [DecisionRequest(row_key=key, new_label=theirs)])
    mine = other_label(classes, theirs)
    choose_label(page, mine)
    save_button(page).click()
    warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="Not saved")
    expect(warning).to_contain_text(f"Row {key} was changed by carl-e2e to {theirs} at ")
    expect(warning).to_contain_text(f"you saw unlabeled. Your decision was {mine}.")
    expect(page.get_by_role("button", name="Apply mine anyway")).to_be_visible()
    expect(page.get_by_role("button", name="Keep theirs")).to_be_visible()
    assert _decisions(app, project.id)["user"].tolist() == ["carl-e2e"], "nothing overwritten"
    shot(page, "review-conflict")

    page.get_by_role("button", name="Apply mine anyway").click()
    expect(warning).to_have_count(0)
    decisions = _decisions(app, project.id)
    assert decisions[["user", "old_label", "new_label"]].fillna("unlabeled").values.tolist() == [
        ["carl-e2e", "unlabeled", theirs], ["bea-e2e", theirs, mine]]
    expect_said(page, message_of(app.store, project, decisions.iloc[-1]))


def test_a_retrain_by_the_worker_shows_up_without_a_reload(app: App, page: Page):
    project = app.new_project("Loan retrain (e2e)", policy="every")
    key = open_review(page, app, project)
    expect(page.get_by_text(re.compile(r"^Model v1 ·"))).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # a reload would drop it
    choose_label(page, other_label(list(project.schema.classes), panel_prediction(page)))
    clicked = time.perf_counter()
    save_button(page).click()
    expect(page.get_by_text(re.compile(r"^Model v2 ·"))).to_be_visible()
    seconds = time.perf_counter() - clicked
    print(f"\nclick Save → 'Model v2' on the page, retrained by the worker: {seconds:.1f} s")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    assert app.store.current_version_number(project.id) == 2
    assert app.store.current_version(project.id).n_human_labels == 1
    assert _decisions(app, project.id)["row_key"].tolist() == [key]
    (ARTIFACTS / "review_retrain_latency.json").write_text(json.dumps({"click_to_v2_seconds": round(seconds, 2)}))


_SHOWN = """([old]) => {
    if (window.__clickAt === undefined) return false;
    const rows = [...document.querySelectorAll('[data-testid=stMarkdownContainer] strong')]
        .filter(e => /^Row \\S/.test(e.textContent) && !e.closest('[data-stale=true]'));
    if (rows.length !== 1 || rows[0].textContent === 'Row ' + old) return false;
    return performance.now() - window.__clickAt;
}"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_review_latency_click_to_next_row(app: App, page: Page):
    """Measured and printed (not asserted): click Accept / Save → the next row in the panel."""
    project = app.new_project()
    classes = list(project.schema.classes)
    key = open_review(page, app, project)
    samples, shown_keys = [], []
    for i in range(LATENCY_CLICKS):
        kind = "accept" if i % 2 == 0 else "save"
        if kind == "save":
            choose_label(page, other_label(classes, panel_prediction(page)))
        page.evaluate("document.addEventListener('click', () => { window.__clickAt = performance.now(); },"
                      " {capture: true, once: true}); delete window.__clickAt;")
        (accept_button(page) if kind == "accept" else save_button(page)).click()
        shown_ms = page.wait_for_function(_SHOWN, arg=[key], polling="raf").json_value()
        settle(page)
        idle_ms = page.evaluate("performance.now() - window.__clickAt")
        samples.append({"kind": kind, "row": key, "next_row_shown_ms": round(shown_ms), "idle_ms": round(idle_ms)})
        shown_keys.append(key)
        key = open_row(page)

    decisions = _decisions(app, project.id)
    assert decisions["row_key"].tolist() == shown_keys, "every click decided the row it was shown on"
    assert decisions["action"].tolist() == ["accept", "override"] * (LATENCY_CLICKS // 2)
    expect_said(page, message_of(app.store, project, decisions.iloc[-1]))

    shown = [s["next_row_shown_ms"] for s in samples]
    idle = [s["idle_ms"] for s in samples]
    summary = {
        "clicks": len(samples),
        "next_row_shown_ms": {"p50": statistics.median(shown), "p95": _percentile(shown, 0.95), "max": max(shown)},
        "page_idle_ms": {"p50": statistics.median(idle), "p95": _percentile(idle, 0.95), "max": max(idle)},
        "by_kind_p50_ms": {k: statistics.median([s["next_row_shown_ms"] for s in samples if s["kind"] == k])
                           for k in ("accept", "save")},
        "samples": samples,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "review_latency.json").write_text(json.dumps(summary, indent=2))
    print(f"\nclick → next row shown over {len(samples)} clicks: p50 {summary['next_row_shown_ms']['p50']:.0f} ms, "
          f"p95 {summary['next_row_shown_ms']['p95']:.0f} ms; page idle again: p50 "
          f"{summary['page_idle_ms']['p50']:.0f} ms, p95 {summary['page_idle_ms']['p95']:.0f} ms")
    shot(page, "review-after-decisions")
