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
    """All metrics of ``METRIC_NAMES``; ``None`` where a metric is undefined (e.g. ROC AUC with one class present).

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
        "log_loss": skm.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=labels),
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
