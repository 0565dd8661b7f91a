"""Query strategies and triage: every strategy passes one template, then each picks the obviously right row."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hitl_core import active
from hitl_core.data import Dataset, Schema
from hitl_core.models import fit, predict_with_confidence
from hitl_core.samples import Sample
from hitl_core.simulate import SimulationConfig, compare

ALL = list(active.STRATEGIES)


# --------------------------------------------------------------------------- the shared template
def _pool(n: int = 60, n_labelled: int = 15, seed: int = 0) -> dict:
    """Probabilities, features and a committee for ``n`` rows, the first ``n_labelled`` labelled (3 classes)."""
    rng = np.random.default_rng(seed)
    labels = np.full(n, None, dtype=object)
    labels[:n_labelled] = np.resize(["a", "b", "c"], n_labelled)
    return {
        "labels": labels,
        "proba": rng.dirichlet([1, 1, 1], n),
        "features": rng.normal(size=(n, 4)),
        "committee": rng.dirichlet([1, 1, 1], (4, n)),
    }


def _query(strategy: str, pool: dict, **options) -> active.Query:
    return active.query(strategy, pool["labels"], proba=pool["proba"], features=pool["features"],
                        committee=pool["committee"], **options)


@pytest.mark.parametrize("strategy", ALL)
def test_strategy_returns_a_batch_of_distinct_unlabeled_rows(strategy):
    pool = _pool()
    result = _query(strategy, pool, batch_size=8, seed=1)
    assert result.used == strategy and not result.cold_start
    assert result.indices.dtype.kind == "i"
    assert len(result.indices) == 8
    assert len(set(result.indices.tolist())) == 8, "a batch never holds a row twice"
    assert (result.indices >= 15).all(), "labelled rows are never picked"
    assert result.reason


@pytest.mark.parametrize("strategy", ALL)
def test_strategy_scores_every_candidate_and_no_labelled_row(strategy):
    pool = _pool()
    scores = _query(strategy, pool, batch_size=5, seed=1).scores
    assert scores.shape == (60,)
    assert np.isnan(scores[:15]).all()
    assert np.isfinite(scores[15:]).all()


@pytest.mark.parametrize("strategy", ALL)
def test_strategy_is_reproducible_with_a_seed(strategy):
    pool = _pool()
    first, again = _query(strategy, pool, batch_size=6, seed=3), _query(strategy, pool, batch_size=6, seed=3)
    np.testing.assert_array_equal(first.indices, again.indices)
    np.testing.assert_array_equal(first.scores, again.scores)


@pytest.mark.parametrize("strategy", ALL)
def test_a_batch_larger_than_the_pool_returns_every_unlabeled_row_once(strategy):
    pool = _pool(n=25, n_labelled=15)
    result = _query(strategy, pool, batch_size=50, seed=0)
    assert sorted(result.indices.tolist()) == list(range(15, 25))


@pytest.mark.parametrize("strategy", ALL)
def test_a_fully_labelled_pool_yields_an_empty_batch(strategy):
    pool = _pool(n=20, n_labelled=20)
    assert len(_query(strategy, pool, batch_size=5, seed=0).indices) == 0


@pytest.mark.parametrize("strategy", ALL)
def test_labels_can_be_nan_floats_or_a_series(strategy):
    pool = _pool()
    as_float = np.where(pd.isna(pool["labels"]), np.nan, 1.0)
    as_float[:15] = np.resize([0.0, 1.0, 2.0], 15)
    as_series = pd.Series(pool["labels"], index=[f"r{i}" for i in range(60)])
    for labels in (as_float, as_series):
        result = active.query(strategy, labels, proba=pool["proba"], features=pool["features"],
                              committee=pool["committee"], batch_size=4, seed=1)
        assert (result.indices >= 15).all() and len(result.indices) == 4


@pytest.mark.parametrize("strategy", ALL)
def test_never_picks_validation_or_held_out_test_rows(strategy, wine: Sample, wine_schema: Schema):
    """Given the whole dataset's label vector, only unlabeled training-pool rows can be asked about."""
    dataset = Dataset.create("wine", wine.frame, wine_schema, seed=0)
    labels = dataset.labels.copy()
    pool = dataset.rows("train")
    known, unknown = pool[::4][:20], pool.difference(pool[::4][:20])  # every class among the 20 labelled rows
    labels.loc[unknown] = None
    X_known, y_known = dataset.features.loc[known], labels.loc[known]
    model = fit("logreg", wine_schema, X_known, y_known)
    proba = predict_with_confidence(model, dataset.features, wine_schema.classes).proba
    committee = active.committee_proba(active.fit_committee("logreg", wine_schema, X_known, y_known, n_members=3),
                                       dataset.features, wine_schema.classes)
    result = active.query(strategy, labels, proba=proba, features=active.embed(model, dataset.features),
                          committee=committee, batch_size=30, seed=0)
    picked = labels.index[result.indices]
    assert result.used == strategy and len(picked) == 30
    assert set(picked) <= set(unknown)
    assert not set(picked) & (set(dataset.rows("validation")) | set(dataset.rows("test")))


