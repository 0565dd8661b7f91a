"""Explanations: SHAP adds up to the model's own output, in original column names; LIME is seeded; what-if moves."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import shap
from scipy.special import expit, softmax

from hitl_core.data import Schema, check, labels_as_text
from hitl_core.explain import (
    BACKGROUND_ROWS, LimeExplainer, ShapExplainer, global_shap, importance, source_columns, top_k_agreement,
)
from hitl_core.models import FittedModel, fit, predict_with_confidence
from hitl_core.samples import Sample, load_sample

KINDS = ("logreg", "hgb", "rf")
DATASETS = ("wine", "breast_cancer", "loan")  # three classes; binary numeric; binary with a one-hot categorical
LIME_SAMPLES = 1000  # enough for stable weights on these small tables, 5x cheaper than the default


@dataclass(frozen=True)
class Case:
    """One model family fitted on one small sample, with its SHAP explainer."""

    name: str
    kind: str
    schema: Schema
    X: pd.DataFrame
    y: pd.Series
    model: FittedModel
    shap: ShapExplainer


def labelled(sample: Sample, n: int) -> tuple[Schema, pd.DataFrame, pd.Series]:
    """The sample's schema and its first ``n`` labelled rows (features only)."""
    schema = check(sample.frame, sample.target, id_column=sample.id_column, sensitive=sample.sensitive,
                   pii=sample.pii)[0]
    labels = labels_as_text(sample.frame[sample.target])
    rows = labels.index[labels.notna()][:n]
    return schema, sample.frame.loc[rows, list(schema.features)], labels.loc[rows]


@pytest.fixture(scope="module", params=[(d, k) for d in DATASETS for k in KINDS], ids=lambda p: f"{p[0]}-{p[1]}")
def case(request) -> Case:
    name, kind = request.param
    schema, X, y = labelled(load_sample(name), 400)
    model = fit(kind, schema, X, y)
    return Case(name, kind, schema, X, y, model, ShapExplainer(model, schema, X))


@pytest.fixture(scope="module")
def mixed() -> tuple[Schema, pd.DataFrame, pd.Series]:
    """Categoricals whose one-hot names collide by prefix ("a"="b_x" and "a_b"="x" both encode as
    ``cat__a_b_x``, beside a numeric "a_b_x"), and a column whose rare levels are pooled."""
    rng = np.random.default_rng(3)
    n = 300
    rare = np.array(["common1"] * 150 + ["common2"] * 140 + ["r1"] * 3 + ["r2"] * 4 + ["r3"] * 3, dtype=object)
    frame = pd.DataFrame({
        "a_b_x": rng.normal(size=n),
        "num": rng.normal(size=n),
        "a": rng.choice(["b_x", "c", "d"], n),
        "a_b": rng.choice(["x", "y"], n),
        "rare": rng.permutation(rare),
    })
    logit = (frame["a_b_x"] + 1.5 * (frame["a"] == "b_x") - (frame["a_b"] == "x")
             + 2.0 * frame["rare"].isin(["r1", "r2", "r3"]))
    y = pd.Series(np.where(rng.random(n) < expit(logit), "yes", "no"), index=frame.index)
    schema = check(frame.assign(y=y), "y")[0]
    assert schema.numeric == ("a_b_x", "num") and schema.categorical == ("a", "a_b", "rare")
    return schema, frame, y


def raw_shap(model: FittedModel, background: pd.DataFrame, encoded: np.ndarray, class_index: int) -> np.ndarray:
    """Per-encoded-column SHAP values straight from shap, for one class: (n_rows, n_encoded)."""
    estimator = model.estimator[-1]
    if model.kind == "logreg":
        sample = background.sample(min(BACKGROUND_ROWS, len(background)), random_state=0)  # ShapExplainer's
        masker = shap.maskers.Independent(model.estimator[:-1].transform(sample))
        values = shap.LinearExplainer(estimator, masker)(encoded).values
    else:
        values = shap.TreeExplainer(estimator)(encoded).values
    if values.ndim == 2:  # binary model explained as one output: the positive class
        return values if class_index == 1 else -values
    return values[:, :, class_index]


