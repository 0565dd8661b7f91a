"""What decisions cost: a wrong decision, a human review, and the model's decisions in money (or hours).

A project's :class:`CostModel` prices each (true class, decided class) pair and one human review,
in a unit people name ("€", "hours"). Everything here is pure: labels, predictions, probabilities
and a cost model in, numbers and tidy frames out. Pages, the CLI and the model card share:

- :func:`project_costs` — the project's cost model, or ``None`` before anyone set one;
- :func:`expected_cost` / :func:`cost_interval` — cost per decision and in total, with a seeded
  bootstrap interval ("expected cost 41 ± 6 per 100 decisions");
- :func:`version_costs` — a stored version and its majority / random baselines, from the
  version's validation confusion matrix (no model needed);
- :func:`triage_costs` / :func:`triage_sentence` — cost per confidence threshold when the rows
  below it go to a person, the cheapest threshold and the costly errors people catch there.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hitl_core import active
from hitl_core.models import predict_with_confidence

if TYPE_CHECKING:  # type hints only: this module reads no database
    from hitl_core.data import Dataset
    from hitl_core.models import FittedModel
    from hitl_core.records import ModelVersion, Project
    from hitl_core.store import Store

MAX_UNIT = 20
MAX_COST = 1e12  # larger than any real price; keeps totals finite and readable
DEFAULT_UNIT = "€"
CONFIDENCE = 0.95
RESAMPLES = 4000


class CostError(ValueError):
    """A cost model that cannot be used; the message says which number is wrong and what to give instead."""


# --------------------------------------------------------------------------- the cost model
@dataclass(frozen=True)
class CostModel:
    """Cost of each decision by (true class, decided class), and of one human review, in ``unit``.

    ``matrix[i][j]`` is what deciding ``classes[j]`` costs when the truth is ``classes[i]``; the
    diagonal (a right decision) is usually 0. Every number is finite and ≥ 0; construction refuses
    anything else with a :class:`CostError` that names the cell.
    """

    classes: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]
    review: float
    unit: str = DEFAULT_UNIT

    def __post_init__(self) -> None:
        classes = tuple(str(c) for c in self.classes)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise CostError(f"A cost model needs two or more distinct classes (got {list(classes)}).")
        rows = [list(r) for r in self.matrix]
        if len(rows) != len(classes) or any(len(r) != len(classes) for r in rows):
            shape = f"{len(rows)}×{max((len(r) for r in rows), default=0)}"
            raise CostError(f"The cost matrix is {shape} but there are {len(classes)} classes "
                            f"({', '.join(classes)}): give one cost per (true, decided) pair, "
                            f"{len(classes)}×{len(classes)}.")
        matrix = tuple(tuple(_amount(v, f"deciding '{classes[j]}' when the truth is '{classes[i]}'")
                             for j, v in enumerate(r)) for i, r in enumerate(rows))
        review = _amount(self.review, "one human review")
        if not any(matrix[i][j] for i in range(len(classes)) for j in range(len(classes)) if i != j):
            raise CostError("Every wrong decision costs 0, so nothing would ever be worth reviewing: give at least "
                            "one kind of error a cost above 0.")
        unit = str(self.unit if self.unit is not None else "").strip()
        if not 1 <= len(unit) <= MAX_UNIT:
            raise CostError(f"Name the unit of the costs in 1 to {MAX_UNIT} characters (e.g. €, USD, hours).")
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "review", review)
        object.__setattr__(self, "unit", unit)

    @classmethod
    def binary(cls, classes: Sequence[str], *, favourable: str | None, wrongly_favourable: float,
               wrongly_unfavourable: float, review: float, unit: str = DEFAULT_UNIT) -> "CostModel":
        """Two classes: what a wrong favourable decision costs (approving someone who defaults), what a wrong
        unfavourable one costs (turning away someone who would repay), and a review; right decisions cost 0.

        ``favourable`` is the outcome people want (``Schema.favourable``); ``None``: the last class, the
        house convention for "positive".
        """
        classes = tuple(str(c) for c in classes)
        if len(classes) != 2:
            raise CostError(f"Costs of a false favourable and a false unfavourable decision need two classes; "
                            f"this target has {len(classes)}: give a full cost matrix instead.")
        good, bad = _favourable_pair(classes, favourable)
        cells = {(bad, good): wrongly_favourable, (good, bad): wrongly_unfavourable}
        return cls(classes, tuple(tuple(cells.get((t, p), 0.0) for p in classes) for t in classes), review, unit)

    @property
    def array(self) -> np.ndarray:
        """The matrix as a (k, k) float array: rows = true class, columns = decided class."""
        return np.asarray(self.matrix, dtype=float)

    def cost(self, true: str, decided: str) -> float:
        """What deciding ``decided`` costs when the truth is ``true``."""
        return self.matrix[self.classes.index(str(true))][self.classes.index(str(decided))]

    def to_dict(self) -> dict:
        """JSON-ready: what the store keeps and an event's before/after shows."""
        return {"classes": list(self.classes), "matrix": [list(r) for r in self.matrix], "review": self.review,
                "unit": self.unit}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "CostModel":
        raw = json.loads(text)
        return cls(tuple(raw["classes"]), tuple(tuple(r) for r in raw["matrix"]), raw["review"], raw["unit"])

    def check_classes(self, classes: Sequence[str]) -> "CostModel":
        """This model, if it prices exactly these classes in this order; else a CostError saying what differs."""
        if tuple(str(c) for c in classes) != self.classes:
            raise CostError(f"The costs are for classes {list(self.classes)} but the target has {list(classes)}: "
                            "give one cost per pair of the target's classes, in that order.")
        return self


