"""Projects, names and files in a real browser: the address keeps the project and the reviewer's name, a
hostile project name stays text on every page, and hostile uploads get one line each while the app stays up.
"""
from __future__ import annotations

import io
import re
import urllib.request
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from playwright.sync_api import Browser, Page, expect

from hitl_core.data import DataError, read_table
from tests.e2e.ui import (
    UPLOAD_LIMIT_MB, App, errors, new_page, open_page, open_review, set_name, settle, shot, sidebar_project,
    tracebacks, visible_text, your_name,
)

HOSTILE_NAME = '[click](http://evil.example) **bold** <a href="http://evil.example">x</a>'
PAGES = {"data": "Data", "review": "Review predictions", "metrics": "Metrics", "audit": "Audit trail"}


def _current_project_heading(page: Page):
    return page.get_by_role("heading", name=re.compile(r"^Current project: "))


def _expect_sidebar_project(page: Page, project_id: int, name: str) -> None:
    expect(sidebar_project(page)).to_have_value(f"#{project_id} · {name}")  # plain text: shown as typed


# --------------------------------------------------------------------------- the address
def test_reload_keeps_the_project_and_the_name_and_a_shared_link_opens_its_project(app: App, page: Page,
                                                                                    browser: Browser):
    first = app.store.projects()[0]
    second = app.new_project("Second loan project (e2e)")
    open_page(page, app.link("data", project=first.id), "Data")
    expect(_current_project_heading(page)).to_have_text(f"Current project: {first.name}")
    set_name(page, "ana-e2e")

    page.reload()
    expect(_current_project_heading(page)).to_have_text(f"Current project: {first.name}")
    _expect_sidebar_project(page, first.id, first.name)
    expect(your_name(page)).to_have_value("ana-e2e")
    assert re.search(rf"[?&]project={first.id}(&|$)", page.url) and "user=ana-e2e" in page.url

    shared = new_page(browser)  # somebody else opens a link to the second project: a new session
    try:
        open_page(shared, app.link("data", project=second.id, user="bo-e2e"), "Data")
        expect(_current_project_heading(shared)).to_have_text(f"Current project: {second.name}")
        _expect_sidebar_project(shared, second.id, second.name)
        expect(your_name(shared)).to_have_value("bo-e2e")
    finally:
        shared.context.close()


def test_switching_pages_keeps_the_project(app: App, page: Page):
    first = app.store.projects()[0]
    app.new_project("Newer loan project (e2e)")  # the first project is not the newest
    open_page(page, app.link("data", project=first.id), "Data")
    _expect_sidebar_project(page, first.id, first.name)
    page.get_by_test_id("stSidebarNav").get_by_text("Review", exact=True).click()
    expect(page.get_by_role("button", name="Save label")).to_be_visible()
    settle(page)
    # read once, no waiting: a page that settled on another project will not come back by itself
    assert sidebar_project(page).input_value() == f"#{first.id} · {first.name}"
    assert re.search(rf"[?&]project={first.id}(&|$)", page.url), page.url


# --------------------------------------------------------------------------- a hostile name
def test_a_hostile_project_name_renders_as_text_on_every_page(app: App, page: Page):
    project = app.new_project(HOSTILE_NAME)
    for path, heading in PAGES.items():
        if path == "review":
            open_review(page, app, project)
        else:
            open_page(page, app.link(path, project=project.id), heading)
        settle(page)
        _expect_sidebar_project(page, project.id, HOSTILE_NAME)
        expect(page.locator('a[href*="evil.example"]')).to_have_count(0)
        expect(page.locator("strong, b").filter(has_text=re.compile(r"^bold$"))).to_have_count(0)
        expect(page.locator("[data-testid=stMain]")).not_to_contain_text("\\[")  # no escape left showing
        expect(tracebacks(page)).to_have_count(0)
        if path == "":
            assert visible_text(_current_project_heading(page)) == f"Current project: {HOSTILE_NAME}"
            shot(page, "data-hostile-name")
        if path == "audit":
            assert f"Project {HOSTILE_NAME} · every decision" in visible_text(page.locator("[data-testid=stMain]"))


