"""Global SHAP: exact TreeSHAP on a seeded sample sized to a time budget, and how far an approximation ranks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap

from hitl_core.data import Dataset
from hitl_core.explain import (
    MIN_GLOBAL_ROWS, ShapExplainer, exact_budget, global_shap, importance, ranking_difference,
)
from hitl_core.models import fit
from hitl_core.samples import Sample


@pytest.fixture(scope="module")
def forest(loan: Sample, loan_schema) -> tuple[ShapExplainer, pd.DataFrame]:
    """A random forest on the loan pool (one-hot categorical, missing values) and a seeded sample of it."""
    data = Dataset.create("loan", loan.frame, loan_schema, seed=0)
    labels = data.labels.loc[data.rows("train")].dropna()
    X = data.features.loc[labels.index]
    model = fit("rf", loan_schema, X, labels)
    return ShapExplainer(model, loan_schema, X), X.sample(60, random_state=0)


def test_exact_global_shap_on_the_sample_equals_shaps_tree_explainer(forest) -> None:
    explainer, sample = forest
    tidy = global_shap(explainer, sample, "yes")
    encoded = explainer.preprocess.transform(sample)
    raw = shap.TreeExplainer(explainer.estimator)(encoded).values  # exact TreeSHAP, per encoded column
    j = list(explainer.estimator.classes_).index("yes")
    by_source = np.stack([np.bincount(explainer.sources, weights=raw[i, :, j], minlength=len(sample.columns))
                          for i in range(len(sample))])
    ours = tidy.pivot(index="row", columns="feature", values="shap").loc[sample.index, list(sample.columns)]
    np.testing.assert_allclose(ours.to_numpy(), by_source, atol=1e-12)


def test_the_approximate_view_really_differs_and_the_difference_is_measured(forest) -> None:
    explainer, sample = forest
    exact = importance(global_shap(explainer, sample, "yes"))
    approximate = importance(global_shap(explainer, sample, "yes", approximate=True))
    assert not np.allclose(exact.sort_index(), approximate.sort_index())  # Saabas is not TreeSHAP
    difference = ranking_difference(exact, approximate)
    assert -1 <= difference.spearman <= 1 and 0 <= difference.shared <= 3 and difference.k == 3
    assert ranking_difference(exact, exact).sentence() == "the same order; 3 of the top 3 features shared"


def test_ranking_difference_counts_rank_correlation_and_top_k_overlap() -> None:
    exact = pd.Series({"a": 0.9, "b": 0.5, "c": 0.4, "d": 0.1})
    swapped = pd.Series({"a": 0.5, "b": 0.9, "c": 0.1, "d": 0.4})  # top two swap, bottom two swap
    difference = ranking_difference(exact, swapped, k=2)
    assert difference.spearman == pytest.approx(0.6)
    assert difference.shared == 2
    lost = ranking_difference(exact, pd.Series({"a": 0.9, "b": 0.0, "c": 0.4, "d": 0.5}), k=2)
    assert lost.shared == 1 and lost.sentence() == f"rank correlation {lost.spearman:.2f}; 1 of the top 2 features shared"


def test_the_sample_is_sized_from_the_measured_cost_per_row(forest) -> None:
    explainer, sample = forest
    budget = exact_budget(explainer, sample.head(10), most=5000, budget_seconds=1.0)
    assert 0 < budget.seconds_per_row < 1
    assert budget.rows == min(5000, max(MIN_GLOBAL_ROWS, int(1.0 / budget.seconds_per_row)))
    assert exact_budget(explainer, sample.head(10), most=25, budget_seconds=1000.0).rows == 25  # capped by `most`
    assert exact_budget(explainer, sample.head(10), most=5000, budget_seconds=1e-6).rows == MIN_GLOBAL_ROWS
