"""Query strategies (which pool rows to ask a person about next) and triage (what a human review is worth).

Shaped like scikit-activeml: a strategy takes the pool's one label vector, where a missing value
(``None``/``NaN``) marks an unlabeled row, so there is no second "pool" structure to keep in sync;
it returns the positions of the rows to ask about, in asking order, and on request its score per
row (higher = ask sooner; ``NaN`` for rows that are not candidates). Shaped like cleanlab: the
functions take probabilities, committee probabilities or preprocessed features, never a model, so
any model works and tests need no training. Fitting helpers (:func:`embed`, :func:`fit_committee`)
sit apart at the end.

Only unlabeled rows are ever picked. Pass the training pool only: validation and held-out test
rows carry labels, so even if they are passed they are never candidates.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin_min

from hitl_core.data import Dataset, Schema
from hitl_core.models import FittedModel, fit, predict_with_confidence, threads_limited

STRATEGIES: dict[str, str] = {
    "random": "Random",
    "least_confident": "Least confident",
    "margin": "Margin",
    "entropy": "Entropy",
    "qbc": "Query by committee (KL divergence)",
    "qbc_vote": "Query by committee (vote entropy)",
    "diversity": "Diversity (k-means)",
    "coreset": "Diversity (core-set)",
    "hybrid": "Hybrid (margin, then k-means)",
}
UNCERTAINTY = {"least_confident": "least_confident", "margin": "margin", "entropy": "entropy"}
COMMITTEE = {"qbc": "kl_divergence", "qbc_vote": "vote_entropy"}
DIVERSITY = {"diversity": "kmeans", "coreset": "coreset"}
NEEDS_MODEL = frozenset({*UNCERTAINTY, *COMMITTEE, "hybrid"})  # their scores come from a trained model
NEEDS_FEATURES = frozenset({*DIVERSITY, "hybrid"})
COLD_START_LABELS = 10  # below this many labels (or with one class) a model's uncertainty means little
MAX_DIVERSITY_ROWS = 20_000  # k-means / core-set run on a seeded sample of at most this many candidates
MAX_CORESET_LABELLED = 5_000  # labelled rows the core-set distance is measured against (seeded sample)
HYBRID_POOL_FACTOR = 10  # hybrid clusters the (factor × batch size) most uncertain rows
_EPS = 1e-12


# --------------------------------------------------------------------------- scores per row
def _per_row(reduce: np.ufunc, values: np.ndarray) -> np.ndarray:
    """``reduce`` across each row's few class columns, column by column: numpy's ``axis=1`` reductions
    over 2-10 columns are ~10× slower at 1M rows than a handful of whole-column passes."""
    if values.shape[1] > 16:
        return reduce.reduce(values, axis=1)
    result = values[:, 0].copy()
    for j in range(1, values.shape[1]):
        reduce(result, values[:, j], out=result)
    return result


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """One minus the top-class probability; high = the model's best guess is weak."""
    top = _per_row(np.maximum, proba)
    return np.subtract(1.0, top, out=top)