def _amount(value: object, what: str) -> float:
    """A cost as a float, or a CostError naming it: finite, 0 or more, below ``MAX_COST``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CostError(f"The cost of {what} is {value!r}, not a number; give an amount of 0 or more.") from None
    if not math.isfinite(number):
        raise CostError(f"The cost of {what} is {number}; give a finite amount of 0 or more.")
    if number < 0:
        raise CostError(f"The cost of {what} is {number:g}; costs are 0 or more (write a gain as a cost of 0 "
                        "on the right decision and a cost on the wrong one).")
    if number > MAX_COST:
        raise CostError(f"The cost of {what} is {number:g}; give at most {MAX_COST:g}.")
    return number


def _favourable_pair(classes: tuple[str, ...], favourable: str | None) -> tuple[str, str]:
    """(favourable, unfavourable) of a binary target; without a favourable outcome the last class is positive."""
    good = classes[-1] if favourable is None else str(favourable)
    if good not in classes:
        raise CostError(f"'{favourable}' is not one of the classes {list(classes)}.")
    return good, next(c for c in classes if c != good)


def error_name(true: str, decided: str, *, target: str, favourable: str | None = None) -> str:
    """One kind of decision in words, naming the favourable outcome: "deciding loan_status = approved
    (favourable) when it is defaulted"."""
    mark = lambda c: f"{c} (favourable)" if favourable is not None and c == favourable else c  # noqa: E731
    return f"deciding {target} = {mark(decided)} when it is {mark(true)}"


def binary_errors(classes: Sequence[str], favourable: str | None) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two errors of a binary target as (true, decided): the wrongly favourable one first."""
    good, bad = _favourable_pair(tuple(str(c) for c in classes), favourable)
    return (bad, good), (good, bad)


def project_costs(source: "Project | Store", project_id: int | None = None) -> CostModel | None:
    """The project's cost model, or ``None`` when nobody has set one (then say how on the page).

    ``project_costs(project)`` with a :class:`~hitl_core.records.Project`, or
    ``project_costs(store, project_id)`` to read it first.
    """
    project = source.project(project_id) if project_id is not None else source
    text = getattr(project, "costs_json", None)
    return CostModel.from_json(text) if text else None


# --------------------------------------------------------------------------- expected cost and its interval
@dataclass(frozen=True)
class ExpectedCost:
    """Cost of a set of decisions: per decision (the expected cost of the next one) and in total.

    ``low``/``high``: a ``confidence`` bootstrap interval of ``per_row`` (percentile, seeded), when asked.
    ``costly_errors``: wrong decisions that cost more than the right one would have.
    """

    per_row: float
    total: float
    n_rows: int
    costly_errors: float
    unit: str
    low: float | None = None
    high: float | None = None
    confidence: float | None = None

    def per(self, n: int = 100) -> float:
        """Expected cost of ``n`` decisions."""
        return self.per_row * n

    def text(self, n: int = 100) -> str:
        """ "41 ± 6 € per 100 decisions" (± half the interval), or without ± when no interval was computed."""
        if self.low is None or self.high is None:
            return f"{format_amount(self.per(n), self.unit)} per {n:,} decisions"
        value, spread = self.per(n), (self.high - self.low) * n / 2
        like = lambda x: format_number(x, like=value)  # noqa: E731  the spread with the value's decimals
        return f"{like(value)} ± {like(spread)} {self.unit} per {n:,} decisions"


def format_number(value: float, *, like: float | None = None) -> str:
    """A number as people read it: 1,230 / 41.5 / 0.42 (fewer decimals as it grows); ``like``: take that
    number's decimals (a ± spread written like its value)."""
    size = abs(value if like is None else like)
    digits = 0 if size >= 100 else 1 if size >= 10 else 2
    return f"{value:,.{digits}f}"


