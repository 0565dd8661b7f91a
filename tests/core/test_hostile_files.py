"""Hostile files are refused before they are loaded, with one line that says what to fix.

Each file is generated here. Slow-to-build sizes are scaled down and read with lowered limits;
the cheap real ones (a 4 MB CSV with 10,000 columns, a 0.5 MB Parquet of 60 million rows, a
workbook whose zip or dimension claims too much) also go through ``python -m hitl_core check``
with the default limits.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hitl_core.config import Settings
from hitl_core.data import MAX_CELLS, MAX_COLUMNS, MAX_XLSX_CELLS, DataError, read_table

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# --------------------------------------------------------------------------- building hostile files
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
    "_rels/.rels": (f'<Relationships xmlns="{_RELS}"><Relationship Id="rId1" Type="{_DOC}/officeDocument" '
                    'Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC}"><sheets>'
                        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
}


def _column_letters(index: int) -> str:
    letters, index = "", index + 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _xlsx(
    header: list[str],
    n_rows: int,
    *,
    dimension: str | None = "auto",
    data_row: str | None = None,
    padding: int = 0,
    shared_texts: int = 0,
    declared_sheet_size: int | None = None,
) -> bytes:
    """A workbook written by hand (fast, and free to lie): an inline-text header, then numeric rows.

    ``dimension`` is the sheet's ``<dimension ref>`` ("auto": the true one, None: none);
    ``data_row`` replaces every data row's XML; ``padding`` adds blanks inside the sheet (a zip
    bomb); ``shared_texts`` adds that many distinct shared texts; ``declared_sheet_size`` makes
    the zip directory claim the sheet unzips to that many bytes.
    """
    letters = [_column_letters(j) for j in range(len(header))]
    if dimension == "auto":
        dimension = f"A1:{letters[-1]}{n_rows + 1}"
    rows = ['<row r="1">' + "".join(f'<c r="{letters[j]}1" t="inlineStr"><is><t>{name}</t></is></c>'
                                    for j, name in enumerate(header)) + "</row>"]
    for r in range(2, n_rows + 2):
        rows.append(data_row if data_row is not None else
                    f'<row r="{r}">' + "".join(f'<c r="{letter}{r}"><v>{(r + j) % 7}</v></c>'
                                               for j, letter in enumerate(letters)) + "</row>")
    sheet = (f'<worksheet xmlns="{_MAIN}">' + (f'<dimension ref="{dimension}"/>' if dimension else "")
             + "<sheetData>" + "".join(rows) + " " * padding + "</sheetData></worksheet>")
    relations = f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
    parts = dict(_XLSX_PARTS, **{"xl/worksheets/sheet1.xml": sheet})
    if shared_texts:
        relations += f'<Relationship Id="rId2" Type="{_DOC}/sharedStrings" Target="sharedStrings.xml"/>'
        parts["xl/sharedStrings.xml"] = (f'<sst xmlns="{_MAIN}">'
                                         + "".join(f"<si><t>text {i}</t></si>" for i in range(shared_texts)) + "</sst>")
    parts["xl/_rels/workbook.xml.rels"] = f'<Relationships xmlns="{_RELS}">{relations}</Relationships>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in parts.items():
            archive.writestr(member, text)
            if member.endswith("sheet1.xml") and declared_sheet_size is not None:
                archive.filelist[-1].file_size = declared_sheet_size  # the central directory lies
    return buffer.getvalue()


def _xlsx_by_openpyxl(rows: list[list[object]]) -> bytes:
    """A workbook as Excel-like tools write it."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _parquet(table: pa.Table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def _constant_rows(n_rows: int) -> pa.Table:
    """Two constant int8 columns: millions of rows compress to almost nothing."""
    zeros = pa.array(np.zeros(n_rows, dtype=np.int8))
    return pa.table({"x": zeros, "label": zeros})


def _nested() -> pa.Table:
    return pa.table({
        "id": [1, 2, 3],
        "tags": [[1, 2], [3], []],
        "point": [{"x": 1, "y": 2}] * 3,
        "attrs": pa.array([[("a", 1)], [("b", 2)], []], type=pa.map_(pa.string(), pa.int64())),
        "label": ["a", "b", "a"],
    })


def _csv_with_10000_columns() -> bytes:
    """The real one: 4 MB, 10,000 columns, 200 rows."""
    header = ",".join(f"c{i}" for i in range(10_000))
    row = ",".join(str(i % 10) for i in range(10_000))
    return (header + "\n" + "\n".join([row] * 200) + "\n").encode()


