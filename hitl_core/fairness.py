"""Group metrics and disparities on fairlearn's ``MetricFrame``: whom the model, and its reviewers, treat differently.

Every per-group number comes from one :class:`fairlearn.metrics.MetricFrame` and every disparity
from fairlearn's own ``demographic_parity_difference/ratio`` and ``equalized_odds_difference/ratio``;
this module prepares their inputs and packages the results:

* **readable groups**: missing values become an explicit ``"missing"`` group (fairlearn rejects
  missing sensitive values, and pandas 3 keeps them through ``astype(str)``); numeric attributes
  with many values are cut into quantile ranges named by the values they hold (``"21–35"``);
  two attributes give their intersection (``"group_b × female"``);
* **a named positive class, the favourable outcome**: the class people want (approved, not
  defaulted), which a person names (``schema.favourable``): nothing here can tell whether ``"yes"``
  means approved or defaulted. Functions take it as ``positive``; without it they fall back to the
  schema's favourable outcome, then to the last class (the CLI's old default). For a multiclass
  target, one class against the rest. Selection rate = share predicted the positive class.
  Accuracy and balanced accuracy are over all classes; base rate, selection rate, TPR, FPR and
  precision are for the positive class. A stored binary report for one class gives the other
  class's report exactly (:meth:`FairnessReport.for_other_class`), so a favourable outcome chosen
  after versions were stored still has their history;
* **too-small groups** (fewer rows than ``min_group_size``) are listed in ``too_small`` and left
  out of the disparities, never merged into another group: a handful of rows can swing a ratio
  anywhere;
* **sufficient statistics**: rows are first counted per (group, true label, predicted label) cell
  and fairlearn computes on the cells with the counts as ``sample_weight``. Every metric here is
  a weighted mean over rows, so the numbers are fairlearn's on the raw rows (a test holds them
  equal), while ``MetricFrame``'s per-row cost (~60 µs per row and metric) disappears;
* **two engines, one answer**: ``engine="metricframe"`` (the default of :func:`fairness_report`,
  :func:`report_for` and :func:`breakdown`, the interactive single report) is fairlearn's
  ``MetricFrame`` and disparity functions, the reference; ``engine="grouped"`` (the default of
  :func:`summaries`, run on every retrain) reads every number of every report off one table of
  counts per (group, true class, predicted class), built with one ``np.bincount`` per attribute
  set and shared by every positive class: five ``MetricFrame`` per report cost ~95 % of a demo
  retrain. Disparities use fairlearn's definitions on the per-group rates (difference = largest
  minus smallest rate; ratio = smallest over largest; equalized odds = the worse of TPR and FPR,
  a group without positives/negatives counting as rate 0, as in fairlearn). A test holds both
  engines equal (to 1e-12) on random data and the loan sample, and the disparities equal to
  fairlearn's own functions.
"""
from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import sklearn
from fairlearn.metrics import (
    MetricFrame, count, demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference,
    equalized_odds_ratio, false_positive_rate, selection_rate, true_positive_rate,
)
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin

from hitl_core.data import Dataset, DataError
from hitl_core.models import FittedModel, Predictions, predict_with_confidence

MISSING_GROUP = "missing"
JOIN = " × "  # between attributes ("group × gender") and between their values ("group_b × female")
MAX_ATTRIBUTES = 2
DEFAULT_MIN_GROUP_SIZE = 30
DEFAULT_BINS = 4
MAX_CATEGORIES_FOR_NUMBERS = 10  # a numeric attribute with at most this many values is used as is
FOUR_FIFTHS = 0.8
MAX_HISTORY_CLASSES = 10  # multiclass: one-vs-rest summaries stored with a version for at most this many classes

GROUP_METRICS: dict[str, str] = {
    "count": "Rows",
    "base_rate": "Base rate",
    "selection_rate": "Selection rate",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "tpr": "TPR (recall)",
    "fpr": "FPR",
    "precision": "Precision",
    "mean_confidence": "Mean confidence",
}
DISPARITIES: dict[str, str] = {
    "demographic_parity_difference": "Demographic parity difference",
    "demographic_parity_ratio": "Demographic parity ratio",
    "equalized_odds_difference": "Equalized odds difference",
    "equalized_odds_ratio": "Equalized odds ratio",
}
Engine = Literal["metricframe", "grouped"]
ENGINES: dict[str, str] = {
    "metricframe": "fairlearn MetricFrame (the reference)",
    "grouped": "one table of counts per (group, true class, predicted class)",
}
Constraint = Literal["demographic_parity", "equalized_odds"]
CONSTRAINTS: dict[str, str] = {"demographic_parity": "Demographic parity", "equalized_odds": "Equalized odds"}


# --------------------------------------------------------------------------- groups
def attribute_name(columns: Sequence[str]) -> str:
    """``"group"`` for one attribute, ``"group × gender"`` for the intersection of two."""
    return JOIN.join(columns)


def attribute_sets(sensitive: Sequence[str]) -> list[tuple[str, ...]]:
    """Every single sensitive attribute, then every intersection of two: what a version stores."""
    return [(c,) for c in sensitive] + list(itertools.combinations(sensitive, 2))


def _number(value: float, integral: bool) -> str:
    """21, 52,400, 0.25: whole numbers as such, others with three significant digits."""
    return f"{value:,.0f}" if integral or abs(value) >= 1000 else f"{value:.3g}"


