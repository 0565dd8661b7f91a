"""Agreement between people who labelled the same rows: kappa per pair, Fleiss and Krippendorff overall.

Built on a frame of *votes*: one row per (row, person), that person's latest decision on the row
(:func:`votes`). The statistics come from the libraries that define them — scikit-learn's
``cohen_kappa_score``, statsmodels' ``fleiss_kappa`` and the ``krippendorff`` package — so this
module only chooses rows and shapes tables. Works the same today (one label per row wins) and with
several reviewers per row, because a person's vote is always their own latest decision.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

VOTE_COLUMNS = ("row_key", "user", "label", "created_at", "predicted_label", "confidence")


def votes(decisions: pd.DataFrame, *, latest: bool = True) -> pd.DataFrame:
    """Each person's latest decision per row (``latest=False``: every decision), oldest first, as ``VOTE_COLUMNS``.

    A lead's adjudication settles a disagreement after seeing the votes, so it is not a vote of its own
    and is left out (decisions, overlap votes and workshop votes count).

    Parameters
    ----------
    decisions : :meth:`hitl_core.store.Store.decisions` (``id``, ``row_key``, ``user``, ``new_label``, ``kind``, …)
    """
    if "kind" in decisions.columns:
        decisions = decisions[decisions["kind"] != "adjudication"]
    if decisions.empty:
        return pd.DataFrame(columns=list(VOTE_COLUMNS))
    ordered = decisions.sort_values("id")
    if latest:
        ordered = ordered.drop_duplicates(["row_key", "user"], keep="last")
    frame = ordered.rename(columns={"new_label": "label"})[list(VOTE_COLUMNS)]
    return frame.assign(row_key=frame["row_key"].astype(str), user=frame["user"].astype(str)).reset_index(drop=True)


@dataclass(frozen=True)
class Ratings:
    """Rows × people label codes (``-1`` = that person did not label the row), for the libraries' array inputs."""

    codes: np.ndarray  # (n_rows, n_people) int, index into ``classes``
    row_keys: pd.Index
    people: tuple[str, ...]  # sorted by name
    classes: tuple[str, ...]  # the labels used, sorted

    def __len__(self) -> int:
        return len(self.codes)

    def class_counts(self) -> np.ndarray:
        """(n_rows, n_classes): how many people gave each class on each row."""
        counts = np.zeros((len(self.codes), len(self.classes)), dtype=np.int64)
        for c in range(len(self.classes)):  # a few classes: one pass each beats a one-hot of every rating
            counts[:, c] = (self.codes == c).sum(axis=1)
        return counts


def rating_table(vote_frame: pd.DataFrame, *, min_raters: int = 2) -> Ratings:
    """The votes as coded ratings; only rows at least ``min_raters`` people labelled."""
    if vote_frame.empty:
        return Ratings(np.zeros((0, 0), dtype=int), pd.Index([]), (), ())
    rows, row_keys = pd.factorize(vote_frame["row_key"].astype(str))
    who, people = pd.factorize(vote_frame["user"].astype(str), sort=True)
    labels, classes = pd.factorize(vote_frame["label"].astype(str), sort=True)
    codes = np.full((len(row_keys), len(people)), -1, dtype=np.int64)
    codes[rows, who] = labels
    keep = (codes >= 0).sum(axis=1) >= min_raters
    return Ratings(codes[keep], pd.Index(row_keys)[keep], tuple(people), tuple(classes))


def percent_agreement(ratings: Ratings) -> float:
    """Share of agreeing pairs among all pairs of people on a row, averaged over rows (two people: plain agreement)."""
    counts = ratings.class_counts()
    raters = counts.sum(axis=1)
    shown = raters >= 2
    if not shown.any():
        return math.nan
    agreeing = (counts * (counts - 1) / 2).sum(axis=1)[shown]
    return float(np.mean(agreeing / (raters[shown] * (raters[shown] - 1) / 2)))


