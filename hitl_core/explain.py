"""SHAP and LIME explanations in the original column names, as tidy frames and small dataclasses.

SHAP explains the pipeline's last step on the preprocessed rows (SHAP rejects a whole Pipeline),
then sums the encoded columns (one-hot levels, scaled values) back to their source column, so the
additivity ``base_value + sum(contributions) == output`` still holds. Output spaces:
logistic regression and gradient boosting are explained in log-odds (per-class logits for
multiclass), random forests in probability. LIME perturbs the original columns directly, so its
weights are per source column by construction.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shap
from lime.lime_tabular import LimeTabularExplainer
from scipy.special import expit, softmax
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils import check_random_state

from hitl_core.data import Schema
from hitl_core.models import MISSING_CATEGORY, FittedModel, threads_limited
from hitl_core.records import VERDICTS

LIME_SAMPLES = 5000  # LIME's own default; measured ~0.2-0.8 s per row on 2 cores (DESIGN.md)
BACKGROUND_ROWS = 100  # seeded background rows of LinearExplainer: all kept (shap's Independent keeps <= 100)
PERMUTATION_BACKGROUND_ROWS = 50  # the model-agnostic fallback costs seconds per row; a smaller background
OUTPUT_SPACES = {"logreg": "log-odds", "hgb": "log-odds", "rf": "probability", "other": "probability"}


@dataclass(frozen=True)
class Explanation:
    """Why the model gave one row its score for one class."""

    method: str  # "shap" or "lime"
    row: str
    class_name: str
    base_value: float  # SHAP: expected output; LIME: intercept of the local surrogate
    output: float  # SHAP: model output in ``output_space``; LIME: the surrogate's prediction
    output_space: str
    contributions: pd.Series  # original column → contribution, largest |value| first
    feature_values: pd.Series  # original column → the row's value
    probability: float | None = None  # the output as the model's probability of the class (SHAP)
    base_probability: float | None = None  # the base value as a probability: the "average row" (SHAP)

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame: feature, value, contribution (largest first)."""
        return pd.DataFrame({"feature": self.contributions.index,
                             "value": [self.feature_values[f] for f in self.contributions.index],
                             "contribution": self.contributions.to_numpy()})

    def to_json(self) -> dict:
        return {"method": self.method, "row": self.row, "predicted_class": self.class_name,
                "output_space": self.output_space, "base_value": self.base_value, "output": self.output,
                "contributions": {k: float(v) for k, v in self.contributions.items()},
                **({"probability": self.probability} if self.probability is not None else {})}


def source_columns(model: FittedModel, schema: Schema) -> np.ndarray:
    """For each preprocessed column, the index of the original feature it came from.

    Numeric steps are one-to-one, less any column the imputer dropped for being all missing in
    the training rows; a one-hot encoder emits one column per kept category, plus one
    for the pooled infrequent categories (scikit-learn's public ``categories_`` and
    ``infrequent_categories_`` say how many).
    """
    preprocess = model.estimator[:-1][-1]
    features = list(schema.features)
    mapping: list[int] = []
    for _name, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or not len(columns):
            continue
        encoder = transformer[-1] if hasattr(transformer, "steps") else transformer
        if not isinstance(encoder, OneHotEncoder):
            # one-to-one, less any column the imputer dropped (all missing in the training rows)
            mapping.extend(features.index(c) for c in transformer.get_feature_names_out(columns))
            continue
        for i, column in enumerate(columns):
            infrequent = encoder.infrequent_categories_[i]
            width = len(encoder.categories_[i]) - (0 if infrequent is None else len(infrequent) - 1)
            mapping.extend([features.index(column)] * width)
    return np.asarray(mapping)


def aggregate(encoded: np.ndarray, sources: np.ndarray, n_features: int) -> np.ndarray:
    """Sum contributions of encoded columns (axis 1) into their source columns."""
    summing = np.zeros((len(sources), n_features))
    summing[np.arange(len(sources)), sources] = 1.0
    return np.einsum("ne...,ef->nf...", encoded, summing)