def format_amount(value: float, unit: str) -> str:
    """An amount with its unit after it, as typed: "1,230 €", "0.42 hours"."""
    return f"{format_number(value)} {unit}".strip()


def decision_counts(y_true, y_pred, classes: Sequence[str]) -> np.ndarray:
    """How many rows of each (true, decided) pair: a (k, k) integer matrix in ``classes`` order."""
    t, p = _codes(y_true, classes), _codes(y_pred, classes)
    if len(t) != len(p):
        raise CostError(f"Got {len(t)} true labels and {len(p)} decisions; give one decision per label.")
    if (t < 0).any() or (p < 0).any():
        unknown = sorted({str(v) for v, i in zip(np.concatenate([np.asarray(y_true, dtype=object),
                                                                 np.asarray(y_pred, dtype=object)]),
                                                 np.concatenate([t, p])) if i < 0})
        raise CostError(f"Label(s) {unknown[:5]} are not classes of the cost model ({list(classes)}).")
    k = len(classes)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _codes(values, classes: Sequence[str]) -> np.ndarray:
    """Each label's position in ``classes`` (-1: not a class), by one vectorised comparison per class.

    A hash lookup of a million text labels (``pd.Index.get_indexer`` after ``astype(str)``) took
    0.3 s; comparing against two or three classes takes 30 ms. Labels that are not text (numbers)
    are compared as text.
    """
    values = np.asarray(values, dtype=object)
    codes = _match(values, classes)
    unmatched = codes < 0
    if unmatched.any():
        codes[unmatched] = _match(values[unmatched].astype(str).astype(object), classes)
    return codes


def _match(values: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    codes = np.full(len(values), -1, dtype=np.int64)
    for i, c in enumerate(classes):
        codes[values == str(c)] = i
    return codes


def confusion_counts(confusion: Mapping[str, Mapping[str, int]], classes: Sequence[str]) -> np.ndarray:
    """A stored confusion matrix (``ModelVersion.confusion``: true → decided → count) as a (k, k) array."""
    return np.array([[float(confusion.get(t, {}).get(p, 0)) for p in classes] for t in classes])


def cost_of_counts(counts: np.ndarray, costs: CostModel, *, confidence: float | None = None,
                   n_resamples: int = RESAMPLES, seed: int = 0) -> ExpectedCost:
    """Expected cost of decisions given as counts per (true, decided) cell; with ``confidence``, its interval.

    The interval is a nonparametric bootstrap of the mean cost per row, percentile method: a
    resample of the rows is a multinomial draw of the cells (each row's cost depends only on its
    cell), so 4,000 resamples of a million rows take milliseconds. Fractional counts (the random
    baseline's expected decisions) resample by their shares. A test holds it to
    ``scipy.stats.bootstrap`` on the expanded rows.
    """
    counts = np.asarray(counts, dtype=float)
    matrix = costs.array
    n = float(counts.sum())
    if n <= 0:
        raise CostError("No rows to cost: the split has no labelled rows.")
    total = float((counts * matrix).sum())
    costly = float(counts[matrix > np.diag(matrix)[:, None]].sum())
    low = high = None
    if confidence is not None:
        if not 0 < confidence < 1:
            raise CostError(f"Confidence is {confidence}; give a probability between 0 and 1, e.g. 0.95.")
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(int(round(n)), (counts / n).ravel(), size=n_resamples)
        means = draws @ matrix.ravel() / round(n)
        low, high = (float(q) for q in np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2]))
    return ExpectedCost(per_row=total / n, total=total, n_rows=int(round(n)), costly_errors=costly, unit=costs.unit,
                        low=low, high=high, confidence=confidence)