# --------------------------------------------------------------------------- hostile files
def _nested_parquet() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3], "tags": [[1, 2], [3], []], "label": ["a", "b", "a"]}), buffer)
    return buffer.getvalue()


def _wide_csv(columns: int = 10_000, rows: int = 200) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    row = ",".join(str(i % 10) for i in range(columns))
    return (header + "\n" + "\n".join([row] * rows) + "\n").encode()


def _xlsx(sheet_xml: str) -> bytes:
    """A minimal workbook around one sheet's XML (written by hand: free to be hostile)."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rels = "http://schemas.openxmlformats.org/package/2006/relationships"
    doc = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{sheet_type}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{sheet_type}.worksheet+xml"/></Types>'),
        "_rels/.rels": (f'<Relationships xmlns="{rels}"><Relationship Id="rId1" Type="{doc}/officeDocument" '
                        'Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (f'<workbook xmlns="{main}" xmlns:r="{doc}"><sheets>'
                            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (f'<Relationships xmlns="{rels}"><Relationship Id="rId1" '
                                       f'Type="{doc}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}">{sheet_xml}</worksheet>',
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in parts.items():
            archive.writestr(member, text)
    return buffer.getvalue()


_HEADER_ROW = ('<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c>'
               '<c r="B1" t="inlineStr"><is><t>label</t></is></c></row>')
_DATA_ROWS = '<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>0</v></c></row>'

HOSTILE_FILES = {  # file name → (how to build it, what its one line must name); built when the test runs
    "dupes.csv": (lambda: b"a,a,label\n1,2,y\n3,4,n\n", "duplicate column names ['a']"),
    "nested.parquet": (_nested_parquet, "nested columns 'tags' (list)"),
    "wide.csv": (_wide_csv, "10,000 columns, above the 2,000-column limit"),
    "bomb.xlsx": (  # 16 MiB of blanks inside the sheet: ~16 KB zipped
        lambda: _xlsx('<dimension ref="A1:B2"/><sheetData>' + _HEADER_ROW + _DATA_ROWS + " " * (16 << 20)
                      + "</sheetData>"),
        f"uncompressed, above the {UPLOAD_LIMIT_MB} MiB limit"),
    "rows.xlsx": (  # a sheet that claims 1.5 million rows
        lambda: _xlsx('<dimension ref="A1:B1500001"/><sheetData>' + _HEADER_ROW + _DATA_ROWS + "</sheetData>"),
        "1,500,001 rows"),
    "garbage.parquet": (lambda: bytes(range(256)) * 40, "garbage.parquet"),
    "empty.csv": (lambda: b"", "empty"),
    "one_class.csv": (lambda: b"size,label\n1,a\n2,a\n3,a\n", "only one class ('a')"),
}


def test_hostile_uploads_get_one_line_each_and_the_app_stays_up(app: App, page: Page, tmp_path: Path):
    open_page(page, app.link("data"), "Data")
    page.get_by_role("radiogroup", name="Data source").get_by_text("Upload a file", exact=True).click()
    uploader = page.get_by_test_id("stFileUploader").locator("input[type=file]")
    expect(uploader).to_be_attached()
    for name, (build, names_the_problem) in HOSTILE_FILES.items():
        content = build()
        path = tmp_path / name
        path.write_bytes(content)
        try:  # what hitl_core says about the file, when it is the reader that refuses it
            read_table(content, name, max_bytes=UPLOAD_LIMIT_MB << 20)
            expected = None
        except DataError as exc:
            expected = str(exc)
        uploader.set_input_files(str(path))
        error = errors(page).filter(has_text=names_the_problem)
        expect(error).to_be_visible()
        expect(errors(page)).to_have_count(1)
        expect(tracebacks(page)).to_have_count(0)
        line = visible_text(error.get_by_test_id("stMarkdownContainer")).strip()
        assert "\n" not in line, f"{name}: not one line: {line!r}"
        if expected is not None:
            assert line == expected, name
        print(f"{name} ({len(content):,} bytes): {line}")
    shot(page, "data-hostile-upload")

    with urllib.request.urlopen(f"{app.url}/_stcore/health", timeout=10) as health:
        assert health.read().strip() == b"ok"
    open_review(page, app, app.store.projects()[0])  # still serving the project
    expect(tracebacks(page)).to_have_count(0)