@pytest.mark.parametrize("function, kwargs", [
    (active.random_sampling, {}),
    (active.uncertainty_sampling, {"proba": "proba"}),
    (active.query_by_committee, {"committee": "committee"}),
    (active.diversity_sampling, {"features": "features"}),
    (active.hybrid_sampling, {"proba": "proba", "features": "features"}),
])
def test_strategy_functions_return_indices_and_scores_only_on_request(function, kwargs):
    pool = _pool()
    arguments = {k: pool[v] for k, v in kwargs.items()}
    indices = function(pool["labels"], **arguments, batch_size=3)
    assert isinstance(indices, np.ndarray) and len(indices) == 3
    indices, scores = function(pool["labels"], **arguments, batch_size=3, return_scores=True)
    assert scores.shape == (60,)


# --------------------------------------------------------------------------- each picks the obvious row
def test_margin_prefers_the_torn_row():
    proba = np.array([[0.9, 0.1], [0.51, 0.49], [0.7, 0.3], [0.2, 0.8]])
    assert active.uncertainty_sampling([None] * 4, proba, method="margin").tolist() == [1]
    assert active.margin(proba) == pytest.approx([0.8, 0.02, 0.4, 0.6])


def test_margin_and_least_confident_disagree_where_they_should():
    proba = np.array([[0.40, 0.35, 0.25],   # weakest top class: least confident asks here
                      [0.45, 0.44, 0.11],   # closest top two: margin asks here
                      [0.80, 0.10, 0.10]])
    labels = [None] * 3
    assert active.uncertainty_sampling(labels, proba, method="least_confident").tolist() == [0]
    assert active.uncertainty_sampling(labels, proba, method="margin").tolist() == [1]
    assert active.uncertainty_sampling(labels, proba, method="margin", batch_size=3).tolist() == [1, 0, 2]


def test_entropy_prefers_the_evenly_spread_row():
    proba = np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])
    assert active.uncertainty_sampling([None] * 3, proba, method="entropy").tolist() == [1]
    assert active.entropy(proba)[1] == pytest.approx(np.log(3))
    assert active.entropy(np.array([[1.0, 0.0]]))[0] == pytest.approx(0.0)


def test_vote_entropy_prefers_the_row_the_committee_splits_on():
    agree, split, lean = [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]
    committee = np.array([
        [agree, [0.8, 0.2], [0.7, 0.3]],
        [agree, [0.7, 0.3], [0.6, 0.4]],
        [agree, split, lean],
        [agree, split, [0.2, 0.8]],
    ])  # row 0: 4-0, row 1: 2-2, row 2: 3-1
    assert active.query_by_committee([None] * 3, committee, method="vote_entropy").tolist() == [1]
    assert active.vote_entropy(committee) == pytest.approx([0.0, np.log(2), -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))])


def test_kl_divergence_prefers_the_row_whose_probabilities_differ_most():
    committee = np.array([
        [[0.6, 0.4], [0.99, 0.01], [0.55, 0.45]],
        [[0.6, 0.4], [0.01, 0.99], [0.45, 0.55]],
    ])  # members agree on row 0, are opposite and confident on row 1, mildly apart on row 2
    scores = active.kl_divergence(committee)
    assert scores[0] == pytest.approx(0.0, abs=1e-9)
    assert active.query_by_committee([None] * 3, committee).tolist() == [1]
    assert active.query_by_committee([None] * 3, committee, batch_size=3).tolist() == [1, 2, 0]


def _three_clusters(rng: np.random.Generator, size: int = 10) -> np.ndarray:
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    return np.vstack([c + rng.normal(scale=0.1, size=(size, 2)) for c in centres])


