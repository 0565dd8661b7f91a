"""What-if versions of two hitl_core hot spots, patched in only by ``python -m bench.loop --proposed``.

They are prototypes of proposed changes to ``hitl_core/evaluate.py`` and ``hitl_core/models.py``
(see bench/README.md); ``check_metrics`` holds the metrics prototype equal to the reference.

* ``classification_metrics``: the eight metrics from one integer confusion matrix (numpy
  ``bincount``) instead of eight sklearn calls that each re-validate and re-encode string labels
  (sklearn's ``confusion_matrix`` maps every label through a Python dict). ROC AUC stays sklearn's.
  Labels outside ``classes`` fall back to the reference implementation.
* ``threadpool_limits``: one ``ThreadpoolController`` made on first use and reused; a new
  ``threadpool_limits(...)`` re-scans every loaded shared library each time (~4 ms, 9 times per retrain).
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from hitl_core import evaluate, loop, models

_reference_metrics = evaluate.classification_metrics
_controller: ThreadpoolController | None = None


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...],
                           y_pred: np.ndarray | None = None) -> dict[str, float | None]:
    """Same contract and values as ``evaluate.classification_metrics``, from one confusion matrix."""
    labels = list(classes)
    k = len(labels)
    y_text = np.asarray(y_true, dtype=object).astype(str)
    index = pd.Index(labels, dtype=object)
    t = index.get_indexer(y_text)
    p = proba.argmax(axis=1) if y_pred is None else index.get_indexer(np.asarray(y_pred, dtype=object).astype(str))
    if k < 2 or len(t) == 0 or (t < 0).any() or (p < 0).any():
        return _reference_metrics(y_true, proba, classes, y_pred=y_pred)
    matrix = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp = np.diag(matrix)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    clipped = np.clip(proba, 1e-15, 1 - np.finfo(proba.dtype).eps)  # the reference's clip, then sklearn's
    result: dict[str, float | None] = {
        "accuracy": tp.sum() / len(t),
        "balanced_accuracy": float(np.mean(tp[support > 0] / support[support > 0])),
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
        "roc_auc": evaluate._roc_auc(y_text, proba, labels),
        "log_loss": float(np.mean(-np.log(clipped[np.arange(len(t)), t]))),
        "brier": _brier(t == 1, proba[:, 1]) if k == 2 else None,
    }
    return {name: (None if v is None or math.isnan(v) else float(v)) for name, v in result.items()}


def _brier(positive: np.ndarray, p: np.ndarray) -> float:
    """sklearn's two-column form (half the summed squared error over both columns)."""
    y = positive.astype(float)
    return float(np.mean(((1 - y) - (1 - p)) ** 2 + (y - p) ** 2) * 0.5)


def threadpool_limits(limits=None, user_api=None):
    """``threadpoolctl.threadpool_limits`` on one controller made once (after the model libraries loaded)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=limits, user_api=user_api)


@contextmanager
def applied():
    """Patch both prototypes into hitl_core for the duration (the bench process only)."""
    saved = [(loop, "classification_metrics", loop.classification_metrics),
             (evaluate, "classification_metrics", evaluate.classification_metrics),
             (models, "threadpool_limits", models.threadpool_limits)]
    loop.classification_metrics = evaluate.classification_metrics = classification_metrics
    models.threadpool_limits = threadpool_limits
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def check_metrics(trials: int = 300, seed: int = 0) -> float:
    """Largest gap between prototype and reference on random binary/multiclass data (raises if > 1e-12)."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for trial in range(trials):
        k = int(rng.integers(2, 5))
        classes = tuple(f"c{j}" for j in range(k))
        n = int(rng.integers(1, 400))
        proba = rng.dirichlet(np.ones(k) * rng.choice([0.2, 1.0, 5.0]), size=n)
        if trial % 5 == 0:
            proba = np.round(proba)  # hard 0/1 probabilities, as random forests give
            proba[proba.sum(axis=1) == 0, 0] = 1.0
        present = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)  # some classes absent
        y_true = np.asarray(classes, dtype=object)[rng.choice(present, size=n)]
        y_pred = np.asarray(classes, dtype=object)[rng.integers(0, k, n)] if trial % 3 == 0 else None
        a = _reference_metrics(y_true, proba, classes, y_pred=y_pred)
        b = classification_metrics(y_true, proba, classes, y_pred=y_pred)
        assert a.keys() == b.keys()
        for name in a:
            assert (a[name] is None) == (b[name] is None), (name, a[name], b[name])
            if a[name] is not None:
                gap = abs(a[name] - b[name])
                assert gap <= 1e-12, (trial, name, a[name], b[name])
                worst = max(worst, gap)
    return worst


if __name__ == "__main__":
    print(f"prototype metrics equal to hitl_core.evaluate within {check_metrics():.1e}")