def expected_cost(y_true, y_pred, costs: CostModel) -> ExpectedCost:
    """Cost of deciding ``y_pred`` where the truth is ``y_true``: ``.per_row`` (mean) and ``.total``.

    Parameters
    ----------
    y_true, y_pred : arrays of shape (n,), labels as text (classes of ``costs``)
    """
    return cost_of_counts(decision_counts(y_true, y_pred, costs.classes), costs)


def cost_interval(y_true, y_pred, costs: CostModel, *, confidence: float = CONFIDENCE, n_resamples: int = RESAMPLES,
                  seed: int = 0) -> ExpectedCost:
    """:func:`expected_cost` with a seeded bootstrap interval of the cost per row (``.low``, ``.high``)."""
    return cost_of_counts(decision_counts(y_true, y_pred, costs.classes), costs, confidence=confidence,
                          n_resamples=n_resamples, seed=seed)


def majority_class(labels) -> str:
    """The class a majority baseline decides: the most frequent training label, ties to the first in sorted
    order (scikit-learn's ``DummyClassifier(strategy="most_frequent")``)."""
    values, counts = np.unique(pd.Series(labels).dropna().astype(str).to_numpy(), return_counts=True)
    if not len(values):
        raise CostError("No labelled rows to find the majority class from.")
    return str(values[np.argmax(counts)])


def baseline_counts(truth_counts: np.ndarray, classes: Sequence[str], majority: str) -> dict[str, np.ndarray]:
    """Decision counts of the baselines on rows with ``truth_counts`` per class: the majority baseline decides
    ``majority`` for every row; the random one each class with equal probability (expected counts)."""
    truth_counts = np.asarray(truth_counts, dtype=float)
    k = len(classes)
    majority_cells = np.zeros((k, k))
    majority_cells[:, list(classes).index(majority)] = truth_counts
    return {"majority": majority_cells, "random": np.repeat(truth_counts[:, None] / k, k, axis=1)}


def version_costs(version: "ModelVersion", costs: CostModel, *, majority: str, confidence: float = CONFIDENCE,
                  seed: int = 0) -> dict[str, ExpectedCost]:
    """Expected cost on validation of a stored version (``"model"``) and of its ``"majority"`` and ``"random"``
    baselines, each with its interval, from the version's stored confusion matrix.

    ``majority`` is the class the majority baseline decides (:func:`majority_class` of the labels
    the version was trained on).
    """
    counts = confusion_counts(version.confusion, costs.classes)
    cells = {"model": counts, **baseline_counts(counts.sum(axis=1), costs.classes, majority)}
    return {name: cost_of_counts(c, costs, confidence=confidence, seed=seed) for name, c in cells.items()}


def baseline_sentence(estimates: Mapping[str, ExpectedCost], majority: str) -> str:
    """The model's cost against always deciding the majority class, in words, hedged when the intervals overlap.

    ``estimates``: :func:`version_costs`' result. A model that takes the most probable class ignores
    what errors cost, so it can cost more than a constant decision; the sentence then says so.
    """
    model, constant = estimates["model"], estimates["majority"]
    numbers = f"{model.text()} against {constant.text()}"
    if model.low is not None and constant.low is not None and model.high < constant.low:
        return f"The model costs less than always deciding {majority}: {numbers}."
    if model.low is not None and constant.high is not None and model.low > constant.high:
        return (f"The model costs more than always deciding {majority}: {numbers}. It decides the most probable "
                "class, blind to what each error costs; send the rows below the cheapest threshold to people, "
                "or weigh the costs in the decision.")
    return (f"No clear difference between the model's cost and always deciding {majority} ({numbers}; the 95 % "
            "intervals overlap).")