def margin(proba: np.ndarray) -> np.ndarray:
    """Gap between the two most likely classes; small gap = the model is torn."""
    if proba.shape[1] == 2:  # the common binary case without a partition: 3× faster at 1M rows
        gap = proba[:, 1] - proba[:, 0]
        return np.abs(gap, out=gap)
    top2 = np.partition(proba, -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy of the predicted distribution (nats); high = probability spread over classes."""
    terms = np.clip(proba, _EPS, 1.0)
    np.log(terms, out=terms)
    terms *= proba
    total = _per_row(np.add, terms)
    return np.negative(total, out=total)


def vote_entropy(committee: np.ndarray) -> np.ndarray:
    """Entropy of the members' hard votes; high = the committee splits its votes.

    Parameters
    ----------
    committee : array of shape (n_members, n_rows, n_classes), each member's probabilities
    """
    n_members, n_rows, n_classes = committee.shape
    votes = committee.argmax(axis=2)  # (n_members, n_rows)
    share = np.stack([(votes == c).mean(axis=0) for c in range(n_classes)], axis=1)
    return entropy(share)


def kl_divergence(committee: np.ndarray) -> np.ndarray:
    """Mean KL divergence of each member from the consensus; high = members disagree on the probabilities.

    Parameters
    ----------
    committee : array of shape (n_members, n_rows, n_classes), each member's probabilities
    """
    members = np.clip(committee, _EPS, 1.0)
    consensus = members.mean(axis=0, keepdims=True)
    return (members * np.log(members / consensus)).sum(axis=2).mean(axis=0)


# --------------------------------------------------------------------------- the label vector
@dataclass(frozen=True)
class _Prepared:
    """A label vector with its unlabeled mask worked out once (:func:`query` hands it to the strategies)."""

    values: np.ndarray
    mask: np.ndarray
    labelled: np.ndarray  # positions of the labelled rows (few, in a pool worth querying)

    @classmethod
    def of(cls, labels) -> "_Prepared":
        values = labels.to_numpy() if isinstance(labels, pd.Series) else np.asarray(labels)
        mask = unlabeled(values)
        return cls(values, mask, np.flatnonzero(~mask))


def _labelled_positions(labels, candidates: np.ndarray) -> np.ndarray:
    return labels.labelled if isinstance(labels, _Prepared) else np.flatnonzero(~candidates)


def unlabeled(labels: Sequence | np.ndarray | pd.Series) -> np.ndarray:
    """Boolean mask of the rows without a label (``None`` or ``NaN``): the only rows a strategy may pick."""
    if isinstance(labels, _Prepared):
        return labels.mask
    values = labels.to_numpy() if isinstance(labels, (pd.Series, pd.Index)) else np.asarray(labels)
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.asarray(pd.isna(values), dtype=bool)


def _labelled_summary(labels: np.ndarray | pd.Series, mask: np.ndarray) -> tuple[int, int]:
    """How many rows carry a label, and how many distinct classes those labels hold."""
    if isinstance(labels, _Prepared):
        known = labels.values[labels.labelled]
    else:
        values = labels.to_numpy() if isinstance(labels, pd.Series) else np.asarray(labels)
        known = values[~mask]
    return len(known), len(pd.unique(known))


def _check_rows(name: str, array: np.ndarray | None, n_rows: int, ndim: int) -> np.ndarray:
    if array is None:
        raise ValueError(f"This strategy needs '{name}'; pass it for every row of the label vector.")
    array = np.asarray(array, dtype=float)
    axis = 1 if name == "committee" else 0
    if array.ndim != ndim or array.shape[axis] != n_rows:
        raise ValueError(f"'{name}' has shape {array.shape}; expected {ndim} dimensions with {n_rows} rows "
                         "(one per entry of the label vector).")
    return array


def _top(scores: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores among candidates, highest first (ties: lower position first)."""
    k = min(k, int(np.count_nonzero(candidates)))
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    masked = np.where(candidates, scores, -np.inf)
    unscored = np.isnan(masked)  # a candidate without a score (outside a diversity sample) still outranks non-candidates
    if unscored.any():
        masked[unscored] = np.finfo(float).min
    if k < len(masked):
        part = np.argpartition(masked, len(masked) - k)[len(masked) - k:]
    else:
        part = np.arange(len(masked))
    return part[np.lexsort((part, -masked[part]))][:k]


def _select(scores: np.ndarray, labelled: np.ndarray, k: int, return_scores: bool):
    """:func:`_top` then :func:`_finish` without a masked copy: works in place on ``scores``, the strategy's own.

    ``labelled`` holds the positions of the labelled rows. At 1M rows, masked copies, not the
    arithmetic, are what a query would pay on top of a bare ``argpartition``.
    """
    k = min(k, len(scores) - len(labelled))
    scores[labelled] = -np.inf
    if k <= 0:
        picked = np.empty(0, dtype=np.intp)
    else:
        kth = len(scores) - k
        part = np.argpartition(scores, kth)[kth:] if kth > 0 else np.arange(len(scores))
        picked = part[np.lexsort((part, -scores[part]))]
    if not return_scores:
        return picked
    scores[labelled] = np.nan
    return picked, scores


def _finish(picked: np.ndarray, scores: np.ndarray, candidates: np.ndarray, return_scores: bool):
    """Indices, and on request the scores with NaN for non-candidates (in place: ``scores`` is the strategy's own)."""
    if return_scores:
        np.copyto(scores, np.nan, where=~candidates)
    picked = np.asarray(picked, dtype=np.intp)
    return (picked, scores) if return_scores else picked


def _batch(batch_size: int) -> int:
    if int(batch_size) < 1:
        raise ValueError(f"batch_size is {batch_size}; ask for at least one row.")
    return int(batch_size)


# --------------------------------------------------------------------------- strategies
def random_sampling(labels, *, batch_size: int = 1, seed: int | np.random.Generator | None = None,
                    return_scores: bool = False):
    """Unlabeled rows in a seeded random order: the baseline every other strategy must beat.

    The score is a uniform draw per candidate, so the ranking and the batch agree.
    """
    candidates = unlabeled(labels)
    scores = np.random.default_rng(seed).random(len(candidates))
    return _select(scores, _labelled_positions(labels, candidates), _batch(batch_size), return_scores)


def uncertainty_sampling(labels, proba: np.ndarray, *,
                         method: Literal["least_confident", "margin", "entropy"] = "margin",
                         batch_size: int = 1, return_scores: bool = False):
    """The unlabeled rows the model is least sure of.

    Parameters
    ----------
    labels : array of shape (n_rows,), missing = unlabeled (a candidate)
    proba : array of shape (n_rows, n_classes), the model's probabilities for every row
    method : ``least_confident`` (1 - top probability), ``margin`` (1 - gap between the top two),
        ``entropy``; the score is higher for rows to ask sooner
    """
    candidates = unlabeled(labels)
    proba = _check_rows("proba", proba, len(candidates), 2)
    if method == "least_confident":
        scores = least_confidence(proba)
    elif method == "margin":
        scores = margin(proba)
        np.subtract(1.0, scores, out=scores)
    elif method == "entropy":
        scores = entropy(proba)
    else:
        raise ValueError(f"Unknown uncertainty method '{method}'; choose least_confident, margin or entropy.")
    return _select(scores, _labelled_positions(labels, candidates), _batch(batch_size), return_scores)


def query_by_committee(labels, committee: np.ndarray, *,
                       method: Literal["kl_divergence", "vote_entropy"] = "kl_divergence",
                       batch_size: int = 1, return_scores: bool = False):
    """The unlabeled rows a committee of models disagrees on most.

    Parameters
    ----------
    committee : array of shape (n_members, n_rows, n_classes), e.g. from :func:`committee_proba`
    method : ``kl_divergence`` (mean KL of members from the consensus) or ``vote_entropy``
    """
    candidates = unlabeled(labels)
    committee = _check_rows("committee", committee, len(candidates), 3)
    if committee.shape[0] < 2:
        raise ValueError("A committee needs at least two members.")
    if method == "kl_divergence":
        scores = kl_divergence(committee)
    elif method == "vote_entropy":
        scores = vote_entropy(committee)
    else:
        raise ValueError(f"Unknown committee method '{method}'; choose kl_divergence or vote_entropy.")
    return _select(scores, _labelled_positions(labels, candidates), _batch(batch_size), return_scores)


def diversity_sampling(labels, features: np.ndarray, *, method: Literal["kmeans", "coreset"] = "kmeans",
                       batch_size: int = 1, seed: int | np.random.Generator | None = None,
                       return_scores: bool = False, threads: int = 1):
    """Unlabeled rows that cover the feature space, needing no model (the cold-start strategy).

    ``kmeans``: cluster the candidates into ``batch_size`` groups and take the row nearest each
    centre (score: closeness to the nearest centre). ``coreset``: greedy k-centre, each pick the
    candidate farthest from every labelled or already picked row (score: distance to the nearest
    labelled row). Both run on a seeded sample of at most ``MAX_DIVERSITY_ROWS`` candidates.

    Parameters
    ----------
    features : array of shape (n_rows, n_features), e.g. :func:`embed` of the pool
    """
    candidates = unlabeled(labels)
    features = _check_rows("features", features, len(candidates), 2)
    k = _batch(batch_size)
    rng = np.random.default_rng(seed)
    positions = np.flatnonzero(candidates)
    sample = positions if len(positions) <= MAX_DIVERSITY_ROWS else \
        np.sort(rng.choice(positions, MAX_DIVERSITY_ROWS, replace=False))
    scores = np.full(len(candidates), np.nan)
    if len(sample) == 0:
        return _finish(np.empty(0, dtype=np.intp), scores, candidates, return_scores)
    with threads_limited(threads):
        if method == "kmeans":
            picked, closeness = _kmeans_picks(features, sample, positions, k, rng)
            scores[positions] = closeness
        elif method == "coreset":
            picked, distance = _coreset_picks(features, sample, np.flatnonzero(~candidates), k, rng)
            scores[sample] = distance
        else:
            raise ValueError(f"Unknown diversity method '{method}'; choose kmeans or coreset.")
    return _finish(picked, scores, candidates, return_scores)


def _kmeans_picks(features: np.ndarray, sample: np.ndarray, positions: np.ndarray, k: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The sampled row nearest each k-means centre, largest cluster first; closeness of every candidate."""
    k = min(k, len(sample))
    X = features[sample]
    model = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2**31 - 1))).fit(X)
    distance = model.transform(X)
    cluster = distance.argmin(axis=1)
    own = distance[np.arange(len(sample)), cluster]
    sizes = np.bincount(cluster, minlength=k)
    picked = [sample[np.flatnonzero(cluster == c)[own[cluster == c].argmin()]]
              for c in np.argsort(-sizes, kind="stable") if sizes[c]]
    if len(picked) < k:  # duplicate rows can leave clusters empty: fill with the farthest remaining rows
        rest = np.setdiff1d(sample, picked)
        far = rest[np.argsort(-own[np.searchsorted(sample, rest)], kind="stable")]
        picked += list(far[:k - len(picked)])
    _, to_centre = pairwise_distances_argmin_min(features[positions], model.cluster_centers_)
    return np.asarray(picked, dtype=np.intp), 1.0 / (1.0 + to_centre)


def _coreset_picks(features: np.ndarray, sample: np.ndarray, labelled: np.ndarray, k: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-centre over the sample; distance of each sampled row to the nearest labelled row."""
    X = features[sample]
    if len(labelled) > MAX_CORESET_LABELLED:
        labelled = rng.choice(labelled, MAX_CORESET_LABELLED, replace=False)
    if len(labelled):
        _, nearest = pairwise_distances_argmin_min(X, features[labelled])
    else:  # nothing labelled yet: start from the most central row
        nearest = np.linalg.norm(X - X.mean(axis=0), axis=1)
        nearest = nearest.max() - nearest
    initial = nearest.copy()
    picked = []
    for _ in range(min(k, len(sample))):
        best = int(np.argmax(nearest))
        picked.append(sample[best])
        nearest = np.minimum(nearest, np.linalg.norm(X - X[best], axis=1))
        nearest[best] = -np.inf
    return np.asarray(picked, dtype=np.intp), initial


def hybrid_sampling(labels, proba: np.ndarray, features: np.ndarray, *, batch_size: int = 1,
                    pool_factor: int = HYBRID_POOL_FACTOR, seed: int | np.random.Generator | None = None,
                    return_scores: bool = False, threads: int = 1):
    """Margin first, then diversity: k-means over the most uncertain rows, the most uncertain row per cluster.

    A batch of pure margin picks often holds near-duplicates (the same confusing region asked
    about ``batch_size`` times); clustering the ``pool_factor × batch_size`` most uncertain rows
    and taking one per cluster keeps the uncertainty and drops the duplicates. Score: margin's.
    """
    candidates = unlabeled(labels)
    proba = _check_rows("proba", proba, len(candidates), 2)
    features = _check_rows("features", features, len(candidates), 2)
    k = _batch(batch_size)
    scores = 1.0 - margin(proba)
    shortlist = _top(scores, candidates, max(k, pool_factor * k))
    if len(shortlist) <= k:
        return _finish(shortlist, scores, candidates, return_scores)
    rng = np.random.default_rng(seed)
    with threads_limited(threads):
        model = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2**31 - 1))).fit(features[shortlist])
    picked = [shortlist[model.labels_ == c][0] for c in range(k) if (model.labels_ == c).any()]  # shortlist is by score
    if len(picked) < k:
        picked += [p for p in shortlist if p not in set(picked)][:k - len(picked)]
    picked = np.asarray(picked, dtype=np.intp)
    picked = picked[np.lexsort((picked, -scores[picked]))]
    return _finish(picked, scores, candidates, return_scores)