def test_diversity_takes_one_row_from_each_cluster():
    features = _three_clusters(np.random.default_rng(0))
    picked = active.diversity_sampling([None] * 30, features, batch_size=3, seed=0)
    assert sorted(p // 10 for p in picked) == [0, 1, 2]


def test_coreset_asks_first_about_the_region_nothing_labelled_covers():
    features = _three_clusters(np.random.default_rng(0))
    labels = np.full(30, None, dtype=object)
    labels[:10] = "a"  # the first cluster is labelled
    labels[10:20] = "b"  # so is the second
    picked, scores = active.diversity_sampling(labels, features, method="coreset", batch_size=2, seed=0,
                                               return_scores=True)
    assert picked[0] // 10 == 2
    assert np.nanargmax(scores) // 10 == 2


def test_hybrid_skips_the_near_duplicate_that_margin_takes():
    proba = np.array([[0.50, 0.50], [0.50, 0.50], [0.52, 0.48], [0.9, 0.1], [0.95, 0.05]])
    features = np.array([[0.0, 0.0], [0.0, 0.001], [5.0, 5.0], [9.0, 0.0], [0.0, 9.0]])
    labels = [None] * 5
    assert sorted(active.uncertainty_sampling(labels, proba, batch_size=2).tolist()) == [0, 1]
    picked = active.hybrid_sampling(labels, proba, features, batch_size=2, pool_factor=2, seed=0)
    assert 2 in picked.tolist() and len({0, 1} & set(picked.tolist())) == 1


def test_random_sampling_is_uniform_over_the_unlabeled_rows():
    labels = np.full(10, None, dtype=object)
    labels[:5] = "a"
    counts = np.zeros(10)
    for seed in range(2000):
        counts[active.random_sampling(labels, batch_size=1, seed=seed)] += 1
    assert counts[:5].sum() == 0
    assert counts[5:] / 2000 == pytest.approx([0.2] * 5, abs=0.04)


# --------------------------------------------------------------------------- cold start
def test_cold_start_with_one_class_falls_back_to_diversity_and_says_so():
    pool = _pool(n_labelled=0)
    pool["labels"][:3] = "a"
    result = _query("margin", pool, batch_size=4, seed=0)
    assert result.cold_start and result.used == "diversity" and result.strategy == "margin"
    assert "Cold start" in result.reason and "1 class" in result.reason and "diversity" in result.reason
    np.testing.assert_array_equal(
        result.indices, active.diversity_sampling(pool["labels"], pool["features"], batch_size=4, seed=0))


def test_cold_start_with_few_labels_and_no_features_falls_back_to_random():
    pool = _pool(n_labelled=4)
    result = active.query("entropy", pool["labels"], proba=pool["proba"], batch_size=3, seed=0)
    assert result.used == "random" and "only 4 rows are labelled" in result.reason


def test_no_model_yet_is_a_cold_start_even_with_many_labels():
    pool = _pool()
    result = active.query("qbc", pool["labels"], features=pool["features"], batch_size=3)
    assert result.used == "diversity" and "no model" in result.reason


def test_enough_labels_of_two_classes_is_not_a_cold_start():
    assert active.cold_start_reason("margin", ["a", "b"] * 5 + [None] * 5) is None
    assert active.cold_start_reason("random", [None] * 5) is None  # model-free strategies never need one
    assert active.cold_start_reason("margin", ["a"] * 20 + [None]) is not None


@pytest.mark.parametrize("strategy, missing", [("diversity", "features"), ("hybrid", "features")])
def test_missing_input_gets_a_clear_message(strategy, missing):
    pool = _pool()
    with pytest.raises(ValueError, match=f"needs '{missing}'"):
        active.query(strategy, pool["labels"], proba=pool["proba"], batch_size=3)


def test_bad_arguments_get_clear_messages():
    pool = _pool()
    with pytest.raises(ValueError, match="Unknown strategy 'smart'"):
        active.query("smart", pool["labels"])
    with pytest.raises(ValueError, match="at least one row"):
        active.query("margin", pool["labels"], proba=pool["proba"], batch_size=0)
    with pytest.raises(ValueError, match="expected 2 dimensions with 60 rows"):
        active.query("margin", pool["labels"], proba=pool["proba"][:10])


# --------------------------------------------------------------------------- the review queue
def _review_pool() -> tuple[pd.DataFrame, pd.Series]:
    proba = pd.DataFrame({"p(no)": [0.9, 0.51, 0.3, 0.6, 0.55, 0.99], "p(yes)": [0.1, 0.49, 0.7, 0.4, 0.45, 0.01]},
                         index=pd.Index(["k1", "k2", "k3", "k4", "k5", "k6"], name="row"))
    labels = pd.Series([None, None, None, None, "yes", "no"], index=proba.index, dtype=object)
    return proba, labels


def test_rank_pool_orders_the_queue_and_says_why():
    proba, labels = _review_pool()
    ranked = active.rank_pool("margin", proba, labels=labels, batch_size=2, min_labels=0)
    assert list(ranked.index) == list(proba.index)
    assert ranked["rank"].dropna().astype(int).to_dict() == {"k2": 1, "k4": 2}, "only the batch is ranked"
    assert ranked.loc[["k5", "k6"], "rank"].isna().all(), "labelled rows leave the queue"
    assert ranked.loc[["k5", "k6"], "score"].isna().all()
    assert ranked.loc[["k1", "k2", "k3", "k4"], "score"].notna().all()
    assert ranked.loc["k3", "score"] > ranked.loc["k1", "score"], "the rest of the queue is ordered by score"
    assert ranked["in_batch"].tolist() == [False, True, False, True, False, False]
    assert ranked.loc["k2", "reason"] == "next batch · torn: no 51% vs yes 49%"
    assert ranked.loc["k1", "reason"] == "", "reasons are formatted for the batch only"
    assert ranked.attrs["used"] == "margin"


def test_rank_pool_without_labels_scores_every_row_and_skips_the_cold_start_check():
    proba, _ = _review_pool()
    ranked = active.rank_pool("least_confident", proba, batch_size=3)
    assert ranked["score"].notna().all() and sorted(ranked["rank"].dropna()) == [1, 2, 3]
    assert ranked.attrs["used"] == "least_confident"
    assert ranked.sort_values("rank").index[0] == "k2"


def test_rank_pool_says_when_it_fell_back_on_a_cold_start():
    proba, labels = _review_pool()
    ranked = active.rank_pool("margin", proba, labels=labels, batch_size=2,
                              features=np.arange(12, dtype=float).reshape(6, 2))
    assert ranked.attrs["used"] == "diversity"
    assert ranked.attrs["reason"].startswith("Cold start")
    assert ranked.loc[ranked["in_batch"], "reason"].str.contains("cold start").all()


def test_rank_pool_aligns_labels_by_row_key():
    proba, labels = _review_pool()
    ranked = active.rank_pool("margin", proba, labels=labels.iloc[::-1], batch_size=1, min_labels=0)
    assert ranked.loc[["k5", "k6"], "rank"].isna().all()


# --------------------------------------------------------------------------- model-side helpers
def test_embed_uses_the_fitted_preprocessing_and_standardises_columns(loan: Sample, loan_schema: Schema):
    frame = loan.frame.dropna(subset=[loan.target]).head(300)
    model = fit("rf", loan_schema, frame[list(loan_schema.features)], frame[loan.target].astype(str))
    Z = active.embed(model, frame[list(loan_schema.features)])
    assert Z.shape[0] == 300
    assert Z.shape[1] == len(model.estimator[:-1].get_feature_names_out())
    assert np.abs(Z.mean(axis=0)).max() < 1e-9
    assert np.allclose(Z.std(axis=0)[Z.std(axis=0) > 0], 1.0)


def test_embed_refuses_a_baseline(wine: Sample, wine_schema: Schema):
    baseline = fit("majority", wine_schema, wine.frame[list(wine_schema.features)], wine.frame["target"])
    with pytest.raises(ValueError, match="no preprocessing step"):
        active.embed(baseline, wine.frame[list(wine_schema.features)])


@pytest.mark.parametrize("members, size", [("bootstrap", 4), ("families", 3)])
def test_committee_members_all_know_every_class(members, size, wine: Sample, wine_schema: Schema):
    rows = wine.frame.groupby("target").head(4)  # 12 rows, 4 per class: a bootstrap could easily drop a class
    X, y = rows[list(wine_schema.features)], rows["target"]
    committee = active.fit_committee("logreg", wine_schema, X, y, members=members, n_members=4, seed=0)
    proba = active.committee_proba(committee, wine.frame[list(wine_schema.features)], wine_schema.classes)
    assert proba.shape == (size, 178, 3)
    assert np.allclose(proba.sum(axis=2), 1.0)
    if members == "families":
        assert [m.kind for m in committee] == ["logreg", "hgb", "rf"]


# --------------------------------------------------------------------------- triage
def test_triage_by_hand():
    y_true = ["a", "a", "b", "b"]
    proba = np.array([[0.9, 0.1],    # right, confident
                      [0.4, 0.6],    # wrong, confidence 0.6
                      [0.2, 0.8],    # right, confidence 0.8
                      [0.45, 0.55]])  # right, confidence 0.55
    frame = active.triage(y_true, proba, ("a", "b"), human_accuracy=0.9, thresholds=[0.58, 0.7])
    assert frame["point"].tolist() == ["model only", "threshold", "threshold", "human only"]
    model_only, at_058, at_07, human_only = frame.to_dict("records")
    assert model_only["to_human"] == 0 and model_only["hybrid_accuracy"] == pytest.approx(0.75)
    assert at_058["n_to_human"] == 1 and at_058["hybrid_accuracy"] == pytest.approx((2 + 0.9) / 4)
    assert at_07["n_to_human"] == 2 and at_07["hybrid_accuracy"] == pytest.approx((2 + 1.8) / 4)
    assert at_07["model_accuracy"] == pytest.approx(1.0)
    assert human_only["to_human"] == 1 and human_only["hybrid_accuracy"] == pytest.approx(0.9)
    assert np.isnan(human_only["model_accuracy"])


def test_triage_curve_runs_from_the_model_alone_to_people_alone():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1, 1], 500)
    y_true = np.asarray(["a", "b", "c"])[rng.integers(0, 3, 500)]
    frame = active.triage(y_true, proba, ("a", "b", "c"), human_accuracy=0.95)
    assert len(frame) == 103
    assert frame["to_human"].is_monotonic_increasing
    model_alone = (np.asarray(["a", "b", "c"])[proba.argmax(axis=1)] == y_true).mean()
    assert frame["hybrid_accuracy"].iloc[0] == pytest.approx(model_alone)
    assert frame["hybrid_accuracy"].iloc[-1] == pytest.approx(0.95)
    assert frame["hybrid_accuracy"].between(min(model_alone, 0.95), 1.0).all()


