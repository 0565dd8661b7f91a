"""Reading tables, describing their columns (``Schema``), validating them and the seeded split.

Every problem a user can fix raises :class:`DataError` with a message that says what is wrong
and what to do about it; pages show that message as is.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

MAX_CLASSES = 100


class DataError(ValueError):
    """A problem with the user's data that the user can fix; the message says how."""


# --------------------------------------------------------------------------- reading files
def read_table(
    data: bytes | Path,
    filename: str | None = None,
    *,
    max_bytes: int | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read a CSV, Excel (.xlsx) or Parquet file into a frame, or raise a DataError saying why not.

    ``data`` is the raw bytes (an upload) or a path; ``filename`` decides the format by its suffix.
    """
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
    if not data or not data.strip():
        raise DataError(f"'{name}' is empty; upload a file with a header row and at least one data row.")
    suffix = Path(name).suffix.lower()
    if suffix == ".xlsx":
        frame = _read_excel(data, name)
    elif suffix == ".parquet":
        frame = _read_parquet(data, name)
    elif suffix in (".csv", ".txt", ".tsv"):
        frame = _read_csv(data, name, encoding)
    else:
        raise DataError(
            f"'{name}' has an unsupported type '{suffix or '(none)'}'; upload a .csv, .xlsx or .parquet file."
        )
    return _tidy_columns(frame, name)


def _too_large(name: str, size: int, max_bytes: int) -> DataError:
    return DataError(
        f"'{name}' is {size / 1e6:.1f} MB, above the {max_bytes / 1e6:.0f} MB limit; "
        "upload a smaller sample or raise HITL_MAX_UPLOAD_MB."
    )


def _read_csv(data: bytes, name: str, encoding: str | None) -> pd.DataFrame:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"'{name}' is not a text table (it contains binary data); upload a CSV, .xlsx or .parquet file.")
    text = _decode(data, name, encoding)
    sample = text[:65536]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
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


def _read_excel(data: bytes, name: str) -> pd.DataFrame:
    try:
        return pd.read_excel(io.BytesIO(data), engine="openpyxl")
    except Exception as exc:  # openpyxl raises many unrelated types for a broken file
        raise DataError(f"'{name}' is not a readable .xlsx workbook ({type(exc).__name__}); re-save it from Excel.") from exc


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a broken file
        raise DataError(f"'{name}' is not a readable Parquet file ({type(exc).__name__}); re-export it.") from exc


def _tidy_columns(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    if frame.shape[1] < 2:
        raise DataError(
            f"'{name}' has {frame.shape[1]} column; a table needs at least a feature and a target. "
            "If it is a CSV, check its separator."
        )
    if len(frame) == 0:
        raise DataError(f"'{name}' has a header but no data rows.")
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise DataError(f"'{name}' has duplicate column names {duplicated}; rename them so each is unique.")
    return frame.reset_index(drop=True)


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

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @property
    def is_binary(self) -> bool:
        return len(self.classes) == 2

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Schema":
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
    series = values.copy()
    if pd.api.types.is_float_dtype(series) and series.dropna().mod(1).eq(0).all():
        series = series.astype("Int64")
    text = series.astype(object).map(lambda v: None if pd.isna(v) else str(v).strip())
    return text.map(lambda v: None if v in (None, "") else v).astype(object)


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
) -> tuple[Schema, ValidationReport]:
    """Decide every column's role and validate the table, raising DataError on what blocks training."""
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
    return schema, report


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
