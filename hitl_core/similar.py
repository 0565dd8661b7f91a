"""Similar past cases: the labelled rows nearest to a row in the model's own feature space.

An expert reasons by precedent ("the last ten applications like this one were approved"), so the
panel beside a prediction lists the K labelled rows closest to it *as the model sees rows*: after
the pipeline's preprocessing (``pipe[:-1].transform``: imputed, one-hot encoded, scaled where the
model scales), with their labels, who decided them and their notes. Distances are Euclidean in that
space, searched with scikit-learn's ``NearestNeighbors``.

Two steps with different lifetimes, so the page can cache each for as long as it holds:
:class:`CaseSpace` encodes the pool once per model version; :class:`CaseIndex` fits the search over
the rows labelled *now* (given labels or human decisions), so a decision saved a moment ago is
already a precedent.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from hitl_core.models import FittedModel, threads_limited

DEFAULT_K = 10
GIVEN = "given label"  # who "decided" a row that no person has decided on: the dataset itself


class CaseSpace:
    """The pool's rows in one model version's preprocessed space: transformed once, read-only afterwards."""

    def __init__(self, model: FittedModel, features: pd.DataFrame):
        self.preprocess = model.estimator[:-1]
        self.keys = pd.Index(features.index.astype(str))
        with threads_limited(1):
            self.encoded = np.asarray(self.preprocess.transform(features), dtype=float)

    def encode(self, rows: pd.DataFrame) -> np.ndarray:
        """Rows (original columns) as the model sees them: (n_rows, n_encoded)."""
        with threads_limited(1):
            return np.asarray(self.preprocess.transform(rows), dtype=float)


class CaseIndex:
    """A nearest-neighbour search over the labelled rows of a :class:`CaseSpace`."""

    def __init__(self, space: CaseSpace, labels: pd.Series):
        """``labels``: effective label per row key (missing = unlabeled, left out of the search)."""
        aligned = labels.reindex(space.keys)
        labelled = aligned.notna().to_numpy()
        self.space = space
        self.keys = space.keys[labelled]
        self.key_array = self.keys.to_numpy(dtype=object)
        self.labels = aligned.to_numpy(dtype=object)[labelled]
        self.neighbours = NearestNeighbors().fit(space.encoded[labelled]) if labelled.any() else None

    def __len__(self) -> int:
        return len(self.keys)

    def query(self, row: pd.DataFrame, k: int = DEFAULT_K, *, exclude: str | None = None) -> pd.DataFrame:
        """The ``k`` labelled rows nearest to ``row`` (one row, original columns, e.g. an edited one), nearest first.

        ``exclude`` (usually the row's own key) is left out, so a labelled row is not its own precedent.

        Returns
        -------
        DataFrame with columns ``row`` (key), ``label`` and ``distance`` (Euclidean, preprocessed space).
        """
        if len(row) != 1:
            raise ValueError(f"Ask for the similar cases of one row at a time; got {len(row)} rows.")
        return self._nearest(self.space.encode(row), k, exclude)

    def similar_to(self, key: str, k: int = DEFAULT_K) -> pd.DataFrame:
        """:meth:`query` for a row of the pool by its key, from its cached encoding (a one-row transform costs
        ~40 ms), leaving the row itself out."""
        return self._nearest(self.space.encoded[[self.space.keys.get_loc(str(key))]], k, str(key))

    def _nearest(self, encoded: np.ndarray, k: int, exclude: str | None) -> pd.DataFrame:
        if k < 1:
            raise ValueError(f"Ask for at least one similar case; got k={k}.")
        if self.neighbours is None:
            return pd.DataFrame({"row": pd.Series(dtype=object), "label": pd.Series(dtype=object),
                                 "distance": pd.Series(dtype=float)})
        n = min(k + (exclude is not None), len(self.keys))
        with threads_limited(1):  # one query: threads only add start-up cost
            distances, positions = self.neighbours.kneighbors(encoded, n_neighbors=n)
        keys = self.key_array[positions[0]]
        kept = np.flatnonzero(keys != exclude)[:k]  # in numpy: a pandas filter costs more than the search
        return pd.DataFrame({"row": keys[kept], "label": self.labels[positions[0][kept]],
                             "distance": distances[0][kept]})


def with_decisions(cases: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """Each case with who decided its label, when, and their note (``Store.decisions``: latest per row).

    A row no person decided on is labelled by the dataset: ``decided_by`` is ``"given label"``.
    """
    latest = (decisions.sort_values("id").groupby("row_key", sort=False)[["user", "created_at", "note"]].last()
              if not decisions.empty else pd.DataFrame(columns=["user", "created_at", "note"]))
    found = latest.reindex(cases["row"].astype(str))
    return cases.assign(decided_by=found["user"].fillna(GIVEN).to_numpy(dtype=object),
                        decided_at=pd.to_datetime(found["created_at"].to_numpy(), utc=True),
                        note=found["note"].fillna("").to_numpy(dtype=object))


def share_agreeing(cases: pd.DataFrame, predicted: str) -> int:
    """How many of the cases carry the predicted label: precedent for (or against) the model."""
    return int((cases["label"].astype(str) == str(predicted)).sum())


def sentence(cases: pd.DataFrame, predicted: str) -> str:
    """"7 of 10 similar past cases were labelled yes", or what to do when there is no precedent yet."""
    if cases.empty:
        return "No labelled rows to compare with yet: label some rows and their precedents appear here."
    agreeing = share_agreeing(cases, predicted)
    return f"{agreeing} of {len(cases)} similar past cases were labelled {predicted}."