def cohen_pairs(ratings: Ratings) -> pd.DataFrame:
    """Cohen's kappa for every pair of people on the rows both labelled (scikit-learn).

    Returns a frame with ``rater_a``, ``rater_b`` (``a < b`` by name), ``n_shared``, ``agreement``
    and ``kappa`` (``NaN`` when they share no row, or when both used one single class, where kappa
    is 0/0).
    """
    rows = []
    for i, j in itertools.combinations(range(len(ratings.people)), 2):
        both = (ratings.codes[:, i] >= 0) & (ratings.codes[:, j] >= 0)
        x, y = ratings.codes[both, i], ratings.codes[both, j]
        agreement = float(np.mean(x == y)) if len(x) else math.nan
        rows.append((ratings.people[i], ratings.people[j], len(x), agreement, _cohen(x, y)))
    return pd.DataFrame(rows, columns=["rater_a", "rater_b", "n_shared", "agreement", "kappa"])


def _cohen(x: np.ndarray, y: np.ndarray) -> float:
    """sklearn's kappa; 0/0 (no shared row, or both people used one class) is undefined: NaN, without a warning."""
    if len(np.union1d(x, y)) < 2:
        return math.nan
    return float(cohen_kappa_score(x, y))


def kappa_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pair table as a symmetric people × people matrix of kappa (1 on the diagonal) for a heatmap."""
    people = sorted(set(pairs["rater_a"]) | set(pairs["rater_b"]))
    matrix = pd.DataFrame(np.nan, index=people, columns=people)
    for p in people:
        matrix.loc[p, p] = 1.0
    for row in pairs.itertuples(index=False):
        matrix.loc[row.rater_a, row.rater_b] = matrix.loc[row.rater_b, row.rater_a] = row.kappa
    return matrix


@dataclass(frozen=True)
class Fleiss:
    """Fleiss' kappa on the rows labelled by the most common number of people (it needs the same count per row)."""

    kappa: float
    n_items: int
    raters_per_item: int


def fleiss(ratings: Ratings) -> Fleiss:
    """statsmodels' Fleiss' kappa; rows are those labelled by the most common count of people (ties: more people)."""
    raters = (ratings.codes >= 0).sum(axis=1)
    if not (raters >= 2).any():
        return Fleiss(math.nan, 0, 0)
    frequency = np.bincount(raters)
    frequency[:2] = 0
    k = int(np.flatnonzero(frequency == frequency.max()).max())
    chosen = ratings.codes[raters == k]
    aggregated, _ = aggregate_raters(chosen[chosen >= 0].reshape(len(chosen), k))  # row-major: each row's k codes
    if aggregated.shape[1] < 2:  # every rating the same class: chance agreement is 1, kappa 0/0
        return Fleiss(math.nan, len(chosen), k)
    return Fleiss(float(fleiss_kappa(aggregated, method="fleiss")), len(chosen), k)


def krippendorff_alpha(ratings: Ratings) -> float:
    """Krippendorff's alpha (nominal) over every row with two or more labels; missing ratings are allowed."""
    used = np.unique(ratings.codes[ratings.codes >= 0])
    if len(used) < 2:  # no variation at all: alpha is 0/0
        return math.nan
    reliability = np.where(ratings.codes >= 0, ratings.codes, np.nan).T
    return float(krippendorff.alpha(reliability_data=reliability, value_domain=used.astype(float),
                                    level_of_measurement="nominal"))


def class_confusion(ratings: Ratings) -> pd.DataFrame:
    """Who says which class when another person says another, on shared rows: ``user``, ``says``, ``other_says``, ``n``.

    Counted over ordered pairs of different people on the same row, so the overall class × class
    matrix (sum over ``user``) is symmetric and its diagonal is agreement.
    """
    columns = ["user", "says", "other_says", "n"]
    rows, who = np.nonzero(ratings.codes >= 0)
    if not len(rows):
        return pd.DataFrame(columns=columns)
    says = ratings.codes[rows, who]
    others = ratings.class_counts()[rows] - np.eye(len(ratings.classes), dtype=np.int64)[says]  # everyone else
    grouped = pd.DataFrame(others).groupby([who, says]).sum()
    tidy = grouped.stack().rename("n").reset_index()
    tidy.columns = ["user", "says", "other_says", "n"]
    tidy = tidy[tidy["n"] > 0]
    names, classes = np.asarray(ratings.people, dtype=object), np.asarray(ratings.classes, dtype=object)
    return pd.DataFrame({"user": names[tidy["user"]], "says": classes[tidy["says"]],
                         "other_says": classes[tidy["other_says"]], "n": tidy["n"].to_numpy()})[columns]


