"""Likely label errors: cleanlab's confident learning on out-of-fold probabilities of the project's model.

"These given labels look wrong": every labelled row of the review pool gets a probability for
each class from a model that never saw that row (``cross_val_predict``, seeded folds, threads
pinned), then cleanlab flags the rows whose label disagrees with what the data predicts
(``filter.find_label_issues``, pruned by the estimated noise rate) and scores every row
(``rank.get_label_quality_scores``, self-confidence: the out-of-fold probability of the given
label; low = likely wrong). Like ``cleanlab.rank``, the core (:func:`rank_label_issues`) takes
labels and probabilities, never a model, so it is tested without training.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues as cleanlab_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from hitl_core.data import Dataset, Schema
from hitl_core.models import build_pipeline, threads_limited

FOLDS = 5
MAX_ROWS = 20_000  # beyond this, a seeded sample (5 fits of the project's model on up to 16k rows each)
MIN_PER_CLASS = 2  # a class needs a row in at least two folds to be predicted out of fold


def out_of_fold_proba(kind: str, schema: Schema, X: pd.DataFrame, y: np.ndarray, *, folds: int = FOLDS,
                      seed: int = 0, threads: int = 1) -> np.ndarray:
    """Probabilities (n_rows, n_classes in sorted order of ``y``) from models that never saw the row they score."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threads_limited(threads):
        return cross_val_predict(build_pipeline(kind, schema, seed=seed), X, y, cv=splitter, method="predict_proba")


def rank_label_issues(labels: pd.Series, proba: np.ndarray, classes: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Every row ranked by how likely its label is wrong, with cleanlab's verdict.

    Parameters
    ----------
    labels : the given labels as text, indexed by row key (no missing values)
    proba : out-of-fold probabilities, shape (n_rows, len(classes)), columns in ``classes`` order

    Returns
    -------
    Frame indexed like ``labels`` with ``label``, ``suggested`` (the most probable class out of
    fold), ``quality`` (probability of the given label out of fold: low = likely wrong),
    ``likely_error`` (flagged by confident learning, pruned by the estimated noise rate) and ``rank``
    (1 = lowest quality, most likely wrong), sorted by rank.
    """
    position = {c: j for j, c in enumerate(classes)}
    codes = labels.astype(str).map(position).to_numpy(dtype=int)
    quality = get_label_quality_scores(codes, proba, method="self_confidence")
    flagged = cleanlab_issues(codes, proba, filter_by="prune_by_noise_rate", n_jobs=1)
    frame = pd.DataFrame({"label": labels.astype(str).to_numpy(),
                          "suggested": np.asarray(classes, dtype=object)[proba.argmax(axis=1)],
                          "quality": quality, "likely_error": flagged}, index=labels.index)
    frame = frame.sort_values("quality", kind="stable")  # cleanlab's ranking; the flag is its own column
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame


@dataclass(frozen=True)
class LabelIssues:
    """The ranked rows and what was checked; ``reason`` says why nothing could be, when so."""

    ranked: pd.DataFrame  # rank_label_issues
    n_checked: int
    n_labelled: int  # labelled pool rows (n_checked is smaller when they were sampled)
    folds: int
    reason: str = ""

    @property
    def flagged(self) -> pd.DataFrame:
        return self.ranked[self.ranked["likely_error"]]

    def sentence(self) -> str:
        """What was found, with the numbers behind it."""
        if self.reason:
            return self.reason
        sampled = (f" (a seeded sample of {self.n_checked:,} of the {self.n_labelled:,} labelled rows)"
                   if self.n_checked < self.n_labelled else "")
        return (f"Confident learning flags {len(self.flagged):,} of {self.n_checked:,} labelled pool rows{sampled} "
                f"whose label looks wrong: a model trained on the other {self.folds - 1} of {self.folds} folds gives "
                "another class clearly more probability. Quality = the probability it gives the row's label.")


def find_label_issues(dataset: Dataset, labels: pd.Series, model_kind: str, *, seed: int = 0, threads: int = 1,
                      folds: int = FOLDS, max_rows: int = MAX_ROWS) -> LabelIssues:
    """Likely wrong labels among the labelled rows of the review pool (``labels``: effective labels by row key)."""
    pool = labels.reindex(dataset.rows("train")).dropna().astype(str)
    n_labelled = len(pool)
    if n_labelled > max_rows:
        pool = pool.sample(max_rows, random_state=seed)
    counts = pool.value_counts()
    usable = counts[counts >= MIN_PER_CLASS]
    if len(usable) < 2:
        return LabelIssues(pd.DataFrame(), 0, n_labelled, folds,
                           reason=f"Only {n_labelled:,} labelled pool row(s) in {len(counts)} class(es): checking "
                                  "labels needs at least two classes with two labelled rows each. Label more rows "
                                  "on the Review page.")
    pool = pool[pool.isin(usable.index)]
    folds = int(min(folds, usable.min()))
    classes = sorted(usable.index)
    proba = out_of_fold_proba(model_kind, dataset.schema, dataset.features.loc[pool.index], pool.to_numpy(),
                              folds=folds, seed=seed, threads=threads)
    return LabelIssues(rank_label_issues(pool, proba, classes), len(pool), n_labelled, folds)
