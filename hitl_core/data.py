"""Reading tables, describing their columns (``Schema``), validating them and the seeded split.

Every problem a user can fix raises :class:`DataError` with a message that says what is wrong
and what to do about it; pages show that message as is.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

if TYPE_CHECKING:  # imported where used: only .xlsx and .parquet uploads need them
    import pyarrow as pa
    import pyarrow.parquet as pq
    from openpyxl.workbook.workbook import Workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

MAX_CLASSES = 100
MAX_COLUMNS = 2_000  # columns a person picks roles for; each also gets its own validation pass
MAX_CELLS = 50_000_000  # rows × columns of CSV/Parquet: ~a 200 MiB CSV of short numbers; 400 MB as float64
MAX_XLSX_CELLS = 1_000_000  # openpyxl reads 30,000-100,000 cells/s: a million takes 10-30 s already
_MIB = 1024 * 1024  # HITL_MAX_UPLOAD_MB counts MiB (Settings.max_upload_bytes)
_CSV_HEADER_CHARS = 1 << 20  # the header row is looked for in this much text
_NAMES_SHOWN = 10
_WORKSHEET_PART = re.compile(r"(^|/)worksheets/[^/]+\.xml$", re.IGNORECASE)
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="\$?([A-Za-z]{1,3})\$?(\d+)(?::\$?([A-Za-z]{1,3})\$?(\d+))?"')


class DataError(ValueError):
    """A problem with the user's data that the user can fix; the message says how."""


# --------------------------------------------------------------------------- reading files
@dataclass(frozen=True)
class _Limits:
    """What a file may hold; every limit is checked from what the file says about itself, before loading."""

    max_bytes: int | None  # decompressed bytes
    max_columns: int
    max_cells: int  # rows × columns
    max_xlsx_cells: int


def read_table(
    data: bytes | Path,
    filename: str | None = None,
    *,
    max_bytes: int | None = None,
    encoding: str | None = None,
    max_columns: int = MAX_COLUMNS,
    max_cells: int = MAX_CELLS,
    max_xlsx_cells: int = MAX_XLSX_CELLS,
) -> pd.DataFrame:
    """Read a CSV, Excel (.xlsx) or Parquet file into a frame, or raise a one-line DataError saying why not.

    ``data`` is the raw bytes (an upload) or a path; ``filename`` decides the format by its suffix.
    A hostile file is refused before it is loaded, in seconds and bounded memory: ``max_bytes``
    caps its *decompressed* size (a CSV's bytes, an .xlsx's unzipped parts, a Parquet file's
    uncompressed pages and decoded values), ``max_columns`` its columns and ``max_cells`` its
    rows × columns (``max_xlsx_cells`` for .xlsx, which openpyxl reads ~100× slower than CSV).
    """
    limits = _Limits(max_bytes, max_columns, max_cells, max_xlsx_cells)
    if isinstance(data, Path):
        filename = filename or data.name
        if not data.exists():
            raise DataError(f"File '{data}' does not exist; check the path.")
        size = data.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise _too_large(filename, size, max_bytes)
        data = data.read_bytes()
    name = filename or "upload.csv"
    if max_bytes is not None and len(data) > max_bytes:
        raise _too_large(name, len(data), max_bytes)
    if not data or data.isspace():
        raise DataError(f"'{name}' is empty; upload a file with a header row and at least one data row.")
    suffix = Path(name).suffix.lower()
    if suffix == ".xlsx":
        frame = _read_excel(data, name, limits)
    elif suffix == ".parquet":
        frame = _read_parquet(data, name, limits)
    elif suffix in (".csv", ".txt", ".tsv"):
        frame = _read_csv(data, name, encoding, limits)
    else:
        raise DataError(
            f"'{name}' has an unsupported type '{suffix or '(none)'}'; upload a .csv, .xlsx or .parquet file."
        )
    return _tidy_columns(frame, name)