# --------------------------------------------------------------------------- triage: who decides, at what cost
def triage_costs(y_true, proba: np.ndarray, classes: Sequence[str], costs: CostModel, *,
                 human_accuracy: float = 1.0, thresholds: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """:func:`hitl_core.active.triage` with what each threshold costs.

    Rows below the threshold go to a person: each costs ``costs.review``, and the person decides
    right with probability ``human_accuracy``, else another class at random (the simulated
    annotator's error model), so their errors still cost something. Rows above keep the model's
    decision and its cost. All values are expectations, so the curve is exact.

    Returns the triage frame plus ``review_cost``, ``people_error_cost``, ``model_error_cost``,
    ``total_cost``, ``costly_errors`` (the model's costly errors on all rows), ``caught`` (expected
    costly errors people put right on the rows they review) and ``cheapest`` (True on the first
    row of least total cost: the fewest reviews among equally cheap thresholds).
    """
    costs.check_classes(classes)
    frame = active.triage(y_true, proba, classes, human_accuracy=human_accuracy, thresholds=thresholds)
    matrix = costs.array
    k = len(classes)
    truth = _codes(y_true, costs.classes)
    decided = np.asarray(proba, dtype=float).argmax(axis=1)
    model_cost = matrix[truth, decided]
    costly = model_cost > matrix[truth, truth]
    wrong_person = (matrix.sum(axis=1) - np.diag(matrix)) / (k - 1)  # a wrong person picks another class at random
    person_cost = human_accuracy * np.diag(matrix)[truth] + (1 - human_accuracy) * wrong_person[truth]
    order = np.argsort(np.asarray(proba, dtype=float).max(axis=1), kind="stable")  # as active.triage routes rows
    below = lambda values: np.concatenate([[0.0], np.cumsum(values[order])])  # noqa: E731  sum over the i least sure
    n_human = frame["n_to_human"].to_numpy()
    model_below, person_below, costly_below = below(model_cost), below(person_cost), below(costly.astype(float))
    frame["review_cost"] = costs.review * n_human
    frame["people_error_cost"] = person_below[n_human]
    frame["model_error_cost"] = model_below[-1] - model_below[n_human]
    frame["total_cost"] = frame["review_cost"] + frame["people_error_cost"] + frame["model_error_cost"]
    frame["costly_errors"] = int(costly.sum())
    frame["caught"] = human_accuracy * costly_below[n_human]
    frame["cheapest"] = False
    frame.loc[frame.index[int(np.argmin(frame["total_cost"].to_numpy()))], "cheapest"] = True
    return frame


def validation_triage_costs(model: "FittedModel", dataset: "Dataset", costs: CostModel, *, human_accuracy: float = 1.0,
                            thresholds: Sequence[float] | np.ndarray | None = None, threads: int = 1) -> pd.DataFrame:
    """:func:`triage_costs` of ``model`` on the dataset's validation split (never the held-out test set)."""
    truth = dataset.labels.loc[dataset.rows("validation")].dropna()
    preds = predict_with_confidence(model, dataset.features.loc[truth.index], dataset.schema.classes, threads=threads)
    return triage_costs(truth.to_numpy(), preds.proba, dataset.schema.classes, costs, human_accuracy=human_accuracy,
                        thresholds=thresholds)


def cheapest(frame: pd.DataFrame) -> pd.Series:
    """The row of :func:`triage_costs` with the least total cost."""
    return frame.loc[frame["cheapest"]].iloc[0]


def triage_sentence(frame: pd.DataFrame, costs: CostModel) -> str:
    """What the cheapest threshold buys, in one sentence ("At 0.72, people review 310 rows and catch 41 of the
    58 costly errors; total cost 1,230 € against 2,040 € with no review")."""
    best = cheapest(frame)
    alone = frame.iloc[0]  # the model alone: nobody reviews
    n = int(frame["n_to_human"].iloc[-1])
    against = f"against {format_amount(alone['total_cost'], costs.unit)} with no review"
    if int(best["n_to_human"]) == 0:
        return (f"Reviewing nothing is cheapest on these {n:,} validation rows: a review ("
                f"{format_amount(costs.review, costs.unit)}) costs more than the errors people would catch; total "
                f"cost {format_amount(best['total_cost'], costs.unit)}.")
    caught = f"{best['caught']:,.0f} of the {int(best['costly_errors']):,} costly errors"
    total = f"total cost {format_amount(best['total_cost'], costs.unit)} {against}"
    if int(best["n_to_human"]) == n:
        return f"Sending all {n:,} validation rows to a person is cheapest: people catch {caught}; {total}."
    return (f"At {best['threshold']:.2f}, people review {int(best['n_to_human']):,} of {n:,} validation rows and "
            f"catch {caught}; {total}.")
