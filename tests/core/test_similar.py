"""Similar past cases: the same neighbours as a brute-force search in the model's preprocessed space."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, loop
from hitl_core.data import Dataset
from hitl_core.models import fit
from hitl_core.records import DecisionRequest
from hitl_core.samples import Sample
from hitl_core.similar import GIVEN, CaseIndex, CaseSpace, sentence, share_agreeing, with_decisions
from tests.core.helpers import ACTOR


@pytest.fixture(scope="module", params=["logreg", "hgb", "rf"])
def loan_space(request, loan: Sample, loan_schema) -> tuple[Dataset, CaseSpace]:
    """The loan pool (categoricals, missing values, unlabeled rows) encoded by one fitted model family."""
    data = Dataset.create("loan", loan.frame, loan_schema, seed=0)
    pool = data.rows("train")
    labels = data.labels.loc[pool]
    model = fit(request.param, loan_schema, data.features.loc[labels.index[labels.notna()]], labels.dropna())
    return data, CaseSpace(model, data.features.loc[pool])


def brute_force(space: CaseSpace, labels: pd.Series, row: pd.DataFrame, k: int, exclude: str) -> pd.DataFrame:
    """Every labelled row's Euclidean distance to ``row`` in the encoded space, sorted: the reference."""
    labelled = labels.reindex(space.keys).notna().to_numpy()
    distances = np.linalg.norm(space.encoded[labelled] - space.encode(row)[0], axis=1)
    frame = pd.DataFrame({"row": space.keys[labelled], "distance": distances})
    frame = frame[frame["row"] != exclude].sort_values(["distance", "row"], kind="stable")
    return frame.head(k).reset_index(drop=True)


def test_similar_cases_equal_a_brute_force_search_over_the_labelled_rows(loan_space) -> None:
    data, space = loan_space
    labels = data.labels.loc[space.keys]
    assert labels.isna().sum() > 100  # the pool has unlabeled rows, which must never be a precedent
    index = CaseIndex(space, labels)
    assert len(index) == labels.notna().sum()
    for key in space.keys[[0, 5, 123, 700]]:
        row = data.features.loc[[key]]
        found = index.query(row, k=10, exclude=key)
        expected = brute_force(space, labels, row, 10, key)
        assert key not in set(found["row"])
        np.testing.assert_allclose(found["distance"], expected["distance"], rtol=1e-9, atol=1e-9)
        assert list(found["row"]) == list(expected["row"])  # continuous incomes: no ties on this fixture
        assert list(found["label"]) == list(labels.loc[found["row"]])


def test_the_search_is_in_the_models_preprocessed_space_not_on_raw_columns(loan_space, loan_schema) -> None:
    data, space = loan_space
    row = data.features.loc[[space.keys[3]]]
    np.testing.assert_allclose(space.encode(row), space.preprocess.transform(row))
    raw_width = len(loan_schema.features)
    assert space.encoded.shape == (len(space.keys), space.preprocess.transform(row).shape[1])
    assert space.encoded.shape[1] > raw_width  # employment_type is one-hot encoded


def test_a_new_decision_on_an_unlabeled_row_makes_it_a_precedent(loan_space) -> None:
    data, space = loan_space
    labels = data.labels.loc[space.keys]
    unlabeled = labels.index[labels.isna()][0]
    probe = data.features.loc[[unlabeled]]
    assert unlabeled not in set(CaseIndex(space, labels).query(probe, k=3)["row"])
    decided = labels.copy()
    decided[unlabeled] = "yes"
    found = CaseIndex(space, decided).query(probe, k=3)
    assert found.iloc[0]["row"] == unlabeled and found.iloc[0]["distance"] == pytest.approx(0.0)
    assert found.iloc[0]["label"] == "yes"