def _too_large(name: str, size: int, max_bytes: int, state: str = "") -> DataError:
    """Sizes in MiB, the unit of HITL_MAX_UPLOAD_MB."""
    return DataError(
        f"'{name}' is {size / _MIB:,.1f} MiB{state}, above the {max_bytes / _MIB:,.4g} MiB limit; "
        "upload a smaller sample or raise HITL_MAX_UPLOAD_MB."
    )


def _check_shape(name: str, n_rows: int, n_columns: int, max_columns: int, max_cells: int, *,
                 verb: str = "has", about: str = "", xlsx: bool = False) -> None:
    """Refuse a table wider than ``max_columns`` or with more than ``max_cells`` rows × columns."""
    if n_columns > max_columns:
        raise DataError(
            f"'{name}' {verb} {n_columns:,} columns, above the {max_columns:,}-column limit; "
            "keep the columns a model should learn from (and the target) and upload again."
        )
    if n_rows * n_columns > max_cells:
        shape = f"{verb} {about}{n_rows:,} rows × {n_columns:,} columns ({n_rows * n_columns:,} cells)"
        if xlsx:
            raise _too_many_xlsx_cells(name, shape, max_cells)
        raise DataError(f"'{name}' {shape}, above the {max_cells:,}-cell limit; upload a sample of the rows.")


def _refuse_duplicates(name: str, columns: list[str]) -> None:
    """Column names must be unique once stripped (pandas would rename a second 'a' to 'a.1' unseen)."""
    counts = Counter(columns)
    duplicated = sorted(c for c, n in counts.items() if n > 1)
    if duplicated:
        shown = repr(duplicated[:_NAMES_SHOWN]) + (
            f" and {len(duplicated) - _NAMES_SHOWN:,} more" if len(duplicated) > _NAMES_SHOWN else "")
        raise DataError(f"'{name}' has duplicate column names {shown}; rename them so each is unique.")


def _read_csv(data: bytes, name: str, encoding: str | None, limits: _Limits) -> pd.DataFrame:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"'{name}' is not a text table (it contains binary data); upload a CSV, .xlsx or .parquet file.")
    text = _decode(data, name, encoding)
    sample = text[:65536]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    header = _csv_header(text, delimiter, name)
    if header is not None:
        # Every line after the header as a row: an upper bound (quoted text can span lines), counted fast.
        n_lines = max(text.count("\n"), text.count("\r")) + (not text.endswith(("\n", "\r")))
        _check_shape(name, max(n_lines - 1, 0), len(header), limits.max_columns, limits.max_cells, about="about ")
        _refuse_duplicates(name, [c for c in header if c])  # blank ones become unique 'Unnamed: n'
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"'{name}' has no columns; the first line must be a header row.") from exc
    except pd.errors.ParserError as exc:
        raise DataError(
            f"'{name}' is not a well-formed table ({str(exc).splitlines()[0]}); "
            "check that every row has the same number of separators."
        ) from exc
    return frame


def _csv_header(text: str, delimiter: str, name: str) -> list[str] | None:
    """The header row as pandas takes it (first non-blank record), stripped; read before parsing the rest."""
    reader = csv.reader(io.StringIO(text[:_CSV_HEADER_CHARS], newline=""), delimiter=delimiter)
    try:
        for record in reader:
            if len(record) > 1 or (record and record[0].strip()):
                return [cell.strip() for cell in record]
    except csv.Error as exc:
        raise DataError(
            f"'{name}' has a header row that cannot be read ({exc}); check its quotes and separators."
        ) from exc
    return None


def _decode(data: bytes, name: str, encoding: str | None) -> str:
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"'{name}' could not be read as {encoding}; try another encoding.") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"'{name}' is not UTF-8 text (byte {exc.start} cannot be decoded); "
            "choose its encoding (e.g. latin-1 or cp1252) or re-save it as 'CSV UTF-8'."
        ) from exc


def _not_xlsx(name: str, exc: Exception) -> DataError:
    return DataError(f"'{name}' is not a readable .xlsx workbook ({type(exc).__name__}); re-save it from Excel.")