# --------------------------------------------------------------------------- SHAP additivity
def test_shap_contributions_add_up_to_the_models_own_output(case: Case) -> None:
    X = case.X.head(40)
    values, base, output = case.shap.values(X)
    n_classes = len(case.model.estimator.classes_)
    assert values.shape == (len(X), len(case.schema.features), n_classes)
    assert base.shape == (n_classes,)
    np.testing.assert_allclose(base + values.sum(axis=1), output, atol=1e-6)
    np.testing.assert_allclose(output, case.shap.model_output(X), atol=1e-6)


def test_model_output_is_the_model_itself_in_the_stated_space(case: Case) -> None:
    X = case.X.head(40)
    output, proba = case.shap.model_output(X), case.model.estimator.predict_proba(X)
    expected_space = "probability" if case.kind == "rf" else "log-odds"
    assert case.shap.output_space == expected_space
    if expected_space == "probability":
        np.testing.assert_allclose(output, proba, atol=1e-9)
    elif output.shape[1] == 2:
        np.testing.assert_allclose(output[:, 0], -output[:, 1])
        np.testing.assert_allclose(expit(output[:, 1]), proba[:, 1], atol=1e-9)
    else:
        np.testing.assert_allclose(softmax(output, axis=1), proba, atol=1e-9)


