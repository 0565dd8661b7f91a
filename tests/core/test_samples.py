"""Bundled samples: offline, reproducible, valid, and the loan sample carries the bias it promises."""
from __future__ import annotations

import pandas as pd
import pytest

from hitl_core.data import check, labels_as_text
from hitl_core.samples import PENDING_SHARE, SAMPLE_NAMES, Sample, load_sample, loan_applications


def test_loan_sample_shows_the_injected_bias_against_group_b(loan: Sample) -> None:
    frame = loan.frame[labels_as_text(loan.frame[loan.target]).notna().to_numpy()]
    approval = frame.groupby("group")[loan.target].apply(lambda s: (s == "yes").mean())
    assert approval["group_b"] / approval["group_a"] < 0.8  # the four-fifths rule is broken


def test_loan_sample_has_pending_applications_to_review(loan: Sample) -> None:
    pending = labels_as_text(loan.frame[loan.target]).isna().mean()
    assert pending == pytest.approx(PENDING_SHARE, abs=0.03)


def test_same_seed_gives_identical_loan_frames() -> None:
    pd.testing.assert_frame_equal(loan_applications(n_rows=300, seed=11), loan_applications(n_rows=300, seed=11))
    assert not loan_applications(n_rows=300, seed=11).equals(loan_applications(n_rows=300, seed=12))


def test_loan_ids_are_unique(loan: Sample) -> None:
    assert loan.frame[loan.id_column].is_unique


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_passes_check_with_its_own_roles(name: str) -> None:
    sample = load_sample(name)
    schema, report = check(sample.frame, sample.target, id_column=sample.id_column,
                           sensitive=sample.sensitive, pii=sample.pii)
    assert sample.name == name
    assert report.n_rows == len(sample.frame) > 100
    assert len(schema.classes) >= 2
    assert schema.features
    assert not set(schema.features) & ({sample.id_column} | set(sample.pii) | set(sample.sensitive))


def test_wine_has_three_classes_and_breast_cancer_two() -> None:
    assert len(check(load_sample("wine").frame, "target")[0].classes) == 3
    assert check(load_sample("breast_cancer").frame, "target")[0].classes == ("benign", "malignant")


def test_unknown_sample_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="choose one of"):
        load_sample("iris")
