"""Likely label errors: cleanlab on out-of-fold probabilities finds labels that were planted wrong."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hitl_core import label_issues
from hitl_core.data import Dataset


def test_the_row_whose_label_the_model_finds_improbable_ranks_first():
    labels = pd.Series(["a", "a", "b", "b", "a"], index=["r1", "r2", "r3", "r4", "r5"])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.05, 0.95]])
    ranked = label_issues.rank_label_issues(labels, proba, ["a", "b"])
    assert ranked.index[0] == "r5" and ranked.iloc[0]["suggested"] == "b"
    assert ranked.iloc[0]["quality"] == pytest.approx(0.05)
    assert list(ranked["rank"]) == [1, 2, 3, 4, 5]
    assert ranked.loc["r5", "likely_error"] and not ranked.loc["r1", "likely_error"]


@pytest.mark.parametrize("kind", ["logreg", "rf"])
def test_planted_label_flips_are_found_in_the_top_k(wine, wine_schema, kind: str):
    dataset = Dataset.create("wine", wine.frame, wine_schema, seed=0)
    pool = dataset.rows("train")
    labels = dataset.labels.astype(str).copy()
    rng = np.random.default_rng(0)
    planted = pd.Index(rng.choice(pool, 12, replace=False))
    classes = list(wine_schema.classes)
    for key in planted:  # to the next class: a wrong label, not a random one that may be right
        labels[key] = classes[(classes.index(labels[key]) + 1) % len(classes)]
    found = label_issues.find_label_issues(dataset, labels, kind, seed=0)
    assert found.n_checked == len(pool) and found.folds == label_issues.FOLDS
    top = found.ranked.index[:len(planted)]
    recall = len(top.intersection(planted)) / len(planted)
    assert recall >= 0.7, f"{kind}: only {recall:.0%} of the planted flips in the top {len(planted)}"
    assert len(found.flagged.index.intersection(planted)) >= 7  # chance: 12 of 106 rows
    assert "Confident learning flags" in found.sentence()
    assert found.ranked.loc[planted, "suggested"].eq(dataset.labels.astype(str)[planted]).mean() >= 0.75


def test_same_seed_same_ranking(wine, wine_schema):
    dataset = Dataset.create("wine", wine.frame, wine_schema, seed=0)
    first = label_issues.find_label_issues(dataset, dataset.labels, "logreg", seed=3)
    again = label_issues.find_label_issues(dataset, dataset.labels, "logreg", seed=3)
    pd.testing.assert_frame_equal(first.ranked, again.ranked)


def test_too_few_labels_says_what_to_do(wine, wine_schema):
    dataset = Dataset.create("wine", wine.frame, wine_schema, seed=0)
    labels = pd.Series(np.nan, index=dataset.labels.index, dtype=object)
    labels[dataset.rows("train")[:3]] = wine_schema.classes[0]
    found = label_issues.find_label_issues(dataset, labels, "logreg")
    assert found.ranked.empty and "Label more rows" in found.sentence()


def test_a_large_pool_is_checked_on_a_seeded_sample(wine, wine_schema):
    dataset = Dataset.create("wine", wine.frame, wine_schema, seed=0)
    found = label_issues.find_label_issues(dataset, dataset.labels, "logreg", max_rows=60)
    assert found.n_checked == 60 and found.n_labelled == len(dataset.rows("train"))
    assert "seeded sample of 60" in found.sentence()