def _read_excel(data: bytes, name: str, limits: _Limits) -> pd.DataFrame:
    """First sheet; size, shape and header are checked from the zip and the sheet's XML before loading."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, OSError, ... for a file that is no zip at all
        raise _not_xlsx(name, exc) from exc
    with archive:
        book = _open_workbook(archive, data, name, limits)
        try:
            return _read_first_sheet(book, name, limits)
        finally:
            book.close()


def _open_workbook(archive: zipfile.ZipFile, data: bytes, name: str, limits: _Limits) -> "Workbook":
    """The workbook in openpyxl's read-only mode, once its size, sheets and shared texts are within limits.

    Checked on the zip's raw parts first: opening a sheet without a ``<dimension>`` makes openpyxl
    parse all of it just to size it.
    """
    import openpyxl

    max_cells = limits.max_xlsx_cells
    try:
        # zipfile never inflates a member past its declared size, so this sum bounds a zip bomb too.
        unzipped = sum(info.file_size for info in archive.infolist())
        if limits.max_bytes is not None and unzipped > limits.max_bytes:
            raise _too_large(name, unzipped, limits.max_bytes, " uncompressed")
        sheets = [m for m in archive.namelist() if _WORKSHEET_PART.search(m)]
        for member in sheets:
            declared = _declared_dimension(archive, member)
            if declared:
                _check_shape(name, *declared, limits.max_columns, max_cells, verb="declares", xlsx=True)
        n_cells = 0
        for member in sheets:  # the dimension can be missing or wrong: count what is there
            n_cells += _count_xml_elements(archive, member, b"c", max_cells - n_cells)
            if n_cells > max_cells:
                raise _too_many_xlsx_cells(name, f"holds more than {max_cells:,} cells", max_cells)
        for member in archive.namelist():
            if member.lower().endswith("sharedstrings.xml"):  # openpyxl loads every shared text up front
                if _count_xml_elements(archive, member, b"si", max_cells) > max_cells:
                    raise _too_many_xlsx_cells(name, f"holds more than {max_cells:,} distinct texts", max_cells)
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except DataError:
        raise
    except Exception as exc:  # zipfile and openpyxl raise many unrelated types for a broken file
        raise _not_xlsx(name, exc) from exc


def _read_first_sheet(book: "Workbook", name: str, limits: _Limits) -> pd.DataFrame:
    max_cells = limits.max_xlsx_cells
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # read what is there, not what the dimension says
        header = _xlsx_header(sheet)
        _check_shape(name, 0, len(header), limits.max_columns, max_cells)  # its columns
        _refuse_duplicates(name, [c for c in header if c])  # blank ones become unique 'Unnamed: n'
        rows_allowed = max_cells // max(len(header), 1)
        frame = pd.read_excel(book, engine="openpyxl", nrows=rows_allowed + 1)  # stops reading there
    except DataError:
        raise
    except Exception as exc:
        raise _not_xlsx(name, exc) from exc
    if len(frame) > rows_allowed or frame.size > max_cells:
        raise _too_many_xlsx_cells(
            name, f"has more than {min(len(frame), rows_allowed):,} rows of {frame.shape[1]:,} columns", max_cells)
    return frame


def _declared_dimension(archive: zipfile.ZipFile, member: str) -> tuple[int, int] | None:
    """Rows and columns a sheet's ``<dimension ref="A1:C1500001">`` declares, read from its first 64 KiB."""
    with archive.open(member) as stream:
        head = stream.read(1 << 16)
    match = _DIMENSION.search(head.split(b"sheetData", 1)[0])
    if not match:
        return None
    first_col, first_row, last_col, last_row = match.groups()
    last_col, last_row = last_col or first_col, last_row or first_row
    n_rows = int(last_row) - int(first_row) + 1
    n_columns = _column_number(last_col) - _column_number(first_col) + 1
    return (n_rows, n_columns) if n_rows > 0 and n_columns > 0 else None