def group_labels(values: pd.Series, *, bins: int = DEFAULT_BINS) -> pd.Series:
    """One readable group name per row, as an ordered categorical (bins ascending, ``missing`` last).

    A numeric column with more than ``MAX_CATEGORIES_FOR_NUMBERS`` distinct values is cut into
    ``bins`` quantile ranges, each named by the smallest and largest value it holds (``"21–35"``);
    anything else is used as text. Missing values form their own group, ``"missing"``.
    """
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique(dropna=True) > MAX_CATEGORIES_FOR_NUMBERS:
        numbers = values.astype(float)
        cut = pd.qcut(numbers, q=bins, duplicates="drop").cat.remove_unused_categories()
        integral = bool(np.all(np.mod(numbers.dropna().to_numpy(), 1) == 0))
        spans = numbers.groupby(cut, observed=True).agg(["min", "max"])
        names = [_number(lo, integral) if lo == hi else f"{_number(lo, integral)}–{_number(hi, integral)}"
                 for lo, hi in spans.loc[cut.cat.categories].itertuples(index=False)]
        groups = pd.Categorical.from_codes(cut.cat.codes.to_numpy(), categories=names)
    else:
        if numeric and values.dropna().mod(1).eq(0).all():
            values = values.astype("Int64")  # 1, not 1.0
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        text = np.asarray([str(u) for u in uniques], dtype=object)
        names = sorted(set(text))  # two values with the same text (1 and "1") are one group
        position = {name: i for i, name in enumerate(names)}
        recode = np.asarray([position[t] for t in text] + [-1], dtype=int)  # -1 (missing) stays -1
        groups = pd.Categorical.from_codes(recode[codes], categories=names)
    return _with_missing_group(pd.Series(groups, index=values.index, name=values.name))


def _with_missing_group(groups: pd.Series) -> pd.Series:
    """Missing → an explicit ``"missing"`` group, last; unused groups dropped; ordered."""
    if groups.isna().any():
        if MISSING_GROUP not in groups.cat.categories:
            groups = groups.cat.add_categories([MISSING_GROUP])
        groups = groups.fillna(MISSING_GROUP)
    return groups.cat.remove_unused_categories().cat.as_ordered()


def sensitive_groups(frame: pd.DataFrame, columns: Sequence[str], *, bins: int = DEFAULT_BINS) -> pd.Series:
    """The group of every row of ``frame`` for one sensitive attribute, or for the intersection of two.

    Bins are cut on the whole column given, so pass the whole dataset (not one split) to keep the
    same groups across validation, test and model versions.
    """
    columns = _checked_columns(frame, columns)
    parts = [group_labels(frame[c], bins=bins) for c in columns]
    if len(parts) == 1:
        return parts[0].rename(attribute_name(columns))
    first, second = parts
    width = len(second.cat.categories)
    codes = first.cat.codes.to_numpy(dtype=np.int64) * width + second.cat.codes.to_numpy(dtype=np.int64)
    names = [JOIN.join(pair) for pair in itertools.product(first.cat.categories, second.cat.categories)]
    groups = pd.Series(pd.Categorical.from_codes(codes, categories=names), index=frame.index,
                       name=attribute_name(columns))
    return groups.cat.remove_unused_categories().cat.as_ordered()


def _checked_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    columns = list(columns)
    if not 1 <= len(columns) <= MAX_ATTRIBUTES:
        raise DataError(f"Pick one sensitive attribute, or two for their intersection (got {len(columns)}).")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"Sensitive column(s) {missing} are not in the table; pick existing columns.")
    return columns


