"""Model catalogue, the preprocessing pipeline and predictions with confidence.

Every model is one scikit-learn ``Pipeline`` (impute → one-hot / scale → estimator) so that it
can be stored as a skops file (``hitl_core.model_files``), explained column by column and
retrained on any labels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from threadpoolctl import ThreadpoolController

from hitl_core.data import DataError, Schema

MODEL_KINDS: dict[str, str] = {
    "logreg": "Logistic regression",
    "hgb": "Histogram gradient boosting",
    "rf": "Random forest",
}
BASELINE_KINDS: dict[str, str] = {"majority": "Majority class", "random": "Random (uniform)"}
MISSING_CATEGORY = "missing"


@cache
def _threadpools() -> ThreadpoolController:
    """One controller for the process: building one scans every loaded library (~4 ms, 9 times a retrain)."""
    return ThreadpoolController()


def threads_limited(threads: int):
    """Pin OpenMP and BLAS threads for a fit or predict (the default oversubscribes a busy small machine)."""
    return _threadpools().limit(limits=threads)


def _categories_as_text(frame: pd.DataFrame) -> np.ndarray:
    """Categoricals as plain strings with an explicit 'missing' level (pandas 3 keeps NaN in astype(str))."""
    return frame.astype(object).where(frame.notna(), MISSING_CATEGORY).astype(str).to_numpy()


def _estimator(kind: str, seed: int):
    if kind == "logreg":
        return LogisticRegression(max_iter=2000)
    if kind == "hgb":
        return HistGradientBoostingClassifier(random_state=seed)
    if kind == "rf":
        # depth 12: unbounded trees break TreeSHAP (DESIGN.md), and depth 20 grew ~3,000 leaves a tree at 50k rows,
        # 0.29 s per one-row SHAP against 0.04 s at depth 12 for 1.8 points of accuracy (bench/explain.py)
        return RandomForestClassifier(n_estimators=100, max_depth=12, min_samples_leaf=2, n_jobs=1, random_state=seed)
    raise ValueError(f"Unknown model '{kind}'; choose one of {sorted(MODEL_KINDS)}.")


def build_pipeline(kind: str, schema: Schema, *, seed: int = 0) -> Pipeline:
    """Preprocessing + estimator for ``kind``; numeric columns are scaled only for linear models."""
    numeric_steps = [SimpleImputer(strategy="median")]
    if kind == "logreg":
        numeric_steps.append(StandardScaler())
    categorical = make_pipeline(
        FunctionTransformer(_categories_as_text, feature_names_out="one-to-one"),
        OneHotEncoder(handle_unknown="ignore", min_frequency=5, max_categories=30, sparse_output=False),
    )
    transformers = []
    if schema.numeric:
        transformers.append(("num", make_pipeline(*numeric_steps), list(schema.numeric)))
    if schema.categorical:
        transformers.append(("cat", categorical, list(schema.categorical)))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    return Pipeline([("preprocess", preprocess), ("model", _estimator(kind, seed))])


def build_baseline(kind: str, *, seed: int = 0) -> DummyClassifier:
    """Majority predicts the most frequent class (with class priors as probabilities); random is uniform."""
    if kind == "majority":
        return DummyClassifier(strategy="prior")
    if kind == "random":
        return DummyClassifier(strategy="uniform", random_state=seed)
    raise ValueError(f"Unknown baseline '{kind}'; choose one of {sorted(BASELINE_KINDS)}.")


@dataclass(frozen=True)
class FittedModel:
    """A fitted pipeline (or baseline) and how long its fit took."""

    kind: str
    estimator: object
    fit_seconds: float


def fit(kind: str, schema: Schema, X: pd.DataFrame, y: pd.Series, *, seed: int = 0, threads: int = 1) -> FittedModel:
    """Fit a model or baseline on labelled rows, with OpenMP/BLAS threads pinned to ``threads``."""
    if y.nunique() < 2:  # the user can fix this by labelling, so DataError (a ValueError) and not a crash
        raise DataError(
            f"The labelled training rows hold only {y.nunique()} class; label rows of at least two classes to train."
        )
    estimator = build_baseline(kind, seed=seed) if kind in BASELINE_KINDS else build_pipeline(kind, schema, seed=seed)
    start = time.perf_counter()
    with threads_limited(threads):
        estimator.fit(X, y.to_numpy(dtype=object).astype(str))
    return FittedModel(kind=kind, estimator=estimator, fit_seconds=time.perf_counter() - start)


@dataclass(frozen=True)
class Predictions:
    """Per-row predicted label, confidence (top-class probability) and class probabilities."""

    index: pd.Index
    classes: tuple[str, ...]
    proba: np.ndarray  # shape (n_rows, n_classes), columns in ``classes`` order

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.proba.argmax(axis=1)]

    @property
    def confidence(self) -> np.ndarray:
        return self.proba.max(axis=1)

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame: predicted, confidence, then one ``p(<class>)`` column per class."""
        frame = pd.DataFrame({"predicted": self.labels, "confidence": self.confidence}, index=self.index)
        for j, c in enumerate(self.classes):
            frame[f"p({c})"] = self.proba[:, j]
        return frame


def predict_with_confidence(model: FittedModel, X: pd.DataFrame, classes: tuple[str, ...], *,
                            threads: int = 1) -> Predictions:
    """Probabilities aligned to the dataset's full class list (a class absent from training gets 0)."""
    with threads_limited(threads):
        raw = model.estimator.predict_proba(X)
    proba = np.zeros((len(X), len(classes)))
    position = {c: j for j, c in enumerate(classes)}
    for j, c in enumerate(model.estimator.classes_):
        proba[:, position[str(c)]] = raw[:, j]
    return Predictions(index=X.index, classes=classes, proba=proba)