def _column_number(letters: bytes) -> int:
    """Excel column letters as a 1-based number: A → 1, Z → 26, AA → 27."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - ord("A") + 1
    return number


def _too_many_xlsx_cells(name: str, what: str, max_cells: int) -> DataError:
    return DataError(f"'{name}' {what}, above the {max_cells:,}-cell limit for .xlsx; "
                     "save it as CSV or Parquet (read far faster) or upload a sample of the rows.")


def _count_xml_elements(archive: zipfile.ZipFile, member: str, tag: bytes, stop: int) -> int:
    """How many ``<tag>`` elements (any namespace prefix) a zip member holds, counted on its bytes a MiB
    at a time (~100× faster than parsing); stops once past ``stop``. An estimate: enough for a limit."""
    patterns = [opening + tag + closing for opening in (b"<", b":") for closing in (b" ", b">", b"/>")]
    count, tail = 0, b""
    with archive.open(member) as stream:
        while count <= stop and (chunk := stream.read(_MIB)):
            block = tail + chunk
            count += sum(block.count(p) for p in patterns)
            tail = block[-len(tag) - 1:]  # shorter than any pattern: nothing is counted twice
    return count


def _xlsx_header(sheet: "ReadOnlyWorksheet") -> list[str]:
    """The first row (pandas' header, even when blank) as pandas names columns (1.0 → '1'), stripped."""
    cells = list(next(sheet.iter_rows(values_only=True), ()))
    while cells and cells[-1] in (None, ""):  # trailing blanks: pandas trims them too
        cells.pop()
    return [_header_text(v) for v in cells]


def _header_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _not_parquet(name: str, exc: Exception) -> DataError:
    return DataError(f"'{name}' is not a readable Parquet file ({type(exc).__name__}); re-export it.")


def _read_parquet(data: bytes, name: str, limits: _Limits) -> pd.DataFrame:
    """Types, shape and sizes are checked from the footer (and text columns streamed) before loading."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta, schema = parquet.metadata, parquet.schema_arrow
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a broken file
        raise _not_parquet(name, exc) from exc
    nested = [f"{f.name!r} ({_arrow_kind(f.type)})" for f in schema if pa.types.is_nested(f.type)]
    if nested:
        more = f" and {len(nested) - _NAMES_SHOWN:,} more" if len(nested) > _NAMES_SHOWN else ""
        raise DataError(
            f"'{name}' has nested columns {', '.join(nested[:_NAMES_SHOWN])}{more}; a table needs one plain "
            "value per cell: flatten them into separate columns (or drop them) and export again."
        )
    _check_shape(name, meta.num_rows, len(schema), limits.max_columns, limits.max_cells)
    _refuse_duplicates(name, [str(n).strip() for n in schema.names])
    if limits.max_bytes is not None:
        stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if stored > limits.max_bytes:
            raise _too_large(name, stored, limits.max_bytes, " uncompressed")
        try:
            text, complete = _parquet_text_size(parquet, schema, limits.max_bytes)
        except Exception as exc:
            raise _not_parquet(name, exc) from exc
        if text > limits.max_bytes:
            raise _too_large(name, text, limits.max_bytes, f"{'' if complete else ' or more'} of text once decoded")
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise _not_parquet(name, exc) from exc


def _arrow_kind(arrow_type: "pa.DataType") -> str:
    import pyarrow as pa

    for test, kind in ((pa.types.is_map, "map"), (pa.types.is_struct, "struct"), (pa.types.is_union, "union")):
        if test(arrow_type):
            return kind
    return "list"


def _parquet_text_size(parquet: "pq.ParquetFile", schema: "pa.Schema", limit: int) -> tuple[int, bool]:
    """Bytes the text and binary columns take once decoded, and whether that is all of them (False:
    stopped past ``limit``). Streamed a batch at a time: dictionary-encoded text can decode to 1,000
    times its stored size. (Fixed-width columns are bounded by the cell limit: 8 bytes a cell at most.)
    """
    import pyarrow as pa

    text = [f.name for f in schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type)
            or pa.types.is_large_binary(f.type) or pa.types.is_string_view(f.type) or pa.types.is_binary_view(f.type)]
    size = 0
    if text:
        for batch in parquet.iter_batches(batch_size=65_536, columns=text, use_threads=False):
            size += batch.nbytes
            if size > limit:
                return size, False
    return size, True


def _tidy_columns(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    if frame.shape[1] < 2:
        raise DataError(
            f"'{name}' has {frame.shape[1]} column; a table needs at least a feature and a target. "
            "If it is a CSV, check its separator."
        )
    if len(frame) == 0:
        raise DataError(f"'{name}' has a header but no data rows.")
    columns = [str(c).strip() for c in frame.columns]
    _refuse_duplicates(name, columns)
    return frame.set_axis(columns, axis=1).reset_index(drop=True)


# --------------------------------------------------------------------------- schema & validation
@dataclass(frozen=True)
class Schema:
    """The role of every column: what the model predicts, what it learns from, what it must not see."""

    target: str
    classes: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    id_column: str | None = None
    sensitive: tuple[str, ...] = ()
    pii: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    # The class people want (approved, not defaulted): what fairness compares. None = not chosen yet;
    # nothing guesses it, since "yes" may mean approved or defaulted.
    favourable: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @property
    def is_binary(self) -> bool:
        return len(self.classes) == 2

    def with_favourable(self, favourable: str | None) -> "Schema":
        """This schema with the favourable outcome set (``None``: not chosen), or a DataError if it is no class."""
        if favourable is None:
            return replace(self, favourable=None)
        text = str(favourable).strip()
        if text not in self.classes:
            raise DataError(f"'{favourable}' is not a class of '{self.target}', so it cannot be the favourable "
                            f"outcome; pick one of {list(self.classes)}.")
        return replace(self, favourable=text)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Schema":
        """Read a stored schema; JSON written before a field existed (e.g. ``favourable``) gets its default."""
        raw = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


@dataclass(frozen=True)
class ValidationReport:
    """What a person should know about a table before training on it."""

    n_rows: int
    n_columns: int
    columns: pd.DataFrame  # column, dtype, role, missing, missing_pct, unique
    class_balance: pd.Series  # labelled rows per class
    n_unlabeled: int
    warnings: tuple[str, ...] = field(default_factory=tuple)


def labels_as_text(values: pd.Series) -> pd.Series:
    """Labels as plain strings ('1', not '1.0'); missing or blank stays missing (= unlabeled)."""
    series = values
    if pd.api.types.is_float_dtype(series) and series.dropna().mod(1).eq(0).all():
        series = series.astype("Int64")
    text = series.astype("string").str.strip()  # vectorised: a per-row lambda cost ~0.2 s per 100k rows
    text = text.mask(text == "")
    return pd.Series(np.where(text.isna().to_numpy(), None, text.to_numpy(dtype=object)), index=values.index,
                     dtype=object, name=values.name)


def _is_identifier_like(column: pd.Series) -> bool:
    """Unique-per-row text (names, e-mails, free text) lets trees memorise rows and breaks TreeSHAP."""
    values = column.dropna()
    if len(values) < 20 or pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    return values.nunique() / len(values) > 0.9


def check(
    frame: pd.DataFrame,
    target: str,
    *,
    id_column: str | None = None,
    sensitive: tuple[str, ...] | list[str] = (),
    exclude: tuple[str, ...] | list[str] = (),
    pii: tuple[str, ...] | list[str] = (),
    sensitive_as_features: bool = False,
    favourable: str | None = None,
) -> tuple[Schema, ValidationReport]:
    """Decide every column's role and validate the table, raising DataError on what blocks training.

    ``favourable`` is the outcome people want (``"yes"`` for approved); it must be a class of ``target``.
    """
    columns = list(frame.columns)
    if target not in columns:
        raise DataError(f"Target column '{target}' is not in the table; pick one of {columns[:10]}.")
    for role, chosen in (("ID", [id_column] if id_column else []), ("sensitive", sensitive),
                         ("excluded", exclude), ("PII", pii)):
        missing = [c for c in chosen if c not in columns]
        if missing:
            raise DataError(f"{role} column(s) {missing} are not in the table; pick existing columns.")
        if target in chosen:
            raise DataError(f"'{target}' is the target; it cannot also be a {role} column.")
    if id_column and id_column in pii:
        raise DataError(f"'{id_column}' is marked as personal data but chosen as the ID column, and row IDs are shown "
                        "on every page and in exports; pick an ID that is not personal, or no ID column (row "
                        "positions are used).")
    if len(frame) == 0:
        raise DataError("The table has no rows.")

    labels = labels_as_text(frame[target])
    labelled = labels.dropna()
    if labelled.empty:
        raise DataError(f"Target column '{target}' has no values at all; label some rows or pick another target.")
    balance = labelled.value_counts().sort_index()
    if len(balance) < 2:
        only = balance.index[0]
        raise DataError(f"Column '{target}' has only one class ({only!r}); a classifier needs at least two. "
                        "Pick another target column, or add rows labelled with another class.")
    if len(balance) > MAX_CLASSES:
        raise DataError(
            f"Column '{target}' has {len(balance):,} distinct values; at most {MAX_CLASSES} classes are supported. "
            "Is it a numeric quantity or an ID? Pick a categorical target."
        )
    if id_column:
        ids = frame[id_column]
        if ids.isna().any():
            raise DataError(f"ID column '{id_column}' has {int(ids.isna().sum())} empty values; every row needs an ID.")
        dupes = ids.astype(str)[ids.astype(str).duplicated()].unique()
        if len(dupes):
            examples = ", ".join(repr(d) for d in dupes[:3])
            raise DataError(
                f"ID column '{id_column}' has {len(dupes)} duplicated values (e.g. {examples}); "
                "IDs must be unique per row. Pick another ID column or none."
            )

    warnings: list[str] = []
    roles: dict[str, str] = {target: "target"}
    if id_column:
        roles[id_column] = "id"
    for c in pii:
        roles[c] = "pii (not a feature)"
    for c in exclude:
        roles[c] = "excluded"
    for c in sensitive:
        roles[c] = "sensitive + feature" if sensitive_as_features else "sensitive (not a feature)"

    numeric: list[str] = []
    categorical: list[str] = []
    for c in columns:
        if c in roles and roles[c] != "sensitive + feature":
            continue
        col = frame[c]
        if col.isna().all():
            roles[c] = "excluded: all missing"
            warnings.append(f"Column '{c}' is entirely empty; it was left out of the features.")
        elif col.nunique(dropna=True) < 2:
            roles[c] = "excluded: constant"
            warnings.append(f"Column '{c}' has a single value; it was left out of the features.")
        elif _is_identifier_like(col) and c not in sensitive:
            roles[c] = "excluded: identifier-like"
            warnings.append(
                f"Column '{c}' is unique per row (a name, code or free text); it was left out of the features "
                "because a model would memorise it. Mark it as ID or PII to silence this."
            )
        elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            numeric.append(c)
            roles.setdefault(c, "numeric feature")
        else:
            categorical.append(c)
            roles.setdefault(c, "categorical feature")
    if not numeric and not categorical:
        raise DataError("No feature columns are left after the exclusions; un-exclude at least one column.")

    rare = [str(k) for k, v in balance.items() if v < 2]
    if rare:
        warnings.append(f"Classes {rare} have a single labelled row; the split cannot keep them in every part.")
    n_unlabeled = int(labels.isna().sum())
    if n_unlabeled:
        warnings.append(f"{n_unlabeled:,} rows have no '{target}' value; they are unlabeled and go to the review pool.")

    missing = frame.isna().sum()
    report = ValidationReport(
        n_rows=len(frame),
        n_columns=len(columns),
        columns=pd.DataFrame({
            "column": columns,
            "dtype": [str(frame[c].dtype) for c in columns],
            "role": [roles.get(c, "") for c in columns],
            "missing": [int(missing[c]) for c in columns],
            "missing_pct": [round(100 * missing[c] / len(frame), 1) for c in columns],
            "unique": [int(frame[c].nunique(dropna=True)) for c in columns],
        }),
        class_balance=balance.rename("rows"),
        n_unlabeled=n_unlabeled,
        warnings=tuple(warnings),
    )
    schema = Schema(
        target=target,
        classes=tuple(str(c) for c in balance.index),
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        id_column=id_column,
        sensitive=tuple(sensitive),
        pii=tuple(pii),
        excluded=tuple(c for c in columns if roles.get(c, "").startswith("excluded")),
    )
    return schema.with_favourable(favourable), report


# --------------------------------------------------------------------------- dataset & split
def row_keys(frame: pd.DataFrame, id_column: str | None) -> pd.Index:
    """Stable keys for rows: the ID column's values as text, else the row's position."""
    if id_column:
        return pd.Index(frame[id_column].astype(str).to_numpy(dtype=object), name="row")
    return pd.Index([str(i) for i in range(len(frame))], dtype=object, name="row")


def split_rows(
    labels: pd.Series, *, seed: int, test_size: float = 0.2, validation_size: float = 0.2
) -> pd.Series:
    """Assign each row to train / validation / test, once, seeded and stratified.

    The held-out test and validation rows are drawn from labelled rows only (they must be
    scored); unlabeled rows all belong to the training pool that people review.
    """
    split = pd.Series("train", index=labels.index, dtype=object, name="split")
    labelled = labels.dropna()
    n_test = int(round(test_size * len(labelled)))
    n_val = int(round(validation_size * len(labelled)))
    if len(labelled) < 10 or n_test < 1 or n_val < 1 or len(labelled) - n_test - n_val < 2:
        raise DataError(f"Only {len(labelled)} labelled rows; at least 10 are needed to hold out validation and test rows.")
    rest, test = _split(labelled, n_test, seed)
    _, val = _split(labelled.loc[rest], n_val, seed + 1)
    split.loc[test] = "test"
    split.loc[val] = "validation"
    return split


def _split(labels: pd.Series, n_out: int, seed: int) -> tuple[pd.Index, pd.Index]:
    counts = labels.value_counts()
    stratify = labels if counts.min() >= 2 and n_out >= len(counts) else None
    keep, out = train_test_split(labels.index.to_numpy(dtype=object), test_size=n_out, random_state=seed, stratify=stratify)
    return pd.Index(keep), pd.Index(out)


def content_hash(frame: pd.DataFrame) -> str:
    """A fingerprint of a table's content, used as cache key and to find the stored dataset."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Dataset:
    """A validated table: rows keyed by ``row`` keys, the original labels, and the stored split."""

    name: str
    frame: pd.DataFrame  # index: row keys (str)
    schema: Schema
    split: pd.Series  # index: row keys; values "train", "validation" or "test"

    @property
    def labels(self) -> pd.Series:
        """Original labels as text; missing = unlabeled."""
        return labels_as_text(self.frame[self.schema.target])

    @property
    def features(self) -> pd.DataFrame:
        return self.frame.loc[:, list(self.schema.features)]

    def rows(self, part: str) -> pd.Index:
        return self.split.index[self.split.to_numpy() == part]

    @classmethod
    def create(cls, name: str, frame: pd.DataFrame, schema: Schema, *, seed: int = 0) -> "Dataset":
        """Key the rows and make the one split this dataset will ever have."""
        keyed = frame.copy()
        keyed.index = row_keys(frame, schema.id_column)
        split = split_rows(labels_as_text(keyed[schema.target]), seed=seed)
        return cls(name=name, frame=keyed, schema=schema, split=split)