def test_a_perfect_human_only_ever_helps():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([2, 2], 300)
    y_true = np.where(rng.random(300) < proba[:, 1], "b", "a")
    frame = active.triage(y_true, proba, ("a", "b"), human_accuracy=1.0)
    assert frame["hybrid_accuracy"].is_monotonic_increasing


def test_triage_refuses_impossible_input():
    with pytest.raises(ValueError, match="between 0 and 1"):
        active.triage(["a"], np.array([[1.0, 0.0]]), ("a", "b"), human_accuracy=1.2)
    with pytest.raises(ValueError, match="one probability row per label"):
        active.triage(["a", "b"], np.array([[1.0, 0.0]]), ("a", "b"))


def test_validation_triage_scores_the_validation_split_only(wine: Sample, wine_schema: Schema):
    dataset = Dataset.create("wine", wine.frame, wine_schema, seed=0)
    train = dataset.labels.loc[dataset.rows("train")]
    model = fit("logreg", wine_schema, dataset.features.loc[train.index], train)
    frame = active.validation_triage(model, dataset, human_accuracy=0.9)
    assert frame["n_to_human"].iloc[-1] == len(dataset.rows("validation")) == 36


# --------------------------------------------------------------------------- does it save labels?
def test_margin_beats_random_in_area_under_the_learning_curve(breast_cancer_dataset: Dataset):
    """On the breast cancer sample, averaged over five seeds, margin learns faster than random."""
    config = SimulationConfig(seed_size=10, batch_size=10, budget=60, metrics="accuracy")
    result = compare(breast_cancer_dataset, config, ["random", "margin"], repeats=5)
    random, margin = result["strategies"]["random"], result["strategies"]["margin"]
    assert margin["aulc"] > random["aulc"] + 0.005
    assert margin["labels_to_95"] <= random["labels_to_95"]


@pytest.fixture(scope="module")
def breast_cancer_dataset() -> Dataset:
    from hitl_core.data import check
    from hitl_core.samples import load_sample

    sample = load_sample("breast_cancer")
    return Dataset.create("breast_cancer", sample.frame, check(sample.frame, sample.target)[0], seed=0)