def confusion_matrix(confusion: pd.DataFrame, classes: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Class × class counts over every person (rows: one person says; columns: another says)."""
    known = list(classes) + sorted(set(confusion["says"]) - set(classes)) if len(confusion) else list(classes)
    matrix = confusion.pivot_table(index="says", columns="other_says", values="n", aggfunc="sum", fill_value=0)
    return matrix.reindex(index=known, columns=known, fill_value=0).astype(int)


@dataclass(frozen=True)
class Agreement:
    """Agreement of everyone who labelled rows that someone else labelled too."""

    n_items: int  # rows with at least two people's labels
    raters: tuple[str, ...]  # everyone with a vote, sorted
    percent_agreement: float
    cohen: pd.DataFrame  # cohen_pairs
    fleiss: Fleiss
    krippendorff_alpha: float
    confusion: pd.DataFrame  # class_confusion

    def to_json(self) -> dict:
        """The CLI's ``agreement --json``: pair keys "a|b" sorted by name; undefined values as null."""
        def number(x: float) -> float | None:
            return None if x is None or math.isnan(x) else round(float(x), 6)

        return {"n_items": self.n_items, "raters": list(self.raters),
                "percent_agreement": number(self.percent_agreement),
                "cohen_kappa": {f"{r.rater_a}|{r.rater_b}": number(r.kappa)
                                for r in self.cohen.itertuples(index=False) if r.n_shared},
                "fleiss_kappa": number(self.fleiss.kappa),
                "fleiss_items": self.fleiss.n_items, "fleiss_raters_per_item": self.fleiss.raters_per_item,
                "krippendorff_alpha": number(self.krippendorff_alpha)}

    def sentences(self) -> list[str]:
        """What the numbers say, or why there are none yet."""
        if len(self.raters) < 2:
            who = "Nobody has" if not self.raters else "One person has"
            return [f"{who} labelled so far: agreement needs two people who labelled the same rows."]
        if self.n_items == 0:
            return [f"{len(self.raters)} people have labelled, but no row has labels from two of them yet: raise "
                    "the overlap (or put a row to a workshop vote) to measure agreement."]
        out = [f"On {self.n_items:,} row(s) labelled by two or more people, pairs agree "
               f"{self.percent_agreement:.0%} of the time."]
        if not math.isnan(self.krippendorff_alpha):
            out.append(f"Krippendorff's alpha is {self.krippendorff_alpha:.2f} ({strength(self.krippendorff_alpha)}; "
                       "1 = perfect, 0 = what chance gives, 0.667 is the usual floor for tentative conclusions).")
        if not math.isnan(self.fleiss.kappa):
            out.append(f"Fleiss' kappa is {self.fleiss.kappa:.2f} on the {self.fleiss.n_items:,} row(s) labelled by "
                       f"exactly {self.fleiss.raters_per_item} people (it needs the same number per row).")
        return out


def strength(value: float) -> str:
    """Landis & Koch's words for a kappa or alpha, so a number reads as a judgement."""
    if math.isnan(value):
        return "undefined"
    for bound, word in ((0.0, "worse than chance"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"),
                        (0.8, "substantial")):
        if value < bound:
            return word
    return "almost perfect"


def agreement(vote_frame: pd.DataFrame) -> Agreement:
    """Every agreement figure from one frame of votes (see :func:`votes`)."""
    raters = tuple(sorted(vote_frame["user"].astype(str).unique())) if len(vote_frame) else ()
    ratings = rating_table(vote_frame)
    return Agreement(n_items=len(ratings), raters=raters, percent_agreement=percent_agreement(ratings),
                     cohen=cohen_pairs(ratings), fleiss=fleiss(ratings), krippendorff_alpha=krippendorff_alpha(ratings),
                     confusion=class_confusion(ratings))
