"""The Brief page in a real browser: what a person types into the data editors is what the new brief version holds.

AppTest cannot drive ``st.data_editor``; here chromium retypes a premortem cell, saves, and the test reads
the stored brief back: the rest of the brief is saved unchanged.
"""
from __future__ import annotations

from datetime import date

from playwright.sync_api import Page, expect

from hitl_core import actions, brief
from hitl_core.brief import Brief, PremortemItem, SafetyCheck, SmartGoal
from tests.e2e.ui import ROW_HEIGHT, App, settle

CELL_X = 60  # inside the first column of an editor without an index (past the row-marker column)


def _editor(page: Page, first_header: str):
    """The data editor (inside the Edit tab's form) whose first column header is ``first_header``."""
    return page.get_by_test_id("stForm").get_by_test_id("stDataFrame").filter(
        has=page.locator("table[role=grid] th", has_text=first_header))


def _retype_cell(page: Page, editor, column_x: int, text: str) -> None:
    """Select the first row's cell at ``column_x``, open its editor, replace its text and commit it."""
    editor.locator("canvas").first.scroll_into_view_if_needed()
    cell = page.locator("textarea.gdg-input")  # glide-data-grid's overlay editor for a text cell
    for _ in range(5):  # a busy machine may still be drawing the grid when the first double-click lands
        if not cell.is_visible():
            editor.dblclick(position={"x": column_x, "y": ROW_HEIGHT + ROW_HEIGHT // 2})
        try:
            expect(cell).to_be_visible(timeout=3000)
            break
        except AssertionError:
            continue
    expect(cell).to_be_visible()
    cell.fill(text)
    cell.press("Enter")
    expect(cell).to_be_hidden()  # committed to the grid
    page.wait_for_timeout(500)  # the grid hands the edit to the form's widget state


def test_edits_in_the_tables_are_saved_as_a_new_brief_version(app: App, page: Page):
    project = app.new_project("Brief (e2e)")
    start = Brief(goal=SmartGoal("balanced_accuracy", 0.8, date(2027, 3, 1)),
                  premortem=(PremortemItem("labels drift", "weekly audit"),),
                  checks=(SafetyCheck("floor", "metric", metric="accuracy", value=0.5),))
    actions.save_brief(app.store, project.id, "lea", start)
    page.goto(app.link("brief", project=project.id))
    expect(page.get_by_role("heading", name="Brief", exact=True)).to_be_visible()
    settle(page)
    page.get_by_role("tab", name="Edit").click()
    premortem = _editor(page, "it failed because")
    expect(premortem).to_be_visible()
    _retype_cell(page, premortem, CELL_X, "nobody reads the queue")
    page.get_by_role("button", name="Save as brief v2").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Saved brief v2")).to_be_visible()
    settle(page)
    saved = brief.current_brief(app.store, project.id)
    assert saved.premortem == (PremortemItem("nobody reads the queue", "weekly audit"),)
    assert saved.checks == start.checks and saved.goal == start.goal
    assert [(v, who) for v, who, _, _ in app.store.briefs(project.id)][-1][0] == 2