def test_every_class_explanation_adds_up_from_base_value_to_output(case: Case) -> None:
    X = case.X.iloc[[0, 7]]
    expected = case.shap.model_output(X)
    for j, class_name in enumerate(case.shap.classes):
        for i, explanation in enumerate(case.shap.explain(X, class_name)):
            assert explanation.row == str(X.index[i]) and explanation.class_name == class_name
            assert list(explanation.contributions.index) == sorted(case.schema.features, key=lambda f: (
                -abs(explanation.contributions[f]), case.schema.features.index(f)))
            assert explanation.base_value + explanation.contributions.sum() == pytest.approx(explanation.output, abs=1e-6)
            assert explanation.output == pytest.approx(expected[i, j], abs=1e-6)
            record = explanation.to_json()
            assert record["base_value"] + sum(record["contributions"].values()) == pytest.approx(record["output"], abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_with_missing_values_and_unseen_categories_still_add_up(kind: str, loan: Sample) -> None:
    schema, X, y = labelled(loan, 400)
    explainer = ShapExplainer(fit(kind, schema, X, y), schema, X)
    odd = X.head(3).copy()
    odd.loc[odd.index[0], "income"] = np.nan
    odd.loc[odd.index[1], "employment_type"] = None
    odd.loc[odd.index[2], "employment_type"] = "astronaut"
    values, base, output = explainer.values(odd)
    np.testing.assert_allclose(base + values.sum(axis=1), explainer.model_output(odd), atol=1e-6)


# --------------------------------------------------------------------------- one-hot back to source columns
def test_source_columns_map_every_encoded_column_to_its_source_even_when_names_collide(mixed) -> None:
    schema, frame, y = mixed
    model = fit("hgb", schema, frame, y)
    encoded_names = list(model.estimator[:-1].get_feature_names_out())
    assert encoded_names.count("cat__a_b_x") == 2  # ambiguous by name, so the mapping must not parse names
    assert "cat__rare_infrequent_sklearn" in encoded_names  # r1, r2, r3 pooled into one column
    sources = [schema.features[i] for i in source_columns(model, schema)]
    assert sources == ["a_b_x", "num", "a", "a", "a", "a_b", "a_b", "rare", "rare", "rare"]


@pytest.mark.parametrize("kind", KINDS)
def test_one_hot_contributions_sum_to_their_source_column(kind: str, mixed) -> None:
    schema, frame, y = mixed
    model = fit(kind, schema, frame, y)
    explainer = ShapExplainer(model, schema, frame)
    rows = frame[frame["rare"].isin(["r1", "r2"])].head(2).index.append(frame.index[:6])
    X = frame.loc[rows]
    encoded = model.estimator[:-1].transform(X)
    sources = source_columns(model, schema)
    assert len(sources) == encoded.shape[1]
    values, base, output = explainer.values(X)
    for j in range(len(explainer.classes)):
        raw = raw_shap(model, frame, encoded, j)
        for f, feature in enumerate(schema.features):
            by_hand = raw[:, sources == f].sum(axis=1)
            np.testing.assert_allclose(values[:, f, j], by_hand, atol=1e-9, err_msg=f"{feature}, class {j}")
        np.testing.assert_allclose(values[:, :, j].sum(axis=1), raw.sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(output, explainer.model_output(X), atol=1e-6)


def test_a_numeric_column_empty_in_the_training_rows_is_explained_as_zero(mixed) -> None:
    schema, frame, y = mixed
    sparse = frame.assign(num=np.nan)  # the imputer drops a column that was all missing when it was fitted
    model = fit("logreg", schema, sparse, y)
    assert len(source_columns(model, schema)) == model.estimator[:-1].transform(sparse.head(1)).shape[1]
    explainer = ShapExplainer(model, schema, sparse)
    X = frame.head(5)  # rows to explain may carry a value there: the model ignores it
    values, base, output = explainer.values(X)
    assert (values[:, schema.features.index("num"), :] == 0).all()
    np.testing.assert_allclose(output, explainer.model_output(X), atol=1e-6)


# --------------------------------------------------------------------------- LIME
@pytest.fixture(scope="module")
def loan_logreg(loan: Sample) -> Case:
    schema, X, y = labelled(loan, 400)
    model = fit("logreg", schema, X, y)
    return Case("loan", "logreg", schema, X, y, model, ShapExplainer(model, schema, X))


@pytest.mark.parametrize("kind", KINDS)
def test_lime_is_reproducible_with_a_fixed_seed(kind: str, loan: Sample) -> None:
    schema, X, y = labelled(loan, 400)
    model = fit(kind, schema, X, y)
    lime = LimeExplainer(model, schema, X, seed=1, num_samples=LIME_SAMPLES)
    first = lime.explain(X.iloc[[0]], "yes")[0]
    lime.explain(X.iloc[[5]], "yes")  # another row in between must not shift the sampler
    again = lime.explain(X.iloc[[0]], "yes")[0]
    fresh = LimeExplainer(model, schema, X, seed=1, num_samples=LIME_SAMPLES).explain(X.iloc[[0]], "yes")[0]
    pd.testing.assert_series_equal(first.contributions, again.contributions)
    pd.testing.assert_series_equal(first.contributions, fresh.contributions)
    assert (first.base_value, first.output) == (again.base_value, again.output)


def test_lime_with_another_seed_gives_other_weights(loan_logreg: Case) -> None:
    c = loan_logreg
    row = c.X.iloc[[0]]
    one = LimeExplainer(c.model, c.schema, c.X, seed=1, num_samples=LIME_SAMPLES).explain(row, "yes")[0]
    two = LimeExplainer(c.model, c.schema, c.X, seed=2, num_samples=LIME_SAMPLES).explain(row, "yes")[0]
    assert not np.allclose(one.contributions.reindex(c.schema.features), two.contributions.reindex(c.schema.features))


def test_lime_weights_are_per_original_column(mixed) -> None:
    schema, frame, y = mixed
    model = fit("logreg", schema, frame, y)
    explanation = LimeExplainer(model, schema, frame, num_samples=LIME_SAMPLES).explain(frame.iloc[[0]], "yes")[0]
    assert explanation.method == "lime" and explanation.output_space == "probability"
    assert sorted(explanation.contributions.index) == sorted(schema.features)
    assert np.isfinite(explanation.contributions).all() and (explanation.contributions != 0).any()
    assert explanation.feature_values.to_dict() == frame.iloc[0].to_dict()
    frame_view = explanation.to_frame()
    assert list(frame_view.columns) == ["feature", "value", "contribution"]
    assert frame_view["contribution"].abs().is_monotonic_decreasing


def test_lime_and_shap_agree_on_the_decisive_feature_of_a_linear_model(loan_logreg: Case) -> None:
    c = loan_logreg
    row = c.X.iloc[[0]]
    shap_e = c.shap.explain(row, "yes")[0]
    lime_e = LimeExplainer(c.model, c.schema, c.X, num_samples=LIME_SAMPLES).explain(row, "yes")[0]
    assert top_k_agreement(shap_e.contributions, lime_e.contributions, k=3) >= 1 / 3


# --------------------------------------------------------------------------- agreement
def test_top_k_agreement_counts_shared_features_by_absolute_size() -> None:
    first = pd.Series({"income": 2.0, "debt": -1.5, "age": 0.2, "score": 0.1})
    assert top_k_agreement(first, first, k=3) == 1.0
    assert top_k_agreement(first, -first, k=3) == 1.0  # signs do not matter, sizes do
    swapped = pd.Series({"income": 0.1, "debt": -1.5, "age": 0.3, "score": 2.0})
    assert top_k_agreement(first, swapped, k=2) == 0.5  # {income, debt} vs {score, debt}
    assert top_k_agreement(first, swapped, k=3) == pytest.approx(2 / 3)  # + age in both
    other = pd.Series({"x": 1.0, "y": 2.0})
    assert top_k_agreement(first, other, k=2) == 0.0
    assert top_k_agreement(first, other, k=10) == 0.0  # k clipped to the shorter series
    assert top_k_agreement(pd.Series(dtype=float), pd.Series(dtype=float)) == 1.0


# --------------------------------------------------------------------------- classes the model never saw
def test_explaining_a_class_the_model_never_saw_is_refused_with_a_message(wine: Sample, wine_schema: Schema) -> None:
    seen = wine.frame[wine.target].isin(["class_0", "class_1"])
    X = wine.frame.loc[seen, list(wine_schema.features)]
    model = fit("logreg", wine_schema, X, wine.frame.loc[seen, wine.target])
    shap_explainer = ShapExplainer(model, wine_schema, X)
    lime = LimeExplainer(model, wine_schema, X, num_samples=100)
    message = r"not trained on class 'class_2'; choose one of \('class_0', 'class_1'\)"
    with pytest.raises(ValueError, match=message):
        shap_explainer.explain(X.head(1), "class_2")
    with pytest.raises(ValueError, match=message):
        lime.explain(X.head(1), "class_2")
    with pytest.raises(ValueError, match=message):
        global_shap(shap_explainer, X.head(5), "class_2")


# --------------------------------------------------------------------------- global view
def test_global_shap_is_one_tidy_row_per_row_and_feature(case: Case) -> None:
    X = case.X.head(30)
    class_name = case.shap.classes[-1]
    tidy = global_shap(case.shap, X, class_name)
    features = list(case.schema.features)
    assert list(tidy.columns) == ["row", "feature", "shap", "value"]
    assert len(tidy) == len(X) * len(features)
    values = case.shap.values(X)[0][:, :, case.shap.classes.index(class_name)]
    wide = tidy.pivot(index="row", columns="feature", values="shap").loc[X.index, features]
    np.testing.assert_allclose(wide.to_numpy(), values)
    shown = tidy.pivot(index="row", columns="feature", values="value").loc[X.index, features]
    pd.testing.assert_frame_equal(shown, X[features], check_dtype=False, check_names=False)


def test_importance_ranks_features_by_mean_absolute_shap(case: Case) -> None:
    X = case.X.head(30)
    tidy = global_shap(case.shap, X, case.shap.classes[0])
    ranked = importance(tidy)
    assert sorted(ranked.index) == sorted(case.schema.features)
    assert ranked.is_monotonic_decreasing
    by_hand = np.abs(case.shap.values(X)[0][:, :, 0]).mean(axis=0)
    np.testing.assert_allclose(ranked.to_numpy(), np.sort(by_hand)[::-1])
    assert ranked.index[0] == case.schema.features[int(by_hand.argmax())]


def test_approximate_shap_on_a_forest_still_adds_up_and_is_faster(loan: Sample) -> None:
    schema, X, y = labelled(loan, 400)
    explainer = ShapExplainer(fit("rf", schema, X, y), schema, X)
    rows = X.head(200)
    values, base, output = explainer.values(rows, approximate=True)
    np.testing.assert_allclose(base + values.sum(axis=1), output, atol=1e-6)
    np.testing.assert_allclose(output, explainer.model_output(rows), atol=1e-6)
    exact = explainer.values(rows)[0]
    assert np.corrcoef(values.ravel(), exact.ravel())[0, 1] > 0.8  # approximate, yet the same story

    def best_of_3(approximate: bool) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            explainer.values(rows, approximate=approximate)
            times.append(time.perf_counter() - start)
        return min(times)
    assert best_of_3(approximate=True) < best_of_3(approximate=False) / 2


# --------------------------------------------------------------------------- what-if
def test_what_if_a_decisive_feature_changes_the_prediction(loan_logreg: Case) -> None:
    c = loan_logreg
    preds = predict_with_confidence(c.model, c.X, c.schema.classes).to_frame()
    refused = preds.index[preds["predicted"] == "no"][0]
    before = c.X.loc[[refused]]
    after = before.assign(income=before["income"] * 10, debt_to_income=0.0)
    changed = predict_with_confidence(c.model, after, c.schema.classes).to_frame()
    assert changed["predicted"].iloc[0] == "yes"
    assert changed["p(yes)"].iloc[0] > preds.loc[refused, "p(yes)"]
    was, now = c.shap.explain(before, "yes")[0], c.shap.explain(after, "yes")[0]
    assert now.contributions["income"] > was.contributions["income"]
    assert now.contributions["debt_to_income"] > was.contributions["debt_to_income"]
    assert now.base_value == pytest.approx(was.base_value) and now.output > 0 > was.output


# --------------------------------------------------------------------------- probabilities and the waterfall
def test_each_explanation_states_the_models_own_probability(case: Case) -> None:
    X = case.X.iloc[[0, 7]]
    proba = case.model.estimator.predict_proba(X)
    for j, class_name in enumerate(case.shap.classes):
        for i, explanation in enumerate(case.shap.explain(X, class_name)):
            assert explanation.probability == pytest.approx(proba[i, j], abs=1e-9)
            assert 0 < explanation.base_probability < 1


def test_the_waterfall_draws_base_and_output_from_zero_with_the_probability_beside(loan_logreg: Case) -> None:
    from hitl_core import charts

    c = loan_logreg
    proba = c.model.estimator.predict_proba(c.X)[:, list(c.shap.classes).index("yes")]
    unlikely = c.X.iloc[[int(np.argmin(proba))]]
    explanation = c.shap.explain(unlikely, "yes")[0]
    assert explanation.output < -4 and explanation.probability < 0.02  # far from the base value
    fig = charts.shap_waterfall(explanation)
    bars, markers = fig.data[0], fig.data[1]
    # base: an absolute bar from zero; output: a total bar from zero (no offset), ending where the steps end
    assert bars.measure[0] == "absolute" and bars.measure[-1] == "total" and bars.base is None
    assert bars.x[0] == pytest.approx(explanation.base_value)
    assert bars.x[0] + sum(bars.x[1:-1]) == pytest.approx(explanation.output, abs=1e-6)
    # the output marker sits at the output value, on the output's row
    assert list(markers.x) == pytest.approx([explanation.base_value, explanation.output])
    assert markers.y[1] == bars.y[-1]
    assert bars.y[-1] == f"output  {explanation.output:.2f} (p {explanation.probability:.3f})"
    title = fig.layout.title.text
    assert f"output {explanation.output:.2f} log-odds = probability {explanation.probability:.3f}" in title
    # the top axis reads the same positions as probabilities
    ticks = dict(zip(fig.layout.xaxis2.ticktext, fig.layout.xaxis2.tickvals))
    assert ticks["0.5"] == pytest.approx(0.0) and len(ticks) >= 3
    for text, at in ticks.items():
        assert at == pytest.approx(np.log(float(text) / (1 - float(text))))
    assert fig.layout.xaxis.range[0] < explanation.output < 0 < fig.layout.xaxis.range[1]


def test_a_forest_waterfall_is_in_probability_without_a_second_axis(loan: Sample) -> None:
    from hitl_core import charts

    schema, X, y = labelled(loan, 400)
    explanation = ShapExplainer(fit("rf", schema, X, y), schema, X).explain(X.head(1), "yes")[0]
    fig = charts.shap_waterfall(explanation)
    assert fig.layout.xaxis.title.text == "probability of 'yes'" and "xaxis2" not in fig.to_dict()["layout"]
    assert fig.data[1].x[1] == pytest.approx(explanation.output) == pytest.approx(explanation.probability)
    assert fig.data[0].y[-1] == f"output  {explanation.output:.3f}"
    assert f"output {explanation.output:.3f} (probability)" in fig.layout.title.text


def test_the_linear_explainer_keeps_exactly_the_seeded_background_rows_we_state(loan_logreg: Case) -> None:
    c = loan_logreg
    assert BACKGROUND_ROWS == 100  # what the README states
    sample = c.X.sample(BACKGROUND_ROWS, random_state=0)
    np.testing.assert_allclose(c.shap.explainer.masker.data, c.model.estimator[:-1].transform(sample))
    np.testing.assert_allclose(c.shap.explainer.mean, c.model.estimator[:-1].transform(sample).mean(axis=0))
