"""The model catalogue: every family fits binary and multiclass data; predictions align to all classes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hitl_core.data import DataError, Schema, labels_as_text
from hitl_core.models import (
    MODEL_KINDS, FittedModel, build_pipeline, fit, predict_with_confidence,
)
from hitl_core.samples import Sample


@pytest.fixture(scope="module")
def loan_small(loan: Sample) -> tuple[pd.DataFrame, pd.Series]:
    """400 labelled loan rows: numeric and categorical features, binary target."""
    labels = labels_as_text(loan.frame[loan.target])
    rows = labels.index[labels.notna()][:400]
    return loan.frame.loc[rows], labels.loc[rows]


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_model_fits_binary_data_with_categoricals(kind: str, loan_small, loan_schema: Schema) -> None:
    frame, y = loan_small
    X = frame.loc[:, list(loan_schema.features)]
    model = fit(kind, loan_schema, X, y)
    preds = predict_with_confidence(model, X, loan_schema.classes)
    assert model.kind == kind and model.fit_seconds >= 0
    assert preds.proba.shape == (len(X), 2)
    np.testing.assert_allclose(preds.proba.sum(axis=1), 1.0)
    assert (preds.labels == y.to_numpy()).mean() > 0.6
    assert ((preds.confidence >= 0.5) & (preds.confidence <= 1.0)).all()


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_model_fits_multiclass_data(kind: str, wine: Sample, wine_schema: Schema) -> None:
    X, y = wine.frame.loc[:, list(wine_schema.features)], wine.frame[wine.target]
    model = fit(kind, wine_schema, X, y)
    preds = predict_with_confidence(model, X, wine_schema.classes)
    assert preds.proba.shape == (len(X), 3)
    np.testing.assert_allclose(preds.proba.sum(axis=1), 1.0)
    assert (preds.labels == y.to_numpy()).mean() > 0.9
    assert set(preds.labels) == set(wine_schema.classes)


def test_model_handles_missing_values_and_unseen_categories(loan_small, loan_schema: Schema) -> None:
    frame, y = loan_small
    X = frame.loc[:, list(loan_schema.features)].copy()
    model = fit("logreg", loan_schema, X, y)
    odd = X.head(3).copy()
    odd.loc[odd.index[0], "income"] = np.nan
    odd.loc[odd.index[1], "employment_type"] = None
    odd.loc[odd.index[2], "employment_type"] = "astronaut"
    preds = predict_with_confidence(model, odd, loan_schema.classes)
    assert np.isfinite(preds.proba).all()


def test_probabilities_align_to_the_full_class_list_when_a_class_is_missing_from_training(
        wine: Sample, wine_schema: Schema) -> None:
    labels = wine.frame[wine.target]
    seen = labels.isin(["class_0", "class_2"])
    X = wine.frame.loc[:, list(wine_schema.features)]
    model = fit("logreg", wine_schema, X[seen], labels[seen])
    preds = predict_with_confidence(model, X, wine_schema.classes)
    assert preds.classes == ("class_0", "class_1", "class_2")
    assert (preds.proba[:, 1] == 0).all()
    assert (preds.proba[:, [0, 2]] > 0).any(axis=0).all()
    np.testing.assert_allclose(preds.proba.sum(axis=1), 1.0)
    assert "class_1" not in set(preds.labels)


def test_predictions_frame_has_one_probability_column_per_class(wine: Sample, wine_schema: Schema) -> None:
    X = wine.frame.loc[:, list(wine_schema.features)]
    preds = predict_with_confidence(fit("logreg", wine_schema, X, wine.frame[wine.target]), X.head(5),
                                    wine_schema.classes)
    frame = preds.to_frame()
    assert list(frame.columns) == ["predicted", "confidence", "p(class_0)", "p(class_1)", "p(class_2)"]
    assert frame.index.equals(X.head(5).index)
    np.testing.assert_allclose(frame["confidence"], frame.iloc[:, 2:].max(axis=1))


def test_fit_refuses_a_single_class_with_a_clear_message(wine: Sample, wine_schema: Schema) -> None:
    only = wine.frame[wine.frame[wine.target] == "class_0"]
    with pytest.raises(DataError, match="only 1 class; label rows of at least two classes"):
        fit("logreg", wine_schema, only.loc[:, list(wine_schema.features)], only[wine.target])


def test_unknown_model_kind_is_refused(wine: Sample, wine_schema: Schema) -> None:
    with pytest.raises(ValueError, match="Unknown model 'svm'"):
        fit("svm", wine_schema, wine.frame.loc[:, list(wine_schema.features)], wine.frame[wine.target])


def test_fit_turns_numeric_labels_into_text(wine: Sample, wine_schema: Schema) -> None:
    X = wine.frame.loc[:, list(wine_schema.features)]
    y = pd.Series(np.where(wine.frame[wine.target] == "class_0", 1, 0), index=X.index)
    model = fit("logreg", wine_schema, X, y)
    assert list(model.estimator.classes_) == ["0", "1"]


def test_only_linear_models_scale_numeric_columns(wine_schema: Schema) -> None:
    def steps(kind: str) -> list[str]:
        numeric = build_pipeline(kind, wine_schema).named_steps["preprocess"].transformers[0][1]
        return [type(step).__name__ for _, step in numeric.steps]
    assert steps("logreg") == ["SimpleImputer", "StandardScaler"]
    assert steps("hgb") == ["SimpleImputer"]


def test_majority_baseline_predicts_the_most_frequent_class(wine: Sample, wine_schema: Schema) -> None:
    X, y = wine.frame.loc[:, list(wine_schema.features)], wine.frame[wine.target]
    model = fit("majority", wine_schema, X, y)
    preds = predict_with_confidence(model, X, wine_schema.classes)
    assert set(preds.labels) == {y.value_counts().idxmax()} == {"class_1"}
    np.testing.assert_allclose(preds.proba[0], y.value_counts(normalize=True).sort_index().to_numpy())


def test_random_baseline_predicts_several_classes(wine: Sample, wine_schema: Schema) -> None:
    X, y = wine.frame.loc[:, list(wine_schema.features)], wine.frame[wine.target]
    model = fit("random", wine_schema, X, y)
    drawn = model.estimator.predict(X)
    assert set(drawn) == set(wine_schema.classes)
    np.testing.assert_allclose(predict_with_confidence(model, X, wine_schema.classes).proba, 1 / 3)


def test_fitted_model_is_a_frozen_record(wine: Sample, wine_schema: Schema) -> None:
    model = fit("majority", wine_schema, wine.frame.loc[:, list(wine_schema.features)], wine.frame[wine.target])
    assert isinstance(model, FittedModel)
    with pytest.raises(AttributeError):
        model.kind = "rf"  # type: ignore[misc]