class ShapExplainer:
    """A SHAP explainer for one fitted pipeline; read-only once built, so it can be shared."""

    def __init__(self, model: FittedModel, schema: Schema, background: pd.DataFrame, *, seed: int = 0):
        self.schema = schema
        self.pipeline = model.estimator
        self.preprocess, self.estimator = self.pipeline[:-1], self.pipeline[-1]
        self.classes = tuple(str(c) for c in self.estimator.classes_)
        self.sources = source_columns(model, schema)
        sample = background.sample(min(BACKGROUND_ROWS, len(background)), random_state=seed)
        if isinstance(self.estimator, (HistGradientBoostingClassifier, RandomForestClassifier)):
            self.explainer = shap.TreeExplainer(self.estimator)
            self.kind = "hgb" if isinstance(self.estimator, HistGradientBoostingClassifier) else "rf"
        elif isinstance(self.estimator, LogisticRegression):
            masker = shap.maskers.Independent(self.preprocess.transform(sample), max_samples=BACKGROUND_ROWS)
            self.explainer = shap.LinearExplainer(self.estimator, masker)
            self.kind = "logreg"
        else:  # model-agnostic fallback: seconds per row, used only for unknown estimators
            masker = shap.maskers.Independent(self.preprocess.transform(sample),
                                              max_samples=PERMUTATION_BACKGROUND_ROWS)
            self.explainer = shap.PermutationExplainer(self.estimator.predict_proba, masker, seed=seed)
            self.kind = "other"
        self.output_space = OUTPUT_SPACES[self.kind]

    def values(self, X: pd.DataFrame, *, approximate: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SHAP values per original feature and class, base values and outputs.

        ``approximate`` uses Saabas-style path attributions on tree models (~1000x faster on
        random forests, still additive); exact TreeSHAP otherwise. Ignored for other models.

        Returns
        -------
        values : (n_rows, n_features, n_classes)
        base : (n_classes,)
        output : (n_rows, n_classes), the explained output: ``base + values.sum(axis=1)``
        """
        encoded = np.asarray(self.preprocess.transform(X), dtype=float)
        with threads_limited(1):  # small per-row work: threads only add overhead here
            if approximate and self.kind in ("hgb", "rf"):
                raw = self.explainer(encoded, approximate=True, check_additivity=False)
            else:
                raw = self.explainer(encoded)
        values = np.asarray(raw.values, dtype=float)
        base = np.atleast_1d(np.asarray(raw.base_values, dtype=float))
        base = base[0] if base.ndim == 2 else base
        if values.ndim == 2:  # binary model explained as one output: the positive class's log-odds
            values = np.stack([-values, values], axis=-1)
            base = np.array([-base[-1], base[-1]])
        per_feature = aggregate(values, self.sources, len(self.schema.features))
        return per_feature, base, base + per_feature.sum(axis=1)

    def model_output(self, X: pd.DataFrame) -> np.ndarray:
        """The model's own output in the explainer's space, (n_rows, n_classes): for checking additivity."""
        encoded = self.preprocess.transform(X)
        if self.output_space == "probability":
            return self.estimator.predict_proba(encoded)
        scores = np.asarray(self.estimator.decision_function(encoded), dtype=float)
        return np.stack([-scores, scores], axis=-1) if scores.ndim == 1 else scores

    def explain(self, X: pd.DataFrame, class_name: str) -> list[Explanation]:
        """One explanation per row of ``X`` for ``class_name``."""
        j = self._class_index(class_name)
        values, base, output = self.values(X)
        shown = X[list(self.schema.features)]
        probability, base_probability = self.as_probability(output)[:, j], self.as_probability(base[None, :])[0, j]
        return [
            Explanation(method="shap", row=str(key), class_name=class_name, base_value=float(base[j]),
                        output=float(output[i, j]), output_space=self.output_space,
                        contributions=_ranked(values[i, :, j], self.schema.features),
                        feature_values=shown.iloc[i], probability=float(probability[i]),
                        base_probability=float(base_probability))
            for i, key in enumerate(X.index)
        ]

    def as_probability(self, output: np.ndarray) -> np.ndarray:
        """Outputs in the explainer's space, (n_rows, n_classes), as class probabilities.

        Binary log-odds ``[-s, s]`` map through the logistic function (``expit(s)`` = P(positive));
        per-class logits of a multiclass model through softmax; probabilities stay as they are.
        """
        if self.output_space == "probability":
            return output
        return expit(output) if output.shape[1] == 2 else softmax(output, axis=1)

    def _class_index(self, class_name: str) -> int:
        if class_name not in self.classes:
            raise ValueError(f"The model was not trained on class '{class_name}'; choose one of {self.classes}.")
        return self.classes.index(class_name)


def _ranked(values: np.ndarray, names: tuple[str, ...]) -> pd.Series:
    order = np.argsort(-np.abs(values), kind="stable")  # in numpy: pandas' sort + reindex cost ~1 ms a row
    return pd.Series(values[order], index=[names[i] for i in order], name="contribution")


class LimeExplainer:
    """LIME over the original columns (categoricals as codes), seeded so the same row gives the same weights."""

    def __init__(self, model: FittedModel, schema: Schema, background: pd.DataFrame, *, seed: int = 0,
                 num_samples: int = LIME_SAMPLES):
        self.schema, self.pipeline, self.seed, self.num_samples = schema, model.estimator, seed, num_samples
        self._lock = threading.Lock()  # explain() re-seeds shared generators: one row at a time
        self.classes = tuple(str(c) for c in self.pipeline.classes_)
        features = list(schema.features)
        self.categories = {c: sorted(background[c].astype(object).where(background[c].notna(), MISSING_CATEGORY)
                                     .astype(str).unique())
                           for c in schema.categorical}
        self.medians = background[list(schema.numeric)].median()
        categorical_idx = [features.index(c) for c in schema.categorical]
        self.explainer = LimeTabularExplainer(
            self._encode(background), feature_names=features, class_names=list(self.classes),
            categorical_features=categorical_idx,
            categorical_names={features.index(c): self.categories[c] for c in schema.categorical},
            discretize_continuous=True, random_state=seed, mode="classification",
        )

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        """Rows as LIME's numbers: numeric columns median-filled, categoricals as level codes.

        Built as arrays, not column by column into a DataFrame (~15 ms a row in pandas 3)."""
        numeric = X[list(self.schema.numeric)].astype(float).fillna(self.medians).to_numpy()
        columns = {c: numeric[:, i] for i, c in enumerate(self.schema.numeric)}
        for c, levels in self.categories.items():
            text = X[c].astype(object).where(X[c].notna(), MISSING_CATEGORY).astype(str)
            columns[c] = text.map({v: i for i, v in enumerate(levels)}).fillna(0).to_numpy(dtype=float)
        return np.column_stack([columns[c] for c in self.schema.features])

    def _predict(self, encoded: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(encoded, columns=list(self.schema.features))
        for c, levels in self.categories.items():
            frame[c] = np.asarray(levels, dtype=object)[encoded[:, list(self.schema.features).index(c)].astype(int)]
        with threads_limited(1):  # 5,000 small predictions: OpenMP threads oversubscribe
            return self.pipeline.predict_proba(frame)

    def explain(self, X: pd.DataFrame, class_name: str) -> list[Explanation]:
        if class_name not in self.classes:
            raise ValueError(f"The model was not trained on class '{class_name}'; choose one of {self.classes}.")
        j = self.classes.index(class_name)
        with self._lock:
            return [self._explain_one(key, encoded, X, class_name, j) for key, encoded in zip(X.index, self._encode(X))]

    def _explain_one(self, key: object, encoded: np.ndarray, X: pd.DataFrame, class_name: str, j: int) -> Explanation:
        self.explainer.random_state = check_random_state(self.seed)  # same row, same samples:
        if self.explainer.discretizer is not None:  # LIME draws from two generators
            self.explainer.discretizer.random_state = check_random_state(self.seed)
        result = self.explainer.explain_instance(encoded, self._predict, labels=(j,),
                                                 num_features=len(self.schema.features), num_samples=self.num_samples)
        weights = np.zeros(len(self.schema.features))
        for index, weight in result.as_map()[j]:
            weights[index] = weight
        return Explanation(
            method="lime", row=str(key), class_name=class_name, base_value=float(result.intercept[j]),
            output=float(np.ravel(result.local_pred)[0]), output_space="probability",
            contributions=_ranked(weights, self.schema.features), feature_values=X.loc[key, list(self.schema.features)])


def top_k_agreement(first: pd.Series, second: pd.Series, k: int = 3) -> float:
    """Share of the top-``k`` features (by |contribution|) that two explanations have in common."""
    k = min(k, len(first), len(second))
    top = lambda s: set(s.abs().sort_values(ascending=False, kind="stable").index[:k])  # noqa: E731
    return len(top(first) & top(second)) / k if k else 1.0


WHOLE_EXPLANATION = "(whole explanation)"  # feedback that names no feature


def feedback_counts(feedback: pd.DataFrame, by: str) -> pd.DataFrame:
    """Verdicts on explanations per feature or per model version (``by``): a column per verdict and a total.

    ``feedback`` is :meth:`hitl_core.store.Store.explanation_feedback`; feedback on the explanation as a
    whole counts under ``WHOLE_EXPLANATION``. Features with the most "wrong" verdicts come first (where to
    look); versions stay in order.
    """
    keyed = feedback.assign(feature=feedback["feature"].fillna(WHOLE_EXPLANATION))
    table = pd.crosstab(keyed[by], keyed["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    table.columns.name = None
    table["total"] = table.sum(axis=1)
    return table.sort_values(["wrong", "total"], ascending=False, kind="stable") if by == "feature" else table


GLOBAL_SECONDS = 5.0  # the Explain page's budget for exact global SHAP
PROBE_ROWS = 10  # rows timed to measure a model's exact SHAP cost per row
MIN_GLOBAL_ROWS = 10


@dataclass(frozen=True)
class GlobalBudget:
    """How many rows exact SHAP explains within the budget, from this model's measured cost per row."""

    rows: int
    seconds_per_row: float
    budget_seconds: float


def exact_budget(explainer: ShapExplainer, probe: pd.DataFrame, *, most: int,
                 budget_seconds: float = GLOBAL_SECONDS) -> GlobalBudget:
    """Time exact SHAP on ``probe`` rows and size the global sample to fit ``budget_seconds`` (at most ``most``).

    Exact TreeSHAP on a random forest costs ~15-90 ms a row (DESIGN.md), a linear or boosted model
    well under 1 ms: the same budget gives a forest a few hundred rows and the others ``most``.
    """
    explainer.values(probe.head(1))  # the first call pays one-off set-up; not part of the cost per row
    start = time.perf_counter()
    explainer.values(probe)
    per_row = max((time.perf_counter() - start) / max(len(probe), 1), 1e-9)
    rows = min(most, max(MIN_GLOBAL_ROWS, int(budget_seconds / per_row)))
    return GlobalBudget(rows=rows, seconds_per_row=per_row, budget_seconds=budget_seconds)


@dataclass(frozen=True)
class RankingDifference:
    """How far an approximate global ranking is from the exact one, in two numbers a person can read."""

    spearman: float  # rank correlation of mean |SHAP| over all features: 1 = same order
    shared: int  # features the two top-k lists have in common
    k: int

    def sentence(self) -> str:
        """One line for the page: "rank correlation 0.93; 2 of the top 3 features shared"."""
        order = "the same order" if self.spearman >= 0.999 else f"rank correlation {self.spearman:.2f}"
        return f"{order}; {self.shared} of the top {self.k} features shared"


def ranking_difference(exact: pd.Series, approximate: pd.Series, k: int = 3) -> RankingDifference:
    """Spearman correlation and top-``k`` overlap of two importance rankings (mean |SHAP| per feature)."""
    aligned = approximate.reindex(exact.index).fillna(0.0)
    rho = float(spearmanr(exact.to_numpy(), aligned.to_numpy()).statistic) if len(exact) > 1 else 1.0
    k = min(k, len(exact))
    if np.isnan(rho):  # a constant ranking: the same only if the values are
        rho = 1.0 if np.allclose(exact.to_numpy(), aligned.to_numpy()) else 0.0
    return RankingDifference(spearman=rho,
                             shared=round(top_k_agreement(exact, aligned, k) * k), k=k)


def global_shap(explainer: ShapExplainer, X: pd.DataFrame, class_name: str, *,
                approximate: bool = False) -> pd.DataFrame:
    """Tidy SHAP values for many rows and one class: row, feature, value, shap (for importance and beeswarm)."""
    values, _, _ = explainer.values(X, approximate=approximate)
    j = explainer._class_index(class_name)
    features = list(explainer.schema.features)
    frame = pd.DataFrame(values[:, :, j], index=X.index, columns=features)
    tidy = frame.stack().rename("shap").reset_index()
    tidy.columns = ["row", "feature", "shap"]
    tidy["value"] = X[features].to_numpy(dtype=object).ravel().tolist()  # stack() is row-major, as is ravel()
    return tidy


def importance(tidy: pd.DataFrame) -> pd.Series:
    """Mean |SHAP| per feature, largest first."""
    return tidy.assign(abs_shap=tidy["shap"].abs()).groupby("feature")["abs_shap"].mean().sort_values(ascending=False)