# --------------------------------------------------------------------------- one entry point
@dataclass(frozen=True)
class Query:
    """What a strategy asked for, and why (the reason is shown to people as is)."""

    strategy: str  # the strategy asked for
    used: str  # the strategy applied: differs on a cold start
    indices: np.ndarray  # positions into the label vector, in asking order
    scores: np.ndarray  # shape (n_rows,), higher = ask sooner; NaN for rows that are not candidates
    reason: str

    @property
    def cold_start(self) -> bool:
        return self.used != self.strategy


def cold_start_reason(strategy: str, labels, *, has_model: bool = True,
                      min_labels: int = COLD_START_LABELS) -> str | None:
    """Why ``strategy`` cannot be trusted yet (too few labels, one class, no model); ``None`` when it can."""
    if strategy not in NEEDS_MODEL:
        return None
    if min_labels > 0:
        n_labelled, n_classes = _labelled_summary(labels, unlabeled(labels))
        if n_classes < 2:
            return f"the {n_labelled} labelled row(s) hold {n_classes} class(es); a model needs two"
        if n_labelled < min_labels:
            return (f"only {n_labelled} rows are labelled (fewer than {min_labels}), so the model's uncertainty "
                    "means little")
    return None if has_model else "no model has been trained yet"


def query(strategy: str, labels, *, proba: np.ndarray | None = None, features: np.ndarray | None = None,
          committee: np.ndarray | None = None, batch_size: int = 1,
          seed: int | np.random.Generator | None = None, min_labels: int = COLD_START_LABELS,
          threads: int = 1) -> Query:
    """Run one strategy by name; on a cold start fall back to diversity (or random without features) and say so.

    Parameters
    ----------
    strategy : a key of ``STRATEGIES``
    labels : array of shape (n_rows,), missing = unlabeled; labelled rows are never picked
    proba : array of shape (n_rows, n_classes); needed by the uncertainty strategies and hybrid
    features : array of shape (n_rows, n_features); needed by diversity, core-set and hybrid
    committee : array of shape (n_members, n_rows, n_classes); needed by the two committee strategies
    min_labels : below this many labelled rows a model-based strategy is a cold start; 0 turns the
        check off (the caller knows its model was trained on enough labels elsewhere)
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}.")
    labels = _Prepared.of(labels)
    has_model = committee is not None if strategy in COMMITTEE else proba is not None
    why = cold_start_reason(strategy, labels, has_model=has_model, min_labels=min_labels)
    used = strategy
    if why:
        used = "diversity" if features is not None else "random"
        how = "picks rows spread over the data" if used == "diversity" else "picks rows at random (no features given)"
        reason = f"Cold start: {why}; {STRATEGIES[used].lower()} {how} instead of {STRATEGIES[strategy].lower()}."
    else:
        reason = DESCRIPTIONS[strategy]
    if used == "random":
        indices, scores = random_sampling(labels, batch_size=batch_size, seed=seed, return_scores=True)
    elif used in UNCERTAINTY:
        indices, scores = uncertainty_sampling(labels, proba, method=UNCERTAINTY[used], batch_size=batch_size,
                                               return_scores=True)
    elif used in COMMITTEE:
        indices, scores = query_by_committee(labels, committee, method=COMMITTEE[used], batch_size=batch_size,
                                             return_scores=True)
    elif used in DIVERSITY:
        indices, scores = diversity_sampling(labels, features, method=DIVERSITY[used], batch_size=batch_size,
                                             seed=seed, return_scores=True, threads=threads)
    else:
        indices, scores = hybrid_sampling(labels, proba, features, batch_size=batch_size, seed=seed,
                                          return_scores=True, threads=threads)
    return Query(strategy=strategy, used=used, indices=indices, scores=scores, reason=reason)


DESCRIPTIONS: dict[str, str] = {
    "random": "Random order: the baseline the other strategies must beat.",
    "least_confident": "Rows whose most likely class has the lowest probability come first.",
    "margin": "Rows where the two most likely classes are closest come first (the model is torn).",
    "entropy": "Rows whose predicted probabilities are spread most evenly over the classes come first.",
    "qbc": "Rows a committee of models disagrees on most (mean KL divergence from the consensus) come first.",
    "qbc_vote": "Rows a committee of models splits its votes on most (vote entropy) come first.",
    "diversity": "One representative row per k-means cluster of the unlabeled rows, largest cluster first.",
    "coreset": "Rows farthest from everything already labelled come first (greedy core-set).",
    "hybrid": "The most uncertain rows (margin), thinned by k-means to one per cluster: no near-duplicates.",
}


def rank_pool(strategy: str, proba: pd.DataFrame | np.ndarray, *, labels=None, features: np.ndarray | None = None,
              committee: np.ndarray | None = None, batch_size: int = 20, seed: int = 0,
              min_labels: int = COLD_START_LABELS, threads: int = 1) -> pd.DataFrame:
    """The next batch a strategy asks for, in order, and every candidate's score.

    Only the batch is ranked and explained in words: formatting a reason for each of a million
    queued rows took seconds (the other candidates are ordered by ``score``).

    Parameters
    ----------
    proba : frame of shape (n_rows, n_classes) with ``p(<class>)`` columns (e.g. the review pool's), or
        an array; the frame's index becomes the result's index
    labels : effective labels aligned with ``proba`` (missing = unlabeled); labelled rows leave the
        queue (``score`` missing). ``None``: every row is a candidate and no cold-start check is made
        (the model exists and was trained elsewhere).

    Returns
    -------
    Frame indexed like ``proba`` with ``rank`` (1 = ask first; missing outside the batch), ``score``
    (higher = ask sooner), ``in_batch`` (the next ``batch_size`` rows) and ``reason`` (why a batch row
    is there, in words; empty elsewhere). ``frame.attrs`` holds ``strategy``, ``used`` and ``reason``
    (the whole queue's reason, e.g. a cold start).
    """
    index = proba.index if isinstance(proba, pd.DataFrame) else pd.RangeIndex(len(proba))
    classes = ([c[2:-1] if c.startswith("p(") and c.endswith(")") else c for c in map(str, proba.columns)]
               if isinstance(proba, pd.DataFrame) else [f"class {j}" for j in range(np.shape(proba)[1])])
    values = proba.to_numpy(dtype=float) if isinstance(proba, pd.DataFrame) else np.asarray(proba, dtype=float)
    if labels is None:
        labels, min_labels = np.full(len(values), np.nan), 0
    elif isinstance(labels, pd.Series):
        labels = labels.reindex(index) if isinstance(proba, pd.DataFrame) else labels
    result = query(strategy, labels, proba=values, features=features, committee=committee, batch_size=batch_size,
                   seed=seed, min_labels=min_labels, threads=threads)
    batch = np.asarray(result.indices, dtype=np.int64)
    rank = np.zeros(len(values), dtype=np.int64)
    rank[batch] = np.arange(1, len(batch) + 1)
    in_batch = rank > 0
    reasons = np.full(len(values), "", dtype=object)
    reasons[batch] = _row_reasons(result.used, values[batch], result.scores[batch], in_batch[batch], classes,
                                  cold_start=result.cold_start)
    # an explicit object Series: from a bare object array pandas 3 infers its string dtype (~120 ms at 1M rows)
    frame = pd.DataFrame({"rank": pd.arrays.IntegerArray(rank, ~in_batch), "score": result.scores,
                          "in_batch": in_batch, "reason": pd.Series(reasons, index=index, dtype=object)}, index=index)
    frame.attrs.update(strategy=strategy, used=result.used, reason=result.reason)
    return frame


def _row_reasons(used: str, proba: np.ndarray, scores: np.ndarray, in_batch: np.ndarray, classes: list[str], *,
                 cold_start: bool) -> list[str]:
    """One short sentence per queued row: the number behind its place in the queue."""
    top2 = np.argsort(-proba, axis=1)[:, :2] if proba.shape[1] >= 2 else np.zeros((len(proba), 2), dtype=int)
    reasons = []
    for i in range(len(proba)):
        first, second = top2[i]
        p1, p2 = proba[i, first], proba[i, second]
        if used == "random":
            text = "random draw"
        elif used == "least_confident":
            text = f"top class {classes[first]} at only {p1:.0%}"
        elif used in ("margin", "hybrid"):
            digits = 1 if round(100 * p1) == round(100 * p2) else 0  # 50.2% vs 49.8%, not 50% vs 50%
            text = f"torn: {classes[first]} {p1:.{digits}%} vs {classes[second]} {p2:.{digits}%}"
            if used == "hybrid" and in_batch[i]:
                text += ", one per cluster"
        elif used == "entropy":
            text = f"entropy {scores[i]:.2f} of at most {math.log(max(proba.shape[1], 2)):.2f}"
        elif used == "qbc":
            text = f"committee disagreement (KL) {scores[i]:.3f}"
        elif used == "qbc_vote":
            text = f"committee vote entropy {scores[i]:.2f}"
        elif used == "diversity":
            text = "representative of a cluster" if in_batch[i] else f"closeness to a cluster centre {scores[i]:.2f}"
        else:  # coreset
            text = "far from the labelled rows" + ("" if np.isnan(scores[i]) else f" (distance {scores[i]:.2f})")
        if cold_start:
            text = f"cold start: {text}"
        reasons.append(f"next batch · {text}" if in_batch[i] else text)
    return reasons


# --------------------------------------------------------------------------- gold rows in the queue
GOLD_REASON = "next batch · random draw"  # what a gold row's reason says: true (drawn at random), and unmarked


def mix_gold(ranked: pd.DataFrame, gold: Sequence[str], rate: float, *,
             seed: int | Sequence[int] = 0) -> pd.DataFrame:
    """Give a share ``rate`` of the ranked batch to gold rows (known answers), unmarked, at random places.

    The batch keeps its size: ``floor(rate × size)`` slots, plus one more with the probability of the
    remainder (so the long-run share is exactly ``rate``), go to gold rows drawn at random from
    ``gold`` (the rows this person has not answered yet); gold rows the strategy picked itself count
    towards the share, and the strategy's last picks make room for the others.

    Parameters
    ----------
    ranked : :func:`rank_pool`'s frame (``rank``, ``score``, ``in_batch``, ``reason``)
    gold : row keys of gold rows still to ask this person; keys outside ``ranked`` are ignored
    seed : same seed, same draw (a page rerun shows the same batch)
    """
    in_batch = ranked["in_batch"].to_numpy(dtype=bool)
    found = ranked.index.get_indexer(pd.Index(gold).unique())  # a hash lookup per gold row, not per queued row
    is_gold = np.zeros(len(ranked), dtype=bool)
    is_gold[found[found >= 0]] = True
    size = int(in_batch.sum())
    if rate <= 0 or size == 0 or not is_gold.any():
        return ranked
    rng = np.random.default_rng(seed)
    wanted = int(math.floor(rate * size)) + int(rng.random() < rate * size % 1)
    wanted -= int((is_gold & in_batch).sum())  # gold rows the strategy picked itself count already
    candidates = np.flatnonzero(is_gold & ~in_batch)
    picked = rng.permutation(candidates)[:max(0, min(wanted, len(candidates)))]
    if not len(picked):
        return ranked
    batch = np.flatnonzero(in_batch)
    batch = batch[np.argsort(ranked["rank"].iloc[batch].to_numpy(dtype=float, na_value=np.inf), kind="stable")]
    dropped = [p for p in batch[::-1] if not is_gold[p]][:len(picked)]  # the strategy's last non-gold picks
    order = [p for p in batch if p not in set(dropped)]
    for position, place in zip(picked, np.sort(rng.choice(size, len(picked), replace=False))):
        order.insert(int(place), position)
    rank = np.zeros(len(ranked), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    reasons = ranked["reason"].to_numpy(dtype=object, copy=True)
    reasons[picked], reasons[dropped] = GOLD_REASON, ""
    mixed = ranked.copy(deep=False)  # only three columns change; the scores are shared, not copied
    mixed["rank"] = pd.arrays.IntegerArray(rank, rank == 0)
    mixed["in_batch"] = rank > 0
    mixed["reason"] = pd.Series(reasons, index=ranked.index, dtype=object)
    return mixed


# --------------------------------------------------------------------------- model-side helpers
def embed(model: FittedModel, X: pd.DataFrame, *, threads: int = 1) -> np.ndarray:
    """Rows in the fitted pipeline's preprocessed space (``pipe[:-1].transform``), each column standardised.

    Standardising makes a distance weigh every encoded column alike: tree pipelines do not scale
    numbers, and an unscaled income would otherwise decide every diversity pick alone.
    """
    steps = getattr(model.estimator, "steps", None)
    if not steps or len(steps) < 2:
        raise ValueError(f"Model '{model.kind}' has no preprocessing step to embed rows with; use a pipeline model.")
    with threads_limited(threads):
        Z = np.asarray(model.estimator[:-1].transform(X), dtype=float)
    std = Z.std(axis=0)
    return (Z - Z.mean(axis=0)) / np.where(std > 0, std, 1.0)


CommitteeKind = Literal["bootstrap", "families"]
COMMITTEE_KINDS: dict[str, str] = {
    "bootstrap": "Bootstrap refits of the chosen model",
    "families": "Different model families (logistic regression, gradient boosting, random forest)",
}


def fit_committee(kind: str, schema: Schema, X: pd.DataFrame, y: pd.Series, *,
                  members: CommitteeKind = "bootstrap", n_members: int = 5, seed: int = 0,
                  threads: int = 1) -> list[FittedModel]:
    """A committee trained on the labelled rows: stratified bootstrap refits of ``kind``, or one model per family.

    A stratified bootstrap keeps every class in every member, so each member can be fitted.
    """
    if members == "families":
        return [fit(k, schema, X, y, seed=seed, threads=threads) for k in ("logreg", "hgb", "rf")]
    if members != "bootstrap":
        raise ValueError(f"Unknown committee '{members}'; choose one of {', '.join(COMMITTEE_KINDS)}.")
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y.to_numpy(dtype=object) == c) for c in pd.unique(y)]
    committee = []
    for m in range(n_members):
        rows = np.concatenate([rng.choice(g, len(g), replace=True) for g in groups])
        committee.append(fit(kind, schema, X.iloc[rows], y.iloc[rows], seed=seed + m, threads=threads))
    return committee


def committee_proba(members: list[FittedModel], X: pd.DataFrame, classes: tuple[str, ...], *,
                    threads: int = 1) -> np.ndarray:
    """Every member's probabilities on ``X``: array of shape (n_members, n_rows, n_classes)."""
    return np.stack([predict_with_confidence(m, X, classes, threads=threads).proba for m in members])


# --------------------------------------------------------------------------- triage


def triage(y_true, proba: np.ndarray, classes: tuple[str, ...] | list[str], *, human_accuracy: float = 1.0,
           thresholds: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """For each confidence threshold: the share of rows sent to a person and the accuracy of people + model.

    Rows whose confidence (top-class probability) is below the threshold go to a person, who is
    right with probability ``human_accuracy``; the model decides the rest. Accuracies are expected
    values, so the curve is exact, not one random draw.

    Parameters
    ----------
    y_true : array of shape (n,), true labels (e.g. the validation split)
    proba : array of shape (n, len(classes))
    thresholds : default 0, 0.01, …, 1

    Returns
    -------
    Frame with ``point`` ("model only", "threshold", "human only"), ``threshold``, ``to_human``
    (share of rows), ``n_to_human``, ``model_accuracy`` (on the rows the model keeps; NaN when it keeps
    none) and ``hybrid_accuracy``. The first row is the model-only end (nobody reviews), the last the
    human-only end (people review everything).
    """
    if not 0.0 <= human_accuracy <= 1.0:
        raise ValueError(f"human_accuracy is {human_accuracy}; give a probability between 0 and 1.")
    y_true = np.asarray(y_true, dtype=object).astype(str)
    proba = np.asarray(proba, dtype=float)
    if len(y_true) == 0 or proba.shape != (len(y_true), len(classes)):
        raise ValueError(f"triage needs one probability row per label: got {len(y_true)} labels and proba of "
                         f"shape {proba.shape} for {len(classes)} classes.")
    grid = np.linspace(0.0, 1.0, 101) if thresholds is None else np.asarray(thresholds, dtype=float)
    confidence = proba.max(axis=1)
    correct = np.asarray(classes, dtype=object)[proba.argmax(axis=1)].astype(str) == y_true
    order = np.argsort(confidence, kind="stable")
    sorted_conf = confidence[order]
    correct_below = np.concatenate([[0], np.cumsum(correct[order])])  # correct among the i least confident
    n = len(y_true)
    n_total_correct = int(correct.sum())
    to_human = np.concatenate([[0], np.searchsorted(sorted_conf, grid, side="left"), [n]])
    kept_correct = n_total_correct - correct_below[to_human]
    kept = n - to_human
    with np.errstate(invalid="ignore", divide="ignore"):
        model_accuracy = np.where(kept > 0, kept_correct / np.maximum(kept, 1), np.nan)
    frame = pd.DataFrame({
        "point": ["model only", *["threshold"] * len(grid), "human only"],
        "threshold": np.concatenate([[0.0], grid, [1.0]]),
        "to_human": to_human / n,
        "n_to_human": to_human,
        "model_accuracy": model_accuracy,
        "hybrid_accuracy": (kept_correct + human_accuracy * to_human) / n,
    })
    return frame


def validation_triage(model: FittedModel, dataset: Dataset, *, human_accuracy: float = 1.0,
                      thresholds: Sequence[float] | np.ndarray | None = None, threads: int = 1) -> pd.DataFrame:
    """:func:`triage` of ``model`` on the dataset's validation split (never the held-out test set)."""
    truth = dataset.labels.loc[dataset.rows("validation")].dropna()
    preds = predict_with_confidence(model, dataset.features.loc[truth.index], dataset.schema.classes, threads=threads)
    return triage(truth.to_numpy(), preds.proba, dataset.schema.classes, human_accuracy=human_accuracy,
                  thresholds=thresholds)