def test_cases_carry_who_decided_them_and_their_notes(store, wine, wine_schema) -> None:
    project, version = actions.create_project(store, ACTOR, name="wine", source="sample:wine", frame=wine.frame,
                                              schema=wine_schema, model_kind="logreg", retrain_policy="manual")
    data = store.load_dataset(project)
    pool = data.rows("train")
    space = CaseSpace(store.load_model(project.id, version.version), data.features.loc[pool])
    probe_key, neighbour = pool[0], None
    index = CaseIndex(space, data.labels.loc[pool])
    neighbour = index.query(data.features.loc[[probe_key]], k=1, exclude=probe_key).iloc[0]["row"]
    actions.record_decision(store, project.id, "bea", DecisionRequest(neighbour, "class_2", note="looks like a 2"))
    decisions = store.decisions(project.id)
    labels = loop.effective_labels(data.labels.loc[pool], decisions)
    cases = with_decisions(CaseIndex(space, labels).query(data.features.loc[[probe_key]], k=5, exclude=probe_key),
                           decisions)
    first = cases.iloc[0]
    assert (first["row"], first["label"], first["decided_by"], first["note"]) == (
        neighbour, "class_2", "bea", "looks like a 2")
    assert set(cases["decided_by"].iloc[1:]) == {GIVEN} and set(cases["note"].iloc[1:]) == {""}


def test_the_sentence_counts_cases_that_share_the_predicted_label() -> None:
    cases = pd.DataFrame({"row": list("abcdefghij"), "label": ["yes"] * 7 + ["no"] * 3, "distance": range(10)})
    assert share_agreeing(cases, "yes") == 7
    assert sentence(cases, "yes") == "7 of 10 similar past cases were labelled yes."
    assert sentence(cases.iloc[0:0], "yes").startswith("No labelled rows to compare with yet")


def test_an_index_without_labelled_rows_answers_with_no_cases(loan_space) -> None:
    data, space = loan_space
    nothing = pd.Series(pd.NA, index=space.keys, dtype=object)
    found = CaseIndex(space, nothing).query(data.features.loc[[space.keys[0]]], k=5)
    assert found.empty and list(found.columns) == ["row", "label", "distance"]


def test_one_row_at_a_time_and_at_least_one_case(loan_space) -> None:
    data, space = loan_space
    index = CaseIndex(space, data.labels.loc[space.keys])
    with pytest.raises(ValueError, match="one row at a time"):
        index.query(data.features.loc[space.keys[:2]])
    with pytest.raises(ValueError, match="at least one"):
        index.query(data.features.loc[space.keys[:1]], k=0)


def test_cli_explain_lists_the_similar_cases_a_brute_force_search_finds(tmp_path, loan: Sample, loan_schema) -> None:
    from hitl_core import cli
    from hitl_core.loop import fit_on_pool

    out = tmp_path / "explain.json"
    key = "100874"
    code = cli.main(["explain", "sample:loan", "--target", "approved", "--id", "application_id", "--pii", "email",
                     "--sensitive", "group", "--sensitive", "gender", "--row", key, "--similar", "7",
                     "--json", str(out)])
    assert code == 0
    similar = json.loads(out.read_text())["similar"]
    data = Dataset.create("loan", loan.frame, loan_schema, seed=0)
    model = fit_on_pool(data, data.labels, "logreg", seed=0)
    pool = data.rows("train")
    space = CaseSpace(model, data.features.loc[pool])
    expected = brute_force(space, data.labels.loc[pool], data.features.loc[[key]], 7, key)
    assert [s["row"] for s in similar] == list(expected["row"])
    np.testing.assert_allclose([s["distance"] for s in similar], expected["distance"], rtol=1e-9)
    assert [s["label"] for s in similar] == list(data.labels.loc[expected["row"]])


def test_a_pool_row_by_key_finds_what_its_transformed_row_finds(loan_space) -> None:
    data, space = loan_space
    index = CaseIndex(space, data.labels.loc[space.keys])
    for key in space.keys[[2, 400]]:
        by_key, by_row = index.similar_to(key, 8), index.query(data.features.loc[[key]], 8, exclude=key)
        assert list(by_key["row"]) == list(by_row["row"]) and key not in set(by_key["row"])
        np.testing.assert_allclose(by_key["distance"], by_row["distance"], atol=1e-12)