@dataclass(frozen=True)
class Hostile:
    """A generated file, the limits it is read with, and what the refusal must say."""

    filename: str
    build: Callable[[], bytes]
    match: str
    limits: dict[str, int] = field(default_factory=dict)


HOSTILE = {
    # CSV
    "csv_with_10000_columns": Hostile(
        "wide.csv", _csv_with_10000_columns, r"'wide\.csv' has 10,000 columns, above the 2,000-column limit"),
    "csv_past_the_cell_limit": Hostile(
        "long.csv", lambda: b"a,b,c,d,label\n" + b"1,2,3,4,y\n" * 1_000,
        r"has about 1,000 rows × 5 columns \(5,000 cells\), above the 4,000-cell limit", {"max_cells": 4_000}),
    "csv_with_duplicate_headers": Hostile(
        "dupes.csv", lambda: b"a,a,label\n" + b"1,2,y\n3,4,n\n", r"duplicate column names \['a'\]"),
    "csv_above_the_size_limit": Hostile(
        "big.csv", lambda: b"a,label\n" + b"1,y\n" * (3 * MIB // 4), r"is 3\.0 MiB, above the 2 MiB limit",
        {"max_bytes": 2 * MIB}),
    # Parquet
    "parquet_that_expands_past_the_cell_limit": Hostile(
        "expands.parquet", lambda: _parquet(_constant_rows(200_000)),
        r"has 200,000 rows × 2 columns \(400,000 cells\), above the 100,000-cell limit", {"max_cells": 100_000}),
    "parquet_with_nested_columns": Hostile(
        "nested.parquet", lambda: _parquet(_nested()),
        r"nested columns 'tags' \(list\), 'point' \(struct\), 'attrs' \(map\); .*flatten"),
    "parquet_with_duplicate_column_names": Hostile(
        "dupes.parquet", lambda: _parquet(pa.Table.from_arrays(
            [pa.array([1, 2]), pa.array([3, 4]), pa.array(["y", "n"])], names=["a", "a", "label"])),
        r"duplicate column names \['a'\]"),
    "parquet_past_the_column_limit": Hostile(
        "wide.parquet", lambda: _parquet(pa.table({f"c{i}": [1, 2] for i in range(50)})),
        r"has 50 columns, above the 20-column limit", {"max_columns": 20}),
    "parquet_whose_pages_uncompress_past_the_size_limit": Hostile(
        "pages.parquet", lambda: _parquet(pa.table({"text": [f"{i:06d}" + "x" * 200 for i in range(10_000)],
                                                    "label": [i % 2 for i in range(10_000)]}),
                                          use_dictionary=False, compression="zstd"),
        r"MiB uncompressed, above the 1 MiB limit", {"max_bytes": MIB}),
    "parquet_whose_dictionary_text_decodes_past_the_size_limit": Hostile(
        "text.parquet", lambda: _parquet(pa.table({  # 50,000 copies of one 1,000-character text: 50 KB stored
            "text": pa.array(["x" * 1_000]).take(pa.array(np.zeros(50_000, np.int32))),
            "label": pa.array(np.zeros(50_000, np.int8))})),
        r"MiB or more of text once decoded, above the 8 MiB limit", {"max_bytes": 8 * MIB}),
    # xlsx
    "xlsx_with_duplicate_headers": Hostile(
        "dupes.xlsx", lambda: _xlsx_by_openpyxl([["a", "a", "label"], [1, 2, "y"], [3, 4, "n"]]),
        r"duplicate column names \['a'\]"),
    "xlsx_that_unzips_past_the_size_limit": Hostile(
        "bomb.xlsx", lambda: _xlsx(["a", "label"], 3, padding=3 * MIB),
        r"is 3\.0 MiB uncompressed, above the 1 MiB limit", {"max_bytes": MIB}),
    "xlsx_whose_zip_declares_a_huge_sheet": Hostile(
        "declared.xlsx", lambda: _xlsx(["a", "label"], 3, declared_sheet_size=300 * MIB),
        r"is 300\.0 MiB uncompressed, above the 200 MiB limit", {"max_bytes": 200 * MIB}),
    "xlsx_whose_dimension_declares_too_many_cells": Hostile(
        "rows.xlsx", lambda: _xlsx(["id", "x", "label"], 3, dimension="A1:C1500001"),
        r"declares 1,500,001 rows × 3 columns \(4,500,003 cells\), above the 1,000,000-cell limit for \.xlsx; "
        r"save it as CSV or Parquet"),
    "xlsx_whose_dimension_declares_too_many_columns": Hostile(
        "columns.xlsx", lambda: _xlsx(["a", "label"], 3, dimension="A1:XFD4"),
        r"declares 16,384 columns, above the 2,000-column limit"),
    "xlsx_without_a_dimension_past_the_cell_limit": Hostile(
        "nodim.xlsx", lambda: _xlsx(["id", "x", "label"], 2_000, dimension=None),
        r"holds more than 3,000 cells, above the 3,000-cell limit for \.xlsx", {"max_xlsx_cells": 3_000}),
    "xlsx_whose_dimension_understates_its_rows": Hostile(
        "liar.xlsx", lambda: _xlsx(["id", "x", "label"], 2_000, dimension="A1:C3"),
        r"holds more than 3,000 cells", {"max_xlsx_cells": 3_000}),
    "xlsx_with_one_data_row_wider_than_the_limit": Hostile(
        "widerow.xlsx", lambda: _xlsx(["a", "label"], 1, dimension=None,
                                      data_row='<row r="2">' + "<c><v>1</v></c>" * 5_000 + "</row>"),
        r"holds more than 3,000 cells", {"max_xlsx_cells": 3_000}),
    "xlsx_with_more_shared_texts_than_the_cell_limit": Hostile(
        "texts.xlsx", lambda: _xlsx(["a", "label"], 2, shared_texts=5_000),
        r"holds more than 3,000 distinct texts", {"max_xlsx_cells": 3_000}),
    "xlsx_whose_cells_escape_the_count_is_cut_off_while_streaming": Hostile(
        # '<c\n' is valid XML the byte count does not see; the row cap while reading still holds
        "hidden.xlsx", lambda: _xlsx(["id", "x", "label"], 2_000, dimension=None,
                                     data_row='<row><c\n><v>1</v></c><c\n><v>2</v></c><c\n><v>3</v></c></row>'),
        r"has more than 1,000 rows of 3 columns, above the 3,000-cell limit for \.xlsx", {"max_xlsx_cells": 3_000}),
}


def _one_line(message: str) -> str:
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    return message


# --------------------------------------------------------------------------- read_table
@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_file_is_refused_with_one_line_that_says_what_to_fix(case: Hostile) -> None:
    with pytest.raises(DataError, match=case.match) as refused:
        read_table(case.build(), case.filename, **case.limits)
    message = _one_line(str(refused.value))
    assert message.startswith(f"'{case.filename}' ")
    assert ";" in message, "a refusal says what to do after the semicolon"


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_file_on_disk_is_refused_the_same_way(case: Hostile, tmp_path: Path) -> None:
    path = tmp_path / case.filename
    path.write_bytes(case.build())
    with pytest.raises(DataError, match=case.match):
        read_table(path, **case.limits)


def test_parquet_that_expands_past_the_cell_limit_is_refused_from_its_metadata() -> None:
    data = _parquet(_constant_rows(60_000_000))  # the real one: 60 million rows in about 0.5 MB
    assert len(data) < 2 * MIB
    with pytest.raises(DataError, match=r"60,000,000 rows × 2 columns \(120,000,000 cells\), above the 50,000,000"):
        read_table(data, "expands.parquet", max_bytes=Settings(database_url="", data_dir=Path()).max_upload_bytes)


def test_size_limit_is_named_in_mib_like_hitl_max_upload_mb(tmp_path: Path) -> None:
    settings = Settings(database_url="", data_dir=tmp_path, max_upload_mb=200)
    path = tmp_path / "x.csv"
    with path.open("wb") as sparse:  # 250 MiB on paper, nothing on disk
        sparse.truncate(250 * MIB)
    with pytest.raises(DataError) as refused:
        read_table(path, max_bytes=settings.max_upload_bytes)
    assert str(refused.value) == (
        "'x.csv' is 250.0 MiB, above the 200 MiB limit; upload a smaller sample or raise HITL_MAX_UPLOAD_MB."
    )


def test_csv_with_duplicate_headers_is_refused_although_pandas_would_rename_them() -> None:
    with pytest.raises(DataError, match=r"'dupes\.csv' has duplicate column names \['a', 'b'\]"):
        read_table(b"a,b,a,b,label\n1,2,3,4,y\n", "dupes.csv")


def test_blank_csv_headers_are_not_duplicates_but_unnamed_columns() -> None:
    frame = read_table(b",,label\n1,2,y\n3,4,n\n", "blank.csv")
    assert list(frame.columns) == ["Unnamed: 0", "Unnamed: 1", "label"]


def test_many_duplicate_names_are_listed_briefly() -> None:
    header = ",".join(f"c{i},c{i}" for i in range(30))
    with pytest.raises(DataError, match=r"duplicate column names \['c0', .*\] and 20 more; rename") as refused:
        read_table(f"{header}\n{','.join(['1'] * 60)}\n".encode(), "dupes.csv")
    _one_line(str(refused.value))


def test_wide_csv_reads_when_its_columns_are_allowed() -> None:
    """10,000 columns once hung tidying their names (quadratic); within a raised limit they read."""
    frame = read_table(_csv_with_10000_columns(), "wide.csv", max_columns=10_000)
    assert frame.shape == (200, 10_000)
    assert frame.columns[-1] == "c9999"


@pytest.mark.parametrize("filename, data", [
    ("ok.csv", b"a,b,label\n" + b"1,2,y\n" * 10),
    ("ok.parquet", _parquet(pa.table({"a": list(range(10)), "b": list(range(10)), "label": ["y"] * 10}))),
    ("ok.xlsx", _xlsx(["a", "b", "label"], 10)),
    ("ok-no-dimension.xlsx", _xlsx(["a", "b", "label"], 10, dimension=None)),
])
def test_table_just_inside_the_limits_still_reads(filename: str, data: bytes) -> None:
    limits = {"max_cells": 33, "max_xlsx_cells": 33, "max_columns": 3}  # 11 rows × 3 incl. the header
    frame = read_table(data, filename, max_bytes=MIB, **limits)
    assert frame.shape == (10, 3)


def test_default_limits_are_generous_for_a_table_a_person_reviews() -> None:
    assert MAX_COLUMNS == 2_000 and MAX_CELLS == 50_000_000 and MAX_XLSX_CELLS == 1_000_000


# --------------------------------------------------------------------------- the command line
CLI_CASES = {
    "csv_with_10000_columns": ("wide.csv", _csv_with_10000_columns, {}, "10,000 columns, above the 2,000-column"),
    "parquet_of_60_million_rows": ("expands.parquet", lambda: _parquet(_constant_rows(60_000_000)), {},
                                   "120,000,000 cells), above the 50,000,000-cell limit"),
    "parquet_with_nested_columns": ("nested.parquet", lambda: _parquet(_nested()), {}, "nested columns 'tags' (list)"),
    "csv_with_duplicate_headers": ("dupes.csv", HOSTILE["csv_with_duplicate_headers"].build, {},
                                   "duplicate column names ['a']"),
    "xlsx_with_duplicate_headers": ("dupes.xlsx", HOSTILE["xlsx_with_duplicate_headers"].build, {},
                                    "duplicate column names ['a']"),
    "xlsx_whose_zip_declares_a_huge_sheet": ("declared.xlsx", HOSTILE["xlsx_whose_zip_declares_a_huge_sheet"].build,
                                             {}, "is 300.0 MiB uncompressed, above the 200 MiB limit"),
    "xlsx_whose_dimension_declares_too_many_cells": (
        "rows.xlsx", HOSTILE["xlsx_whose_dimension_declares_too_many_cells"].build, {},
        "declares 1,500,001 rows × 3 columns (4,500,003 cells), above the 1,000,000-cell limit for .xlsx"),
    "csv_above_hitl_max_upload_mb": ("big.csv", HOSTILE["csv_above_the_size_limit"].build,
                                     {"HITL_MAX_UPLOAD_MB": "2"}, "is 3.0 MiB, above the 2 MiB limit"),
    "parquet_above_hitl_max_upload_mb_once_uncompressed": (
        "pages.parquet", HOSTILE["parquet_whose_pages_uncompress_past_the_size_limit"].build,
        {"HITL_MAX_UPLOAD_MB": "1"}, "MiB uncompressed, above the 1 MiB limit"),
}


@pytest.mark.parametrize("filename, build, env, expected", CLI_CASES.values(), ids=CLI_CASES.keys())
def test_check_refuses_a_hostile_file_with_exit_2_and_one_error_line(
    filename: str, build: Callable[[], bytes], env: dict[str, str], expected: str, tmp_path: Path,
) -> None:
    path = tmp_path / filename
    path.write_bytes(build())
    result = subprocess.run(
        [sys.executable, "-m", "hitl_core", "check", str(path), "--target", "label"],
        cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "HITL_DATA_DIR": str(tmp_path), **env},
        capture_output=True, text=True,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert result.stdout == ""
