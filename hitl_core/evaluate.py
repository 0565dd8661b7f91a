"""Classification metrics under scikit-learn's names, computed from labels and probabilities.

Functions take ``y_true`` and ``proba`` (never a model), so any model or baseline can be scored.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn import metrics as skm

METRIC_NAMES: tuple[str, ...] = (
    "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "log_loss", "brier",
)
LOWER_IS_BETTER = frozenset({"log_loss", "brier"})


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...],
                           y_pred: np.ndarray | None = None) -> dict[str, float | None]:
    """All metrics of ``METRIC_NAMES``, from one integer confusion matrix; same values as :func:`reference_metrics`.

    Eight scikit-learn calls on text labels re-validate and re-encode the labels eight times
    (25-60 ms each at 50k rows, six times a retrain: bench/loop.py); one ``bincount`` does the
    counting once. ROC AUC stays scikit-learn's; labels outside ``classes`` go to the reference.
    A test holds the two equal on random data. Parameters as :func:`reference_metrics`.
    """
    labels = list(classes)
    k = len(labels)
    index = pd.Index(labels, dtype=object)
    y_text = np.asarray(y_true, dtype=object).astype(str)
    t = index.get_indexer(y_text)
    p = proba.argmax(axis=1) if y_pred is None else index.get_indexer(np.asarray(y_pred, dtype=object).astype(str))
    if k < 2 or len(t) == 0 or (t < 0).any() or (p < 0).any():
        return reference_metrics(y_true, proba, classes, y_pred=y_pred)
    matrix = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    hits = np.diag(matrix)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(support + predicted > 0, 2 * hits / (support + predicted), 0.0)
    eps = np.finfo(proba.dtype).eps  # scikit-learn 1.9 clips at machine epsilon (not 1e-15) on both ends
    clipped = np.clip(proba, eps, 1 - eps)
    positive = (t == 1).astype(float)
    result: dict[str, float | None] = {
        "accuracy": hits.sum() / len(t),
        "balanced_accuracy": float(np.mean(hits[support > 0] / support[support > 0])),
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
        "roc_auc": _roc_auc(y_text, proba, labels),
        "log_loss": float(np.mean(-np.log(clipped[np.arange(len(t)), t]))),
        "brier": float(np.mean((positive - proba[:, 1]) ** 2)) if k == 2 else None,
    }
    return {name: (None if v is None or math.isnan(v) else float(v)) for name, v in result.items()}


def reference_metrics(y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...],
                      y_pred: np.ndarray | None = None) -> dict[str, float | None]:
    """All metrics of ``METRIC_NAMES`` by scikit-learn's own functions: the definition the fast path must match.

    Parameters
    ----------
    y_true : array of shape (n,), labels as text
    proba : array of shape (n, len(classes)), columns in ``classes`` order
    classes : all classes of the dataset; for a binary target the last one is the positive class
    y_pred : array of shape (n,), predicted labels; default: the most probable class (a random
        baseline passes its own draws, since its probabilities are all equal)
    """
    y_true = np.asarray(y_true, dtype=object).astype(str)
    labels = list(classes)
    if y_pred is None:
        y_pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    result: dict[str, float | None] = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        "precision_macro": skm.precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "f1_macro": skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "roc_auc": _roc_auc(y_true, proba, labels),
        "log_loss": skm.log_loss(y_true, proba, labels=labels),  # its own clip: a probability of 0 costs -log(eps)
        "brier": skm.brier_score_loss(y_true, proba[:, 1], pos_label=labels[1]) if len(labels) == 2 else None,
    }
    return {k: (None if v is None or math.isnan(v) else float(v)) for k, v in result.items()}


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> float | None:
    present = set(y_true)
    if len(present) < 2:
        return None
    if len(labels) == 2:
        return skm.roc_auc_score(y_true == labels[1], proba[:, 1])
    if present != set(labels):
        return None  # one-vs-rest AUC needs every class among the true labels
    scores = proba / proba.sum(axis=1, keepdims=True)
    return skm.roc_auc_score(y_true, scores, labels=labels, multi_class="ovr", average="macro")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> pd.DataFrame:
    """Confusion matrix as a frame: rows = true class, columns = predicted class."""
    matrix = skm.confusion_matrix(np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str), labels=list(classes))
    return pd.DataFrame(matrix, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
