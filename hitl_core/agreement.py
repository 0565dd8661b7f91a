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
import warnings
from dataclasses import dataclass

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

VOTE_COLUMNS = ("row_key", "user", "label", "created_at", "predicted_label", "confidence")


def votes(decisions: pd.DataFrame, *, latest: bool = True) -> pd.DataFrame:
    """Each person's latest decision per row (``latest=False``: every decision), oldest first, as ``VOTE_COLUMNS``.

    Parameters
    ----------
    decisions : :meth:`hitl_core.store.Store.decisions` (``id``, ``row_key``, ``user``, ``new_label``, …)
    """
    if decisions.empty:
        return pd.DataFrame(columns=list(VOTE_COLUMNS))
    ordered = decisions.sort_values("id")
    if latest:
        ordered = ordered.drop_duplicates(["row_key", "user"], keep="last")
    frame = ordered.rename(columns={"new_label": "label"})[list(VOTE_COLUMNS)]
    return frame.assign(row_key=frame["row_key"].astype(str), user=frame["user"].astype(str)).reset_index(drop=True)


def rating_table(vote_frame: pd.DataFrame, *, min_raters: int = 2) -> pd.DataFrame:
    """Rows × people (sorted by name) with each person's label; only rows at least ``min_raters`` people labelled."""
    if vote_frame.empty:
        return pd.DataFrame()
    table = vote_frame.pivot(index="row_key", columns="user", values="label")
    table = table.reindex(columns=sorted(table.columns))
    return table[table.notna().sum(axis=1) >= min_raters].astype(object)


def percent_agreement(table: pd.DataFrame) -> float:
    """Share of agreeing pairs among all pairs of people on a row, averaged over rows (two people: plain agreement)."""
    shares = []
    for labels in table.itertuples(index=False):
        given = [x for x in labels if not pd.isna(x)]
        if len(given) < 2:
            continue
        pairs = list(itertools.combinations(given, 2))
        shares.append(sum(a == b for a, b in pairs) / len(pairs))
    return float(np.mean(shares)) if shares else math.nan


def cohen_pairs(table: pd.DataFrame, classes: tuple[str, ...] | list[str] | None = None) -> pd.DataFrame:
    """Cohen's kappa for every pair of people on the rows both labelled (scikit-learn).

    Returns a frame with ``rater_a``, ``rater_b`` (``a < b`` by name), ``n_shared``, ``agreement``
    and ``kappa`` (``NaN`` when they share no row, or when both used one single class, where kappa
    is 0/0).
    """
    columns = ["rater_a", "rater_b", "n_shared", "agreement", "kappa"]
    rows = []
    for a, b in itertools.combinations(list(table.columns), 2):
        both = table[[a, b]].dropna()
        kappa = agreement = math.nan
        if len(both):
            x, y = both[a].astype(str).to_numpy(), both[b].astype(str).to_numpy()
            agreement = float(np.mean(x == y))
            kappa = _cohen(x, y, classes)
        rows.append((a, b, len(both), agreement, kappa))
    return pd.DataFrame(rows, columns=columns)


def _cohen(x: np.ndarray, y: np.ndarray, classes) -> float:
    """sklearn's kappa; 0/0 (both people used one class) is undefined, reported as NaN without a warning."""
    if len(set(x) | set(y)) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        labels = None if classes is None else [c for c in classes if c in set(x) | set(y)]
        return float(cohen_kappa_score(x, y, labels=labels))


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


def fleiss(table: pd.DataFrame) -> Fleiss:
    """statsmodels' Fleiss' kappa; rows are those labelled by the most common count of people (ties: more people)."""
    counts = table.notna().sum(axis=1) if not table.empty else pd.Series(dtype=int)
    counts = counts[counts >= 2]
    if counts.empty:
        return Fleiss(math.nan, 0, 0)
    frequency = counts.value_counts()
    k = int(max(frequency[frequency == frequency.max()].index))
    chosen = table.loc[counts.index[counts == k]]
    codes = np.array([[str(x) for x in row if not pd.isna(x)] for row in chosen.itertuples(index=False)])
    _, coded = np.unique(codes, return_inverse=True)
    aggregated, _ = aggregate_raters(coded.reshape(codes.shape))
    if aggregated.shape[1] < 2:  # every rating the same class: chance agreement is 1, kappa 0/0
        return Fleiss(math.nan, len(chosen), k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return Fleiss(float(fleiss_kappa(aggregated, method="fleiss")), len(chosen), k)


def krippendorff_alpha(table: pd.DataFrame) -> float:
    """Krippendorff's alpha (nominal) over every row with two or more labels; missing ratings are allowed."""
    if table.empty:
        return math.nan
    values = table.to_numpy(dtype=object)
    present = ~pd.isna(values)
    domain = sorted({str(v) for v in values[present]})
    if len(domain) < 2:  # no variation at all: alpha is 0/0
        return math.nan
    position = {c: float(i) for i, c in enumerate(domain)}
    coded = np.full(values.shape, np.nan)
    coded[present] = [position[str(v)] for v in values[present]]
    return float(krippendorff.alpha(reliability_data=coded.T, value_domain=list(position.values()),
                                    level_of_measurement="nominal"))


def class_confusion(vote_frame: pd.DataFrame) -> pd.DataFrame:
    """Who says which class when another person says another, on shared rows: ``user``, ``says``, ``other_says``, ``n``.

    Counted over ordered pairs of different people on the same row, so the overall class × class
    matrix (sum over ``user``) is symmetric and its diagonal is agreement.
    """
    columns = ["user", "says", "other_says", "n"]
    if vote_frame.empty:
        return pd.DataFrame(columns=columns)
    shared = vote_frame[vote_frame.groupby("row_key")["user"].transform("size") >= 2][["row_key", "user", "label"]]
    pairs = shared.merge(shared, on="row_key", suffixes=("", "_other"))
    pairs = pairs[pairs["user"] != pairs["user_other"]]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    counted = pairs.groupby(["user", "label", "label_other"]).size().reset_index(name="n")
    return counted.rename(columns={"label": "says", "label_other": "other_says"})[columns]


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


def agreement(vote_frame: pd.DataFrame, classes: tuple[str, ...] | list[str] | None = None) -> Agreement:
    """Every agreement figure from one frame of votes (see :func:`votes`)."""
    raters = tuple(sorted(vote_frame["user"].astype(str).unique())) if len(vote_frame) else ()
    table = rating_table(vote_frame)
    return Agreement(n_items=len(table), raters=raters, percent_agreement=percent_agreement(table),
                     cohen=cohen_pairs(table, classes), fleiss=fleiss(table),
                     krippendorff_alpha=krippendorff_alpha(table), confusion=class_confusion(vote_frame))
