"""Reading tables, validating them with messages a user can act on, and the one seeded split."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hitl_core.data import (
    MAX_CLASSES, Dataset, DataError, Schema, check, content_hash, labels_as_text, read_table, split_rows,
)
from hitl_core.samples import Sample


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small mixed table: numeric and categorical features, a binary target."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "size": rng.normal(size=n).round(3),
        "count": rng.integers(0, 10, size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "label": rng.choice(["no", "yes"], size=n),
    })


def _labels(n_labelled: int, n_unlabeled: int, seed: int = 0) -> pd.Series:
    """Labels keyed like row keys, imbalanced 3:1, with unlabeled rows mixed in."""
    rng = np.random.default_rng(seed)
    values = np.array(["a"] * (3 * n_labelled // 4) + ["b"] * (n_labelled - 3 * n_labelled // 4)
                      + [None] * n_unlabeled, dtype=object)
    rng.shuffle(values)
    return pd.Series(values, index=pd.Index([str(i) for i in range(len(values))], dtype=object), dtype=object)


# --------------------------------------------------------------------------- split
def test_same_seed_gives_the_same_split() -> None:
    labels = _labels(400, 100)
    first = split_rows(labels, seed=3)
    again = split_rows(labels.copy(), seed=3)
    pd.testing.assert_series_equal(first, again)
    assert not first.equals(split_rows(labels, seed=4)), "a different seed should draw a different split"


def test_split_never_puts_test_rows_in_training() -> None:
    labels = _labels(400, 100)
    split = split_rows(labels, seed=0)
    assert split.index.equals(labels.index)
    assert set(split.unique()) == {"train", "validation", "test"}
    parts = {part: set(split.index[split == part]) for part in ("train", "validation", "test")}
    assert not parts["train"] & parts["test"]
    assert not parts["train"] & parts["validation"]
    assert not parts["validation"] & parts["test"]
    assert len(parts["train"]) + len(parts["validation"]) + len(parts["test"]) == len(labels)


def test_held_out_rows_are_labelled_and_unlabeled_rows_are_all_in_training() -> None:
    labels = _labels(400, 100)
    split = split_rows(labels, seed=0)
    held_out = split.index[split != "train"]
    assert labels.loc[held_out].notna().all()
    unlabeled = labels.index[labels.isna()]
    assert (split.loc[unlabeled] == "train").all()


def test_split_is_sixty_twenty_twenty_of_labelled_rows() -> None:
    labels = _labels(500, 200)
    split = split_rows(labels, seed=1)
    labelled_split = split[labels.notna()]
    shares = labelled_split.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.6, abs=0.01)
    assert shares["validation"] == pytest.approx(0.2, abs=0.01)
    assert shares["test"] == pytest.approx(0.2, abs=0.01)


def test_split_keeps_class_shares_in_every_part() -> None:
    labels = _labels(500, 0)
    split = split_rows(labels, seed=2)
    for part in ("train", "validation", "test"):
        share_b = (labels[split == part] == "b").mean()
        assert share_b == pytest.approx(0.25, abs=0.02), part


@pytest.mark.parametrize("n_labelled", [2, 4, 9])
def test_split_of_too_few_labelled_rows_is_refused_with_a_message(n_labelled: int) -> None:
    with pytest.raises(DataError, match=f"Only {n_labelled} labelled rows; at least 10 are needed"):
        split_rows(_labels(n_labelled, 50), seed=0)


def test_split_of_ten_labelled_rows_holds_out_two_and_two() -> None:
    counts = split_rows(_labels(10, 5), seed=0).value_counts()
    assert counts.to_dict() == {"train": 11, "validation": 2, "test": 2}


def test_dataset_keys_rows_by_id_column_and_splits_them(loan: Sample, loan_schema: Schema) -> None:
    dataset = Dataset.create("loan", loan.frame, loan_schema, seed=0)
    assert list(dataset.frame.index[:3]) == [str(v) for v in loan.frame["application_id"][:3]]
    assert dataset.split.index.equals(dataset.frame.index)
    assert dataset.labels.loc[dataset.rows("test")].notna().all()
    assert list(dataset.features.columns) == list(loan_schema.features)


# --------------------------------------------------------------------------- reading files
def test_empty_file_is_rejected_with_a_message() -> None:
    with pytest.raises(DataError, match="'data.csv' is empty"):
        read_table(b"", "data.csv")


def test_binary_bytes_are_not_a_table() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256))
    with pytest.raises(DataError, match="not a text table"):
        read_table(png, "photo.csv")


def test_non_utf8_file_names_its_encoding_problem_and_reads_with_latin1() -> None:
    raw = "name,city,bought\nJosé,München,yes\nAna,Köln,no\n".encode("latin-1")
    with pytest.raises(DataError, match="not UTF-8 text.*latin-1"):
        read_table(raw, "customers.csv")
    frame = read_table(raw, "customers.csv", encoding="latin-1")
    assert frame["city"].tolist() == ["München", "Köln"]
    assert frame["name"].tolist() == ["José", "Ana"]


def test_utf8_byte_order_mark_does_not_leak_into_the_first_column_name() -> None:
    frame = read_table("a,b\n1,2\n".encode("utf-8-sig"), "excel-export.csv")
    assert list(frame.columns) == ["a", "b"]


def test_file_over_the_size_limit_is_rejected_before_parsing() -> None:
    data = b"a,b\n" + b"1,2\n" * 400_000  # 1.6 MB = 1.5 MiB
    with pytest.raises(DataError, match=r"1\.5 MiB, above the 1 MiB limit"):
        read_table(data, "big.csv", max_bytes=1024 * 1024)
    assert len(read_table(data, "big.csv", max_bytes=2 * 1024 * 1024)) == 400_000


def test_file_over_the_size_limit_on_disk_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 1000)
    with pytest.raises(DataError, match="above the"):
        read_table(path, max_bytes=100)


def test_missing_path_says_it_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


def test_broken_xlsx_is_rejected_with_a_message() -> None:
    with pytest.raises(DataError, match="not a readable .xlsx workbook"):
        read_table(b"PK\x03\x04 this is not really a zip archive", "book.xlsx")


def test_broken_parquet_is_rejected_with_a_message() -> None:
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_table(b"PAR1 garbage in the middle PAR1", "table.parquet")


@pytest.mark.parametrize("name", ["table.json", "table.xls", "table"])
def test_unsupported_suffix_is_rejected_naming_the_supported_types(name: str) -> None:
    with pytest.raises(DataError, match=r"unsupported type.*\.csv, \.xlsx or \.parquet"):
        read_table(b"a,b\n1,2\n", name)


def test_single_column_csv_hints_at_the_separator() -> None:
    with pytest.raises(DataError, match="check its separator"):
        read_table(b"a\n1\n2\n", "one.csv")


def test_header_without_rows_is_rejected() -> None:
    with pytest.raises(DataError, match="no data rows"):
        read_table(b"a,b\n", "header.csv")


def test_duplicate_column_names_are_rejected() -> None:
    with pytest.raises(DataError, match=r"duplicate column names \['a'\]"):
        read_table(b"a,a ,b\n1,2,3\n", "dupes.csv")


def _round_trip_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4],
        "height": [1.5, 2.25, None, 4.0],
        "city": ["Oslo", "Lima", "Pune", None],
        "label": ["yes", "no", "yes", "no"],
    })


def _assert_same_values(read: pd.DataFrame, written: pd.DataFrame) -> None:
    assert list(read.columns) == list(written.columns)
    assert len(read) == len(written)
    for column in written.columns:
        got, expected = read[column].tolist(), written[column].tolist()
        assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in expected], column


def test_csv_round_trip() -> None:
    frame = _round_trip_frame()
    _assert_same_values(read_table(frame.to_csv(index=False).encode(), "t.csv"), frame)


def test_xlsx_round_trip() -> None:
    frame = _round_trip_frame()
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False, engine="openpyxl")
    _assert_same_values(read_table(buffer.getvalue(), "t.xlsx"), frame)


def test_parquet_round_trip() -> None:
    frame = _round_trip_frame()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    read = read_table(buffer.getvalue(), "t.parquet")
    _assert_same_values(read, frame)
    assert pd.api.types.is_float_dtype(read["height"])


def test_round_trip_from_a_path(tmp_path: Path) -> None:
    frame = _round_trip_frame()
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, index=False)
    _assert_same_values(read_table(path), frame)


def test_semicolon_separated_csv_is_sniffed() -> None:
    frame = read_table(b"a;b;label\n1;2;x\n3;4;y\n5;6;x\n", "european.csv")
    assert list(frame.columns) == ["a", "b", "label"]
    assert frame["b"].tolist() == [2, 4, 6]


def test_tab_separated_file_is_sniffed() -> None:
    frame = read_table(b"a\tb\n1\t2\n3\t4\n", "t.tsv")
    assert frame.shape == (2, 2)


def test_column_names_are_stripped() -> None:
    frame = read_table(b" a , b\n1,2\n", "t.csv")
    assert list(frame.columns) == ["a", "b"]


# --------------------------------------------------------------------------- validation
def test_valid_table_gets_roles_and_a_report() -> None:
    frame = _frame()
    schema, report = check(frame, "label")
    assert schema.target == "label"
    assert schema.classes == ("no", "yes")
    assert schema.numeric == ("size", "count")
    assert schema.categorical == ("colour",)
    assert schema.is_binary
    assert report.n_rows == 60 and report.n_columns == 4 and report.n_unlabeled == 0
    assert report.class_balance.sum() == 60
    assert report.columns.set_index("column").loc["label", "role"] == "target"


def test_schema_survives_json() -> None:
    schema = check(_frame(), "label", sensitive=["colour"])[0]
    assert Schema.from_json(schema.to_json()) == schema


def test_unknown_target_names_the_columns() -> None:
    with pytest.raises(DataError, match="Target column 'outcome' is not in the table"):
        check(_frame(), "outcome")


def test_upload_with_one_class_is_rejected_with_a_message() -> None:
    frame = _frame().assign(label="yes")
    with pytest.raises(DataError, match=r"only one class \('yes'\); a classifier needs at least two"):
        check(frame, "label")


def test_target_with_no_values_is_rejected() -> None:
    frame = _frame().assign(label=None)
    with pytest.raises(DataError, match="has no values at all"):
        check(frame, "label")


def test_more_than_max_classes_is_rejected_as_probably_not_categorical() -> None:
    n = MAX_CLASSES + 20
    frame = pd.DataFrame({"x": np.arange(n), "price": np.arange(n) * 1.5 + 0.25})
    with pytest.raises(DataError, match=f"{n} distinct values; at most {MAX_CLASSES} classes"):
        check(frame, "price")


def test_id_column_with_duplicates_is_rejected_with_examples() -> None:
    frame = _frame().assign(customer=[f"c{i % 50}" for i in range(60)])
    with pytest.raises(DataError, match=r"ID column 'customer' has 10 duplicated values \(e\.g\. 'c0'"):
        check(frame, "label", id_column="customer")


def test_id_column_with_empty_values_is_rejected() -> None:
    frame = _frame().assign(customer=[None] + [f"c{i}" for i in range(1, 60)])
    with pytest.raises(DataError, match="1 empty values"):
        check(frame, "label", id_column="customer")


def test_all_missing_column_is_excluded_with_a_warning_not_an_error() -> None:
    frame = _frame().assign(notes=np.nan)
    schema, report = check(frame, "label")
    assert "notes" not in schema.features
    assert "notes" in schema.excluded
    assert any("'notes' is entirely empty" in w for w in report.warnings)


def test_constant_column_is_excluded_with_a_warning() -> None:
    schema, report = check(_frame().assign(country="NO"), "label")
    assert "country" in schema.excluded
    assert any("'country' has a single value" in w for w in report.warnings)


def test_identifier_like_text_column_is_excluded_with_a_warning() -> None:
    frame = _frame().assign(name=[f"Passenger number {i}" for i in range(60)])
    schema, report = check(frame, "label")
    assert "name" not in schema.features
    assert "name" in schema.excluded
    assert any("'name' is unique per row" in w for w in report.warnings)
    assert "count" in schema.features, "a numeric column is never identifier-like"


def test_roles_chosen_by_the_user_are_not_features() -> None:
    frame = _frame().assign(email=[f"u{i}@x.org" for i in range(60)], group=["a", "b"] * 30)
    schema, _ = check(frame, "label", pii=["email"], sensitive=["group"], exclude=["count"])
    assert set(schema.features) == {"size", "colour"}
    assert schema.sensitive == ("group",) and schema.pii == ("email",)
    with_sensitive = check(frame, "label", pii=["email"], sensitive=["group"], sensitive_as_features=True)[0]
    assert "group" in with_sensitive.features


def test_target_cannot_also_be_a_sensitive_column() -> None:
    with pytest.raises(DataError, match="'label' is the target"):
        check(_frame(), "label", sensitive=["label"])


def test_unknown_role_column_is_rejected() -> None:
    with pytest.raises(DataError, match=r"PII column\(s\) \['phone'\] are not in the table"):
        check(_frame(), "label", pii=["phone"])


def test_no_features_left_is_rejected() -> None:
    with pytest.raises(DataError, match="No feature columns are left"):
        check(_frame(), "label", exclude=["size", "count", "colour"])


def test_unlabeled_rows_are_counted_and_mentioned() -> None:
    frame = _frame()
    frame.loc[:9, "label"] = None
    schema, report = check(frame, "label")
    assert report.n_unlabeled == 10
    assert report.class_balance.sum() == 50
    assert any("10 rows have no 'label' value" in w for w in report.warnings)


def test_labels_as_text_turns_float_labels_into_plain_text() -> None:
    text = labels_as_text(pd.Series([1.0, 0.0, np.nan, 2.0]))
    assert text.iloc[[0, 1, 3]].tolist() == ["1", "0", "2"]
    assert pd.isna(text.iloc[2])


def test_labels_as_text_treats_blank_as_unlabeled_and_strips() -> None:
    text = labels_as_text(pd.Series([" yes", "", "  ", None, "no"], dtype=object))
    assert text.iloc[0] == "yes" and text.iloc[4] == "no"
    assert text.iloc[1:4].isna().all()


def test_float_target_with_missing_values_gets_integer_classes() -> None:
    frame = _frame().assign(label=[1.0, 0.0, np.nan] * 20)
    schema, report = check(frame, "label")
    assert schema.classes == ("0", "1")
    assert report.n_unlabeled == 20


def test_content_hash_follows_the_content() -> None:
    frame = _frame()
    assert content_hash(frame) == content_hash(frame.copy())
    changed = frame.copy()
    changed.loc[0, "size"] += 1
    assert content_hash(changed) != content_hash(frame)
    assert content_hash(frame.rename(columns={"size": "width"})) != content_hash(frame)


def test_an_id_column_marked_as_personal_data_is_refused_because_ids_are_shown_everywhere(loan) -> None:
    with pytest.raises(DataError, match="marked as personal data but chosen as the ID column"):
        check(loan.frame, loan.target, id_column=loan.id_column, pii=[loan.id_column])