def _codes_at(parts: Sequence[pd.Series], positions: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Group codes of the rows at ``positions`` and the groups they use, in display order, for one
    attribute or the intersection of two (``parts``: :func:`group_labels` of each column): the same as
    ``_group_codes(sensitive_groups(...).iloc[positions])``, from the integer codes alone."""
    categories = [[str(c) for c in part.cat.categories] for part in parts]
    codes = np.zeros(len(positions), dtype=np.int64)
    for part, names in zip(parts, categories):
        codes = codes * len(names) + part.cat.codes.to_numpy(dtype=np.int64)[positions]
    names = [JOIN.join(combo) for combo in itertools.product(*categories)]
    used = np.flatnonzero(np.bincount(codes, minlength=len(names)))
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[codes], [names[i] for i in used]


def positive_class(classes: Sequence[str], chosen: str | None = None) -> str:
    """The class whose selection rate is compared: ``chosen`` (the favourable outcome), else the last class.

    The fallback is only the CLI's old default: on a binary target the last class may well be the
    unfavourable one (``deny``: no/yes), so pages pass the schema's favourable outcome.
    """
    classes = [str(c) for c in classes]
    if chosen is None:
        return classes[-1]
    if str(chosen) not in classes:
        raise DataError(f"Class '{chosen}' is not a class of the target; pick one of {classes}.")
    return str(chosen)


# --------------------------------------------------------------------------- metric functions (row-weighted)
def _count(y_true, y_pred, sample_weight) -> float:
    return float(np.sum(sample_weight))


def _base_rate(y_true, y_pred, sample_weight) -> float:
    """Share of rows truly in the positive class."""
    return float(np.average(y_true, weights=sample_weight))


def _accuracy(y_true, y_pred, sample_weight, true_labels, pred_labels) -> float:
    """Accuracy over all classes (for a binary target, the same as on the positive-vs-rest labels)."""
    return skm.accuracy_score(true_labels, pred_labels, sample_weight=sample_weight)


def _balanced_accuracy(y_true, y_pred, sample_weight, true_labels, pred_labels) -> float:
    return skm.balanced_accuracy_score(true_labels, pred_labels, sample_weight=sample_weight)


def _precision(y_true, y_pred, sample_weight) -> float:
    """Share of predicted positives that are truly positive; NaN when nothing was predicted positive."""
    return skm.precision_score(y_true, y_pred, sample_weight=sample_weight, zero_division=np.nan)


def _weighted_mean(y_true, y_pred, sample_weight, values) -> float:
    return float(np.average(values, weights=sample_weight))


def _share(y_true, y_pred, values) -> float:
    """Share of rows where ``values`` is true."""
    return float(np.mean(values))


def _share_among(y_true, y_pred, values, among) -> float:
    """Share of the rows selected by ``among`` where ``values`` is true; NaN when none is selected."""
    among = np.asarray(among, dtype=bool)
    return float(np.mean(np.asarray(values)[among])) if among.any() else np.nan


def _agreement(y_true, y_pred, human, model) -> float:
    """Share of decisions where the person's label equals the model's prediction."""
    return skm.accuracy_score(human, model)


class _quiet:
    """fairlearn on tiny groups: no sklearn argument re-validation, no warnings about one-class groups."""

    def __enter__(self):
        self._config = sklearn.config_context(skip_parameter_validation=True, assume_finite=True)
        self._warnings = warnings.catch_warnings()
        self._config.__enter__()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        self._warnings.__exit__(*exc)
        self._config.__exit__(*exc)
        return False


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _group_codes(groups) -> tuple[np.ndarray, list[str]]:
    """Integer group per row and the group names in display order (a categorical keeps its order;
    anything else is sorted as text; missing → ``"missing"``, last)."""
    if not (isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype)):
        series = pd.Series(np.asarray(groups, dtype=object))
        missing = series.isna().to_numpy()  # None and NaN alike (pandas 3's ``where(..., None)`` gives NaN back)
        text = pd.Series([None if gap else str(v) for v, gap in zip(series.tolist(), missing)], dtype=object)
        names = sorted(str(v) for v in pd.unique(text.dropna()))
        groups = pd.Series(pd.Categorical(text, categories=names))
    groups = _with_missing_group(groups.reset_index(drop=True))
    return groups.cat.codes.to_numpy(dtype=np.int64), [str(c) for c in groups.cat.categories]


def _cells(groups: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray | None,
           names: list[str]) -> pd.DataFrame:
    """One row per (group, true label, predicted label) with its row count and mean confidence.

    Everything after this works on these few cells, weighted by ``rows``: every metric here is a
    weighted mean over rows, so the results equal those on the raw rows.
    """
    true_codes, true_labels = pd.factorize(y_true)
    pred_codes, pred_labels = pd.factorize(y_pred)
    n_true, n_pred = len(true_labels), len(pred_labels)
    combined = (groups * n_true + true_codes) * n_pred + pred_codes
    keys, inverse, rows = np.unique(combined, return_inverse=True, return_counts=True)
    total = np.bincount(inverse, weights=confidence, minlength=len(keys)) if confidence is not None else 0.0
    group, rest = np.divmod(keys, n_true * n_pred)
    true, pred = np.divmod(rest, n_pred)
    return pd.DataFrame({
        "group": np.asarray(names, dtype=object)[group],
        "true": np.asarray(true_labels, dtype=object)[true],
        "pred": np.asarray(pred_labels, dtype=object)[pred],
        "rows": rows,
        "confidence": total / rows,
    })


# --------------------------------------------------------------------------- the model's fairness
@dataclass(frozen=True)
class FairnessReport:
    """How one model treats each group of one sensitive attribute (or intersection) on one split.

    ``by_group`` has one row per group in display order, the columns of ``GROUP_METRICS`` and
    ``too_small``; rates are ``NaN`` where undefined (TPR of a group without positives, precision
    of a group with no positive prediction). The disparities cover the groups that are not too
    small, and are ``None`` when fewer than two such groups remain.
    """

    sensitive: str
    split: str
    positive_class: str
    min_group_size: int
    by_group: pd.DataFrame
    overall: dict[str, float | None]
    demographic_parity_difference: float | None
    demographic_parity_ratio: float | None
    equalized_odds_difference: float | None
    equalized_odds_ratio: float | None

    @property
    def too_small(self) -> tuple[str, ...]:
        return tuple(str(g) for g in self.by_group.index[self.by_group["too_small"].to_numpy(dtype=bool)])

    @property
    def judged(self) -> tuple[str, ...]:
        """Groups large enough to be compared."""
        return tuple(str(g) for g in self.by_group.index[~self.by_group["too_small"].to_numpy(dtype=bool)])

    @property
    def four_fifths_violated(self) -> bool | None:
        """The four-fifths (80 %) rule: some group's selection rate is below 80 % of the highest one's."""
        ratio = self.demographic_parity_ratio
        return None if ratio is None else bool(ratio < FOUR_FIFTHS)

    def below_four_fifths(self) -> tuple[str, ...]:
        """The compared groups whose selection rate is under 80 % of the highest compared group's."""
        rates = self.by_group.loc[list(self.judged), "selection_rate"].dropna()
        if len(rates) < 2 or rates.max() <= 0:
            return ()
        return tuple(str(g) for g in rates.index[rates < FOUR_FIFTHS * rates.max()])

    def disparities(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in DISPARITIES}

    def to_dict(self) -> dict:
        """The documented JSON object (README, "Fairness"): JSON-ready, ``null`` where undefined."""
        columns = {m: self.by_group[m].tolist() for m in GROUP_METRICS}
        by_group = {
            str(group): {m: (int(columns[m][i]) if m == "count" else _finite(columns[m][i])) for m in GROUP_METRICS}
            for i, group in enumerate(self.by_group.index)
        }
        return {
            "sensitive": self.sensitive, "split": self.split, "positive_class": self.positive_class,
            "min_group_size": self.min_group_size, "by_group": by_group,
            **{name: _finite(value) for name, value in self.disparities().items()},
            "four_fifths_violated": self.four_fifths_violated, "too_small": list(self.too_small),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def for_other_class(self, other: str) -> "FairnessReport":
        """The same predictions judged with ``other``, the other class of a binary target, as the positive one.

        Every number follows from this report's per-group counts (rows, base rate, TPR, FPR give the
        four confusion cells; accuracy, balanced accuracy and confidence do not depend on which class is
        positive), so a version stored with one class answers for the other: a favourable outcome
        chosen later still has the whole history. Only for a binary target: with more classes "the
        rest" is not one class.
        """
        by_group = _flipped(self.by_group)
        judged = ~by_group["too_small"].to_numpy(dtype=bool)
        disparities = dict.fromkeys(DISPARITIES)
        if int(judged.sum()) >= 2:
            rates = by_group.loc[judged]
            disparities = disparities_from_rates(rates["selection_rate"].to_numpy(dtype=float),
                                                 rates["tpr"].fillna(0.0).to_numpy(dtype=float),
                                                 rates["fpr"].fillna(0.0).to_numpy(dtype=float))
        overall: dict[str, float | None] = {}
        if self.overall and self.overall.get("count"):
            row = pd.DataFrame([{m: np.nan if v is None else v for m, v in self.overall.items()}])
            overall = {m: _finite(v) for m, v in _flipped(row).iloc[0].items() if m in GROUP_METRICS}
        return FairnessReport(sensitive=self.sensitive, split=self.split, positive_class=str(other),
                              min_group_size=self.min_group_size, by_group=by_group, overall=overall,
                              **{k: _finite(v) for k, v in disparities.items()})

    @classmethod
    def from_dict(cls, data: dict) -> "FairnessReport":
        """Rebuild a stored report (e.g. from a model version's history); ``overall`` is not stored."""
        by_group = pd.DataFrame.from_dict(data["by_group"], orient="index", columns=list(GROUP_METRICS)).astype(float)
        by_group["too_small"] = by_group.index.isin(data.get("too_small", []))
        by_group.index.name = "group"
        return cls(sensitive=data["sensitive"], split=data["split"], positive_class=data["positive_class"],
                   min_group_size=int(data.get("min_group_size", DEFAULT_MIN_GROUP_SIZE)), by_group=by_group,
                   overall={}, **{name: data.get(name) for name in DISPARITIES})


def _flipped(table: pd.DataFrame) -> pd.DataFrame:
    """Per-group rates with the other class of a binary target as the positive one (see ``for_other_class``).

    The confusion cells are recovered as whole numbers (rows × rate, rounded), so the new rates are
    the same ratios of counts the report of the other class computes directly.
    """
    out = table.copy()
    n = table["count"].to_numpy(dtype=float)
    positives = np.round(table["base_rate"].to_numpy(dtype=float) * n)
    negatives = n - positives
    tp = np.round(np.nan_to_num(table["tpr"].to_numpy(dtype=float)) * positives)  # NaN: no positives, so 0
    fp = np.round(np.nan_to_num(table["fpr"].to_numpy(dtype=float)) * negatives)  # NaN: no negatives, so 0
    tn, fn = negatives - fp, positives - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        out["base_rate"] = negatives / n
        out["selection_rate"] = (tn + fn) / n
        out["tpr"] = np.where(negatives > 0, tn / negatives, np.nan)
        out["fpr"] = np.where(positives > 0, fn / positives, np.nan)
        out["precision"] = np.where(tn + fn > 0, tn / (tn + fn), np.nan)
    return out


def fairness_report(
    y_true,
    y_pred,
    *,
    sensitive_features: pd.Series | np.ndarray,
    classes: Sequence[str],
    positive: str | None = None,
    confidence=None,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    split: str = "validation",
    sensitive_name: str | None = None,
    engine: Engine = "metricframe",
) -> FairnessReport:
    """Per-group metrics (one ``MetricFrame``) and fairlearn's disparities for predictions ``y_pred``.

    Parameters
    ----------
    y_true, y_pred : array of shape (n,), labels as text
    sensitive_features : array or Series of shape (n,), the group of each row (see
        :func:`sensitive_groups`; an ordered categorical keeps its order, missing → ``"missing"``)
    classes : every class of the target; the positive one is ``positive`` or the last
    confidence : array of shape (n,), the model's top-class probability per row, or ``None``
    min_group_size : groups with fewer rows are flagged ``too_small`` and left out of the disparities
    engine : ``"metricframe"`` (fairlearn, the reference) or ``"grouped"`` (the same report from
        one table of counts, ~100× faster; see the module docstring)
    """
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine '{engine}'; choose one of {', '.join(ENGINES)}.")
    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    groups, order = _group_codes(sensitive_features)
    _check_rows(y_true, y_pred, groups)
    positive = positive_class(classes, positive)
    name = sensitive_name or str(getattr(sensitive_features, "name", None) or "sensitive")
    conf = None if confidence is None else np.asarray(confidence, dtype=float)
    if engine == "grouped":
        counts = GroupCounts.of(groups, order, y_true, y_pred, conf)
        return counts.report(positive, min_group_size=min_group_size, split=split, sensitive=name)
    cells = _cells(groups, y_true, y_pred, conf, order)
    truth_bin = (cells["true"] == positive).to_numpy(dtype=int)
    pred_bin = (cells["pred"] == positive).to_numpy(dtype=int)
    weight = cells["rows"].to_numpy(dtype=float)
    labels = {"true_labels": cells["true"].to_numpy(dtype=object), "pred_labels": cells["pred"].to_numpy(dtype=object)}
    metrics = {"count": _count, "base_rate": _base_rate, "selection_rate": selection_rate, "accuracy": _accuracy,
               "balanced_accuracy": _balanced_accuracy, "tpr": true_positive_rate, "fpr": false_positive_rate,
               "precision": _precision, "mean_confidence": _weighted_mean}
    params = {m: {"sample_weight": weight} for m in metrics}
    params["accuracy"].update(labels)
    params["balanced_accuracy"].update(labels)
    params["mean_confidence"]["values"] = cells["confidence"].to_numpy(dtype=float)
    with _quiet():
        frame = MetricFrame(metrics=metrics, y_true=truth_bin, y_pred=pred_bin,
                            sensitive_features=cells["group"], sample_params=params)  # fixed name: no clash
    by_group = _tidy(frame.by_group.reindex(order), conf is None)
    overall = _tidy(frame.overall.to_frame().T, conf is None).iloc[0]
    by_group["too_small"] = by_group["count"] < min_group_size
    by_group.index = pd.Index([str(g) for g in by_group.index], name="group")
    judged = cells["group"].isin(by_group.index[~by_group["too_small"]]).to_numpy()
    disparities = dict.fromkeys(DISPARITIES)
    if int((~by_group["too_small"]).sum()) >= 2:
        args = dict(y_true=truth_bin[judged], y_pred=pred_bin[judged],
                    sensitive_features=cells["group"].to_numpy(dtype=object)[judged], sample_weight=weight[judged])
        with _quiet():
            disparities = {
                "demographic_parity_difference": demographic_parity_difference(**args),
                "demographic_parity_ratio": demographic_parity_ratio(**args),
                "equalized_odds_difference": equalized_odds_difference(**args),
                "equalized_odds_ratio": equalized_odds_ratio(**args),
            }
    return FairnessReport(
        sensitive=name, split=split, positive_class=positive, min_group_size=int(min_group_size), by_group=by_group,
        overall={m: _finite(overall[m]) for m in GROUP_METRICS},
        **{k: _finite(v) for k, v in disparities.items()},
    )


def _check_rows(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> None:
    if not len(y_true) == len(y_pred) == len(groups):
        raise ValueError(f"y_true, y_pred and sensitive_features differ in length "
                         f"({len(y_true)}, {len(y_pred)}, {len(groups)}).")
    if len(y_true) == 0:
        raise DataError("No labelled rows to compare groups on; label some rows of this split first.")


def _tidy(table: pd.DataFrame, no_confidence: bool) -> pd.DataFrame:
    """Counts as integers; rates undefined for a group (no positives, no negatives) as NaN, not fairlearn's 0."""
    table = table.astype(float)
    table["count"] = table["count"].round().astype(int)
    table.loc[table["base_rate"] <= 0, "tpr"] = np.nan
    table.loc[table["base_rate"] >= 1, "fpr"] = np.nan
    if no_confidence:
        table["mean_confidence"] = np.nan
    return table


# --------------------------------------------------------------------------- the grouped engine
@dataclass(frozen=True)
class GroupCounts:
    """Rows per (group, true label, predicted label), and confidence summed per group: every number of
    a report, for every positive class, follows from this table (``engine="grouped"``).

    ``cells[g, t, p]`` counts the rows of group ``groups[g]`` with true label ``labels[t]`` and
    predicted label ``labels[p]``; one ``np.bincount`` over the rows builds it.
    """

    groups: tuple[str, ...]  # display order (see ``_group_codes``)
    labels: tuple[str, ...]  # every label seen in y_true or y_pred
    cells: np.ndarray  # shape (n_groups, n_labels, n_labels), row counts
    confidence: np.ndarray | None  # shape (n_groups,), summed top-class probability, or None

    @classmethod
    def of(cls, codes: np.ndarray, names: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray,
           confidence: np.ndarray | None) -> "GroupCounts":
        """Count the rows; ``codes``/``names`` as from ``_group_codes``, labels as text."""
        n = len(y_true)
        label_codes, labels = pd.factorize(np.concatenate([y_true, y_pred]))
        k, g = max(len(labels), 1), len(names)
        key = (codes * k + label_codes[:n]) * k + label_codes[n:]
        cells = np.bincount(key, minlength=g * k * k).reshape(g, k, k)
        sums = None if confidence is None else np.bincount(codes, weights=confidence, minlength=g)
        return cls(groups=tuple(names), labels=tuple(str(v) for v in labels), cells=cells, confidence=sums)

    def rates(self, positive: str) -> pd.DataFrame:
        """The ``GROUP_METRICS`` per group, undefined → NaN (as in the report's ``by_group``), plus
        ``tpr_fairlearn``/``fpr_fairlearn``: fairlearn's rates, 0 where there is nothing to divide by."""
        return pd.DataFrame(_rates(self.cells, self.confidence, self._position(positive)),
                            index=pd.Index(list(self.groups), name="group"))

    def _position(self, positive: str) -> int | None:
        return self.labels.index(positive) if positive in self.labels else None

    def report(self, positive: str, *, min_group_size: int = DEFAULT_MIN_GROUP_SIZE, split: str = "validation",
               sensitive: str = "sensitive") -> FairnessReport:
        """The same :class:`FairnessReport` as the ``MetricFrame`` engine's, for one positive class."""
        j = self._position(positive)
        table = _rates(self.cells, self.confidence, j)
        overall = _rates(self.cells.sum(axis=0, keepdims=True),
                         None if self.confidence is None else self.confidence.sum(keepdims=True), j)
        judged = table["count"] >= min_group_size
        disparities = dict.fromkeys(DISPARITIES)
        if int(judged.sum()) >= 2:
            disparities = disparities_from_rates(table["selection_rate"][judged], table["tpr_fairlearn"][judged],
                                                 table["fpr_fairlearn"][judged])
        by_group = pd.DataFrame({m: table[m] for m in GROUP_METRICS}, index=pd.Index(list(self.groups), name="group"))
        by_group["too_small"] = ~judged
        return FairnessReport(
            sensitive=sensitive, split=split, positive_class=positive, min_group_size=int(min_group_size),
            by_group=by_group, overall={m: _finite(overall[m][0]) for m in GROUP_METRICS},
            **{k: _finite(v) for k, v in disparities.items()},
        )


def _rates(cells: np.ndarray, confidence: np.ndarray | None, j: int | None) -> dict[str, np.ndarray]:
    """Every ``GROUP_METRICS`` column from counts ``cells[group, true, predicted]`` (positive label at
    position ``j``; ``None``: it never occurs), as the ``MetricFrame`` engine computes it on the rows."""
    cells = np.asarray(cells, dtype=float)
    rows = cells.sum(axis=(1, 2))
    truly = cells.sum(axis=2)  # rows per true label
    if j is None:
        tp = positives = selected = np.zeros(len(rows))
    else:
        tp, positives, selected = cells[:, j, j], truly[:, j], cells[:, :, j].sum(axis=1)
    negatives, fp = rows - positives, selected - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.diagonal(cells, axis1=1, axis2=2) / truly  # NaN for a label absent from a group's truth
        balanced = np.nanmean(recall, axis=1)  # sklearn: the mean over the labels present in y_true
        tpr, fpr = tp / positives, fp / negatives  # NaN without positives / negatives (fairlearn: 0)
        return {
            "count": rows.round().astype(np.int64),
            "base_rate": positives / rows,
            "selection_rate": selected / rows,
            "accuracy": np.trace(cells, axis1=1, axis2=2) / rows,
            "balanced_accuracy": balanced,
            "tpr": tpr,
            "fpr": fpr,
            "precision": tp / selected,  # NaN when nothing was predicted positive
            "mean_confidence": np.full(len(rows), np.nan) if confidence is None else confidence / rows,
            "tpr_fairlearn": np.where(positives > 0, tpr, 0.0),
            "fpr_fairlearn": np.where(negatives > 0, fpr, 0.0),
        }


def disparities_from_rates(selection_rate: np.ndarray, tpr: np.ndarray, fpr: np.ndarray) -> dict[str, float]:
    """fairlearn's four disparities (``method="between_groups"``, ``agg="worst_case"``) from per-group rates.

    As in ``fairlearn.metrics._fairness_metrics``: a difference is the largest minus the smallest
    group rate, a ratio the smallest over the largest (NaN when the largest is 0); equalized odds
    takes the larger TPR/FPR difference and the smaller ratio, with Python's ``max``/``min`` over
    (TPR, FPR) in that order, so a NaN ratio propagates exactly as in fairlearn. Pass fairlearn's
    rates: 0 for a group without positives (TPR) or negatives (FPR), not NaN.

    Parameters
    ----------
    selection_rate, tpr, fpr : arrays of shape (n_groups,), n_groups >= 1
    """
    def difference(rates: np.ndarray) -> float:
        return float(np.max(rates) - np.min(rates))

    def ratio(rates: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(np.min(rates)) / np.float64(np.max(rates)))

    rates = {"selection": np.asarray(selection_rate, dtype=float), "tpr": np.asarray(tpr, dtype=float),
             "fpr": np.asarray(fpr, dtype=float)}
    return {
        "demographic_parity_difference": difference(rates["selection"]),
        "demographic_parity_ratio": ratio(rates["selection"]),
        "equalized_odds_difference": max([difference(rates["tpr"]), difference(rates["fpr"])]),
        "equalized_odds_ratio": min([ratio(rates["tpr"]), ratio(rates["fpr"])]),
    }


def breakdown(
    model: FittedModel,
    dataset: Dataset,
    columns: Sequence[str],
    *,
    part: str = "validation",
    labels: pd.Series | None = None,
    positive: str | None = None,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    bins: int = DEFAULT_BINS,
    threads: int = 1,
    engine: Engine = "metricframe",
) -> FairnessReport:
    """The report of a fitted model on one split's labelled rows (``labels``: effective labels, default original)."""
    labels = dataset.labels if labels is None else labels
    truth = labels.loc[dataset.rows(part)].dropna()
    preds = predict_with_confidence(model, dataset.features.loc[truth.index], dataset.schema.classes, threads=threads)
    return report_for(dataset, truth, preds, columns, part=part, positive=positive, min_group_size=min_group_size,
                      bins=bins, engine=engine)


def report_for(dataset: Dataset, truth: pd.Series, preds: Predictions, columns: Sequence[str], *,
               part: str = "validation", positive: str | None = None,
               min_group_size: int = DEFAULT_MIN_GROUP_SIZE, bins: int = DEFAULT_BINS,
               engine: Engine = "metricframe") -> FairnessReport:
    """The report of predictions already made on the rows of ``truth`` (indexed by row key); ``positive``
    defaults to the schema's favourable outcome, then to the last class."""
    groups = sensitive_groups(dataset.frame, columns, bins=bins).loc[truth.index]
    positive = positive if positive is not None else dataset.schema.favourable
    return fairness_report(truth.to_numpy(dtype=object), preds.labels, sensitive_features=groups,
                           classes=dataset.schema.classes, positive=positive, confidence=preds.confidence,
                           min_group_size=min_group_size, split=part, sensitive_name=attribute_name(columns),
                           engine=engine)


def summaries(dataset: Dataset, truth: pd.Series, preds: Predictions, *,
              sets: Sequence[Sequence[str]] | None = None, part: str = "validation",
              engine: Engine = "grouped") -> list[dict]:
    """JSON-ready reports stored with a model version: every attribute set (default: each sensitive
    attribute and each pair) for the classes of :func:`stored_classes` (binary: the favourable
    outcome; multiclass: every class one-vs-rest); empty when the schema has no sensitive attribute.

    Runs on every retrain, so by default on the grouped engine: one table of counts per attribute
    set serves every positive class (``engine="metricframe"``: the reference, 5 ``MetricFrame`` per report).
    """
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine '{engine}'; choose one of {', '.join(ENGINES)}.")
    sets = attribute_sets(dataset.schema.sensitive) if sets is None else [tuple(s) for s in sets if s]
    classes = dataset.schema.classes
    positives = stored_classes(dataset.schema)
    if engine == "metricframe":
        return [report_for(dataset, truth, preds, columns, part=part, positive=positive, engine=engine).to_dict()
                for columns in sets for positive in positives]
    y_true = truth.to_numpy(dtype=object).astype(str)
    y_pred = np.asarray(preds.labels, dtype=object).astype(str)
    confidence = np.asarray(preds.confidence, dtype=float)
    frame = dataset.frame
    positions = frame.index.get_indexer(truth.index)
    if (positions < 0).any():  # a row key the table does not have: fail as ``.loc`` does
        positions = pd.Series(np.arange(len(frame)), index=frame.index).loc[truth.index].to_numpy()
    parts: dict[str, pd.Series] = {}  # each column's groups, cut once for all the sets it is in
    reports = []
    for columns in sets:
        columns = _checked_columns(frame, columns)
        for column in columns:
            if column not in parts:
                parts[column] = group_labels(frame[column])
        codes, order = _codes_at([parts[c] for c in columns], positions)
        _check_rows(y_true, y_pred, codes)
        counts = GroupCounts.of(codes, order, y_true, y_pred, confidence)
        reports += [counts.report(positive_class(classes, positive), split=part, sensitive=attribute_name(columns))
                    .to_dict() for positive in positives]
    return reports


def stored_classes(schema) -> list[str]:
    """The positive classes a model version stores reports for.

    Binary: one, the favourable outcome (before one is chosen, the last class); the other class's
    report follows from it (:meth:`FairnessReport.for_other_class`), so storing both would add
    nothing. Multiclass: every class one against the rest, up to ``MAX_HISTORY_CLASSES``, and the
    favourable outcome whatever its position.
    """
    classes = [str(c) for c in schema.classes]
    favourable = getattr(schema, "favourable", None)
    if len(classes) == 2:
        return [positive_class(classes, favourable)]
    chosen = classes[:MAX_HISTORY_CLASSES]
    return chosen + [favourable] if favourable is not None and favourable not in chosen else chosen


def find_summary(stored: Sequence[dict], columns: Sequence[str], positive: str, split: str = "validation", *,
                 classes: Sequence[str] | None = None) -> FairnessReport | None:
    """The stored report of one attribute set and positive class, if the version has one.

    With ``classes`` of a binary target, a report stored for the other class answers too (versions
    stored before the favourable outcome was chosen, or with the last class).
    """
    name = attribute_name(columns)
    other = None
    for item in stored:
        if item.get("sensitive") != name or item.get("split") != split:
            continue
        if item.get("positive_class") == positive:
            return FairnessReport.from_dict(item)
        other = other or item
    binary = classes is not None and len(classes) == 2 and positive in [str(c) for c in classes]
    if other is not None and binary and other.get("positive_class") in [str(c) for c in classes]:
        return FairnessReport.from_dict(other).for_other_class(positive)
    return None


def history_frame(versions: Sequence, columns: Sequence[str], positive: str, *,
                  classes: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per model version with a stored report: human labels, validation accuracy and the disparities.

    ``versions`` are :class:`hitl_core.records.ModelVersion`; versions trained before fairness was
    stored (or without this attribute set) are left out. ``positive`` is the favourable outcome;
    pass the target's ``classes`` so that a binary version stored with the other class is derived
    (see :func:`find_summary`).
    """
    rows = []
    for v in versions:
        report = find_summary(getattr(v, "fairness", None) or [], columns, positive, classes=classes)
        if report is None:
            continue
        rows.append({"version": v.version, "human labels": v.n_human_labels, "accuracy": v.validation.get("accuracy"),
                     **report.disparities(), "four_fifths_violated": report.four_fifths_violated,
                     "too_small": ", ".join(report.too_small)})
    return pd.DataFrame(rows, columns=["version", "human labels", "accuracy", *DISPARITIES, "four_fifths_violated",
                                       "too_small"])


# --------------------------------------------------------------------------- the humans' fairness
@dataclass(frozen=True)
class HumanFairness:
    """How the reviewers' decisions differ by group: a reviewer's own bias shows here.

    ``by_group`` columns: ``decisions``, ``rows`` (distinct rows decided), ``override_rate``
    (the person picked another label than the model predicted), ``agreement_rate`` (the person
    kept the model's label), ``correction_rate`` (the person changed a label the row already had,
    among decisions on labelled rows), ``human_positive_rate`` and ``model_positive_rate``
    (share labelled / predicted as the positive class, on the same decisions), ``too_small``.
    """

    sensitive: str
    positive_class: str
    min_group_size: int
    by_group: pd.DataFrame
    human_parity_ratio: float | None  # fairlearn's demographic parity ratio of the people's labels
    model_parity_ratio: float | None  # ... and of the model's predictions on the same rows
    n_decisions: int

    @property
    def too_small(self) -> tuple[str, ...]:
        return tuple(str(g) for g in self.by_group.index[self.by_group["too_small"].to_numpy(dtype=bool)])


HUMAN_METRICS: dict[str, str] = {
    "decisions": "Decisions", "rows": "Rows decided", "override_rate": "Override rate",
    "agreement_rate": "Agreed with model", "correction_rate": "Correction rate",
    "human_positive_rate": "Labelled positive", "model_positive_rate": "Predicted positive",
}


def human_fairness(decisions: pd.DataFrame, groups: pd.Series, *, classes: Sequence[str], positive: str | None = None,
                   min_group_size: int = DEFAULT_MIN_GROUP_SIZE) -> HumanFairness | None:
    """Per-group rates of the people's decisions (``Store.decisions``) joined to each row's group.

    ``groups`` is indexed by row key (:func:`sensitive_groups` of the dataset frame). ``None``
    when there is no decision with a recorded model prediction yet.
    """
    positive = positive_class(classes, positive)
    decided = decisions[decisions["predicted_label"].notna()] if not decisions.empty else decisions
    if decided.empty:
        return None
    keys = decided["row_key"].astype(str).to_numpy(dtype=object)
    row_groups = groups.reindex(pd.Index(keys, dtype=object))
    codes, order = _group_codes(row_groups.reset_index(drop=True))
    text = np.asarray(order, dtype=object)[codes]
    human = decided["new_label"].astype(str).to_numpy(dtype=object)
    model = decided["predicted_label"].astype(str).to_numpy(dtype=object)
    old = decided["old_label"]
    had_label = old.notna().to_numpy()
    changed = had_label & (old.astype(object).astype(str).to_numpy(dtype=object) != human)
    override = (decided["action"] == "override").to_numpy(dtype=bool)
    human_bin = (human == positive).astype(int)
    model_bin = (model == positive).astype(int)
    metrics = {"decisions": count, "override_rate": _share, "agreement_rate": _agreement,
               "correction_rate": _share_among, "human_positive_rate": _share, "model_positive_rate": selection_rate}
    params = {"override_rate": {"values": override}, "agreement_rate": {"human": human, "model": model},
              "correction_rate": {"values": changed, "among": had_label}, "human_positive_rate": {"values": human_bin}}
    with _quiet():
        frame = MetricFrame(metrics=metrics, y_true=human_bin, y_pred=model_bin,
                            sensitive_features=pd.Series(text, name="group"), sample_params=params)
    by_group = frame.by_group.reindex(order).astype(float)
    by_group["decisions"] = by_group["decisions"].round().astype(int)
    rows = pd.Series(keys).groupby(text).nunique()
    by_group.insert(1, "rows", rows.reindex(order).to_numpy(dtype=int))
    by_group["too_small"] = by_group["decisions"] < min_group_size
    by_group.index = pd.Index([str(g) for g in by_group.index], name="group")
    judged = np.isin(text, by_group.index[~by_group["too_small"]].to_numpy(dtype=object))
    human_ratio = model_ratio = None
    if int((~by_group["too_small"]).sum()) >= 2:
        with _quiet():
            human_ratio = demographic_parity_ratio(human_bin[judged], human_bin[judged],
                                                   sensitive_features=text[judged])
            model_ratio = demographic_parity_ratio(human_bin[judged], model_bin[judged],
                                                   sensitive_features=text[judged])
    return HumanFairness(sensitive=str(groups.name or "sensitive"), positive_class=positive,
                         min_group_size=int(min_group_size), by_group=by_group[[*HUMAN_METRICS, "too_small"]],
                         human_parity_ratio=_finite(human_ratio), model_parity_ratio=_finite(model_ratio),
                         n_decisions=len(decided))


# --------------------------------------------------------------------------- mitigation to compare
class _ScoreColumn(ClassifierMixin, BaseEstimator):
    """A fitted "model" whose positive-class probability is its single input column.

    Lets fairlearn's ``ThresholdOptimizer`` post-process any fitted pipeline's scores without
    seeing (and re-validating) its raw, mixed-type features.
    """

    def fit(self, X=None, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X) -> np.ndarray:
        p = np.asarray(X, dtype=float).reshape(len(X), -1)[:, 0]
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


@dataclass(frozen=True)
class Mitigation:
    """The model beside its ``ThresholdOptimizer``-post-processed twin, on the same split and groups."""

    constraint: str
    unmitigated: FairnessReport
    mitigated: FairnessReport

    def comparison(self) -> pd.DataFrame:
        """Accuracy against disparity, one row per model."""
        rows = []
        for name, report in (("model", self.unmitigated), (f"mitigated ({CONSTRAINTS[self.constraint].lower()})",
                                                           self.mitigated)):
            rows.append({"model": name, "accuracy": report.overall["accuracy"],
                         "balanced_accuracy": report.overall["balanced_accuracy"],
                         "selection_rate": report.overall["selection_rate"], **report.disparities(),
                         "four_fifths_violated": report.four_fifths_violated})
        return pd.DataFrame(rows).set_index("model")


def mitigate(
    model: FittedModel,
    dataset: Dataset,
    columns: Sequence[str],
    *,
    constraint: Constraint = "demographic_parity",
    labels: pd.Series | None = None,
    part: str = "validation",
    positive: str | None = None,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    bins: int = DEFAULT_BINS,
    seed: int = 0,
    threads: int = 1,
) -> Mitigation:
    """Fit fairlearn's ``ThresholdOptimizer`` on the model's scores for the labelled training pool
    (never on validation or test), then compare both models on ``part``.

    Thresholds per group turn the positive-class probability into a yes/no that meets
    ``constraint`` on the training pool; a row not made positive gets the model's most probable
    other class. Predictions are randomised between two thresholds, seeded by ``seed``.
    """
    if constraint not in CONSTRAINTS:
        raise DataError(f"Unknown constraint '{constraint}'; choose one of {', '.join(CONSTRAINTS)}.")
    classes = dataset.schema.classes
    positive = positive_class(classes, positive if positive is not None else dataset.schema.favourable)
    j = classes.index(positive)
    labels = dataset.labels if labels is None else labels
    groups = sensitive_groups(dataset.frame, columns, bins=bins).astype(str)
    train = labels.loc[dataset.rows("train")].dropna()
    truth = labels.loc[dataset.rows(part)].dropna()
    train_preds = predict_with_confidence(model, dataset.features.loc[train.index], classes, threads=threads)
    preds = predict_with_confidence(model, dataset.features.loc[truth.index], classes, threads=threads)
    optimizer = ThresholdOptimizer(estimator=_ScoreColumn().fit(), constraints=constraint, objective="accuracy_score",
                                   prefit=True, predict_method="predict_proba")
    unseen = sorted(set(groups.loc[truth.index]) - set(groups.loc[train.index]))
    if unseen:
        raise DataError(f"Group(s) {unseen} have no labelled training row, so no threshold can be learnt for them; "
                        "label some of their rows first.")
    try:
        with _quiet():
            optimizer.fit(train_preds.proba[:, [j]], (train.to_numpy(dtype=object) == positive).astype(int),
                          sensitive_features=groups.loc[train.index].to_numpy(dtype=object))
            chosen = optimizer.predict(preds.proba[:, [j]], random_state=seed,
                                       sensitive_features=groups.loc[truth.index].to_numpy(dtype=object))
    except (ValueError, ZeroDivisionError) as exc:
        raise DataError(f"The {CONSTRAINTS[constraint].lower()} thresholds could not be fitted ({exc}); every group "
                        "needs labelled training rows of both outcomes.") from exc
    others = preds.proba.copy()
    others[:, j] = -1.0
    fallback = np.asarray(classes, dtype=object)[others.argmax(axis=1)]
    mitigated_labels = np.where(np.asarray(chosen) == 1, positive, fallback)
    group_of_rows = sensitive_groups(dataset.frame, columns, bins=bins).loc[truth.index]
    common = dict(sensitive_features=group_of_rows, classes=classes, positive=positive, min_group_size=min_group_size,
                  split=part, sensitive_name=attribute_name(columns))
    return Mitigation(
        constraint=constraint,
        unmitigated=fairness_report(truth.to_numpy(dtype=object), preds.labels, confidence=preds.confidence, **common),
        mitigated=fairness_report(truth.to_numpy(dtype=object), mitigated_labels, **common),
    )
