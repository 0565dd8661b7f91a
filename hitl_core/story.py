"""Plain-language sentences generated from a project's current numbers: what the Overview and the model card say.

Pure: numbers in, small frozen results out, each with ``sentence()``. Nothing here reads the
database; nothing is fixed prose, so a sentence changes when the numbers change. Sentences are
plain text (no markup): the page escapes them for Markdown, the model card for HTML or Markdown.

Intervals are 95 % **Wilson score** intervals (``scipy.stats.binomtest(...).proportion_ci``) on the
held-out test rows: unlike "± 1.96 standard errors" they stay inside 0–100 % and are honest on a
small test set or an accuracy near 1.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from hitl_core.data import Schema
from hitl_core.fairness import FairnessReport
from hitl_core.records import ModelVersion

CONFIDENCE = 0.95
SAME = 0.0005  # changes smaller than this show as 0.000 / 0 %: "no change", never a direction
EVEN_RATIO = 0.995  # a selection-rate ratio at least this close to 1: no group is favoured
TREND = 0.3  # |Spearman| between a feature's value and its SHAP value above which "higher X pushes ..." is said
TOP_DRIVERS = 3


NBSP = "\u00a0"  # between a number and its % sign: "55 %" never breaks across two lines


def pct(share: float) -> str:
    """A share as people say it on a slide: ``71 %`` (with a no-break space)."""
    return f"{100 * share:.0f}{NBSP}%"


def points(difference: float) -> str:
    """A difference of two shares in percentage points: ``3 points``."""
    value = abs(100 * difference)
    return f"{value:.0f} point{'' if round(value) == 1 else 's'}" if value >= 0.5 else f"{value:.1f} points"


def ratio_text(ratio: float) -> str:
    """A ratio with two decimals, or three where two would round across the 0.8 line (0.7996 is not "0.80, met")."""
    two = f"{ratio:.2f}"
    return two if (float(two) >= 0.8) == (ratio >= 0.8) else f"{ratio:.3f}"


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / n``: stays in [0, 1] and is honest on small ``n``."""
    if n <= 0:
        raise ValueError("An interval needs at least one scored row; the held-out test set is empty.")
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


# --------------------------------------------------------------------------- what the model gets right
@dataclass(frozen=True)
class Accuracy:
    """Held-out test accuracy of one version with its Wilson interval, beside the majority-class guess."""

    version: int
    accuracy: float
    low: float
    high: float
    n: int
    majority: float | None  # accuracy of always guessing the most common training class (same rows)
    majority_class: str | None = None
    random: float | None = None

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` / ``unclear``: whether the interval clears the majority guess."""
        if self.majority is None:
            return "unclear"
        return "better" if self.low > self.majority else "worse" if self.high < self.majority else "unclear"

    def sentence(self) -> str:
        text = (f"On {self.n:,} held-out rows it never trained on, the model (v{self.version}) is right "
                f"{pct(self.accuracy)} of the time ({pct(CONFIDENCE)} interval {pct(self.low)} to {pct(self.high)}, "
                "Wilson).")
        if self.majority is None:
            return text
        guess = f"always answering '{self.majority_class}'" if self.majority_class else "always guessing the most common answer"
        compare = {"better": "clearly better than", "worse": "worse than",
                   "unclear": "not clearly different from"}[self.verdict]
        return f"{text} That is {compare} {guess}, which is right {pct(self.majority)}."


def accuracy(version: ModelVersion, n_test: int, *, majority_class: str | None = None) -> Accuracy | None:
    """The held-out story of ``version``; ``None`` when it has no test accuracy (an empty test split)."""
    value = version.test.get("accuracy")
    if value is None or n_test <= 0:
        return None
    low, high = wilson_interval(round(value * n_test), n_test)
    baselines = version.baselines or {}
    majority = baselines.get("majority", {}).get("test", {}).get("accuracy")
    random = baselines.get("random", {}).get("test", {}).get("accuracy")
    return Accuracy(version=version.version, accuracy=float(value), low=low, high=high, n=int(n_test),
                    majority=majority, majority_class=majority_class, random=random)


# --------------------------------------------------------------------------- what people did
@dataclass(frozen=True)
class ReviewEffect:
    """How many predictions people reviewed and changed, and held-out accuracy before their labels vs now."""

    n_reviewed: int  # rows with at least one human decision
    n_changed: int  # of those, rows whose latest decision differs from the model's prediction
    n_people: int
    before: Accuracy | None  # the last version trained without human labels
    now: Accuracy | None  # the current version
    now_has_labels: bool  # the current version was trained with human labels
    set_aside: int | None = None  # newest version trained on their labels, when an older one is current

    @property
    def change(self) -> float | None:
        if self.before is None or self.now is None or not self.now_has_labels:
            return None
        return self.now.accuracy - self.before.accuracy

    @property
    def margin(self) -> float | None:
        """Half the width of the current interval: a change smaller than this is within the noise."""
        return None if self.now is None else (self.now.high - self.now.low) / 2

    def sentence(self) -> str:
        if self.n_reviewed == 0:
            return ("Nobody has reviewed a prediction yet: on the Review page, check the predictions the model is "
                    "least sure of, and each correction trains a better version.")
        who = "one person" if self.n_people == 1 else f"{self.n_people:,} people"
        text = (f"{who.capitalize()} reviewed {self.n_reviewed:,} prediction{'s' if self.n_reviewed != 1 else ''} "
                f"and changed {self.n_changed:,} ({pct(self.n_changed / self.n_reviewed)}).")
        change = self.change
        if change is None and self.set_aside is not None:
            return (f"{text} The current model (v{self.now.version if self.now else '?'}) does not include their "
                    f"labels: v{self.set_aside}, trained on them, is not the current one (see the Versions page).")
        if change is None:
            return f"{text} No model has been trained on their labels yet: retrain on the Review page to see the effect."
        before, now = self.before, self.now
        if abs(change) < SAME:
            return (f"{text} Trained on their labels, held-out accuracy stayed at {pct(now.accuracy)} "
                    f"(v{before.version} and v{now.version}): no change.")
        direction = "rose" if change > 0 else "fell"
        text += (f" Trained on their labels, held-out accuracy {direction} from {pct(before.accuracy)} "
                 f"(v{before.version}) to {pct(now.accuracy)} (v{now.version})")
        if abs(change) < self.margin:
            return f"{text}, within the ±{points(self.margin)} margin of error: no clear change yet."
        return f"{text}."


def review_effect(versions: Sequence[ModelVersion], current: ModelVersion, decisions: pd.DataFrame, n_test: int, *,
                  majority_class: str | None = None) -> ReviewEffect:
    """People's decisions (``Store.decisions``) and what the labels did to the current version's test accuracy."""
    if decisions.empty:
        n_reviewed = n_changed = n_people = 0
    else:
        latest = decisions.sort_values("id").groupby("row_key").last()
        n_reviewed = len(latest)
        n_changed = int((latest["new_label"].astype(str) != latest["predicted_label"].astype(str)).sum())
        n_people = int(decisions["user"].nunique())
    unlabelled = [v for v in versions if v.n_human_labels == 0 and v.version <= current.version]
    before = unlabelled[-1] if unlabelled else min(versions, key=lambda v: v.version)
    labelled = [v.version for v in versions if v.n_human_labels > 0]
    return ReviewEffect(n_reviewed=n_reviewed, n_changed=n_changed, n_people=n_people,
                        before=accuracy(before, n_test, majority_class=majority_class),
                        now=accuracy(current, n_test, majority_class=majority_class),
                        now_has_labels=current.n_human_labels > 0,
                        set_aside=max(labelled) if labelled and current.n_human_labels == 0 else None)


# --------------------------------------------------------------------------- fairness
def outcome(schema: Schema) -> str | None:
    """The favourable outcome as a phrase (``approved = yes``), or ``None`` while nobody has named it."""
    return None if schema.favourable is None else f"{schema.target} = {schema.favourable}"


@dataclass(frozen=True)
class GroupGap:
    """Which group the model gives the favourable outcome most often, which least, and their ratio."""

    attribute: str
    outcome: str
    favoured: str
    favoured_rate: float
    least: str
    least_rate: float
    ratio: float | None  # smallest over largest selection rate of the compared groups (fairlearn)
    n_groups: int
    too_small: tuple[str, ...] = ()
    split: str = "validation"

    @property
    def four_fifths_met(self) -> bool | None:
        return None if self.ratio is None else self.ratio >= 0.8

    @property
    def even(self) -> bool:
        return self.ratio is not None and self.ratio >= EVEN_RATIO

    def sentence(self) -> str:
        share = f"Share predicted '{self.outcome}' by {self.attribute} ({self.split})"
        if self.even:
            return f"{share}: {pct(self.favoured_rate)} in every group; no group is favoured."
        others = f" (and {self.n_groups - 2} group{'s' if self.n_groups > 3 else ''} between)" if self.n_groups > 2 else ""
        verdict = "four-fifths rule met" if self.four_fifths_met else "four-fifths rule NOT met"
        text = (f"{share}: {pct(self.favoured_rate)} for {self.favoured}, {pct(self.least_rate)} for "
                f"{self.least}{others}; ratio {ratio_text(self.ratio)}, {verdict}.")
        if self.too_small:
            text += f" Too few rows to judge: {', '.join(self.too_small)}."
        return text


def group_gap(report: FairnessReport, schema: Schema) -> GroupGap | None:
    """The gap in one report for the schema's favourable outcome; ``None`` with fewer than two comparable groups."""
    phrase = outcome(schema)
    rates = report.by_group.loc[list(report.judged), "selection_rate"].astype(float).dropna()
    if phrase is None or len(rates) < 2:
        return None
    favoured, least = str(rates.idxmax()), str(rates.idxmin())
    ratio = report.demographic_parity_ratio
    return GroupGap(attribute=report.sensitive, outcome=phrase, favoured=favoured, favoured_rate=float(rates.max()),
                    least=least, least_rate=float(rates.min()), ratio=None if ratio is None else float(ratio),
                    n_groups=len(rates), too_small=report.too_small, split=report.split)


def widest_gap(gaps: Sequence[GroupGap | None]) -> GroupGap | None:
    """The attribute with the lowest selection-rate ratio: the one a decision-maker should hear about first."""
    known = [g for g in gaps if g is not None and g.ratio is not None]
    return min(known, key=lambda g: g.ratio) if known else None


def fairness_missing(schema: Schema) -> str | None:
    """Why there is no fairness sentence, and what to do about it; ``None`` when there can be one."""
    if not schema.sensitive:
        return ("No sensitive attribute is marked, so nobody has checked whom the model favours: mark one "
                "(e.g. gender) when creating the project on the Data page.")
    if schema.favourable is None:
        return (f"Which answer of '{schema.target}' is the favourable outcome for people is not set, so fairness "
                "is not judged: choose it on the Data page.")
    return None


# --------------------------------------------------------------------------- what drives the model (SHAP)
@dataclass(frozen=True)
class Driver:
    """One feature's average pull (mean |SHAP|) and which way it pushes the explained class."""

    feature: str
    importance: float
    direction: str  # "toward" | "against" | "mixed" (numeric: higher values push that way)
    toward: str | None = None  # categorical: the value that pushes toward the class most
    against: str | None = None  # categorical: the value that pushes against it most

    def short(self) -> str:
        """A few words for a chart bar: "higher → toward", "'salaried' toward, 'unemployed' against"."""
        if self.toward is not None:
            return f"'{self.toward}' toward, '{self.against}' against"
        return {"toward": "higher → toward", "against": "higher → against", "mixed": "both ways"}[self.direction]

    def phrase(self, target: str) -> str:
        if self.toward is not None:
            return f"{self.feature} '{self.toward}' pushes toward {target}, '{self.against}' against it"
        if self.direction == "mixed":
            return f"{self.feature} matters, but pushes both ways"
        return f"higher {self.feature} pushes {'toward' if self.direction == 'toward' else 'against'} {target}"


def drivers(tidy: pd.DataFrame, categorical: Sequence[str], *, k: int = TOP_DRIVERS) -> list[Driver]:
    """The ``k`` features with the largest mean |SHAP|, with their direction, from tidy SHAP values.

    ``tidy`` is :func:`hitl_core.explain.global_shap` (row, feature, shap, value). A numeric feature's
    direction is the sign of the Spearman correlation between its values and its SHAP values (weak
    correlation: "both ways"); a categorical feature names its values with the highest and lowest
    mean SHAP value.
    """
    if tidy.empty:
        return []
    ranked = tidy.assign(abs_shap=tidy["shap"].abs()).groupby("feature")["abs_shap"].mean()
    result = []
    for feature, weight in ranked.sort_values(ascending=False, kind="stable").iloc[:k].items():
        rows = tidy[tidy["feature"] == feature]
        if feature in set(categorical):
            means = rows.groupby(rows["value"].astype(str))["shap"].mean()
            if len(means) < 2:
                result.append(Driver(str(feature), float(weight), "mixed"))
                continue
            result.append(Driver(str(feature), float(weight), "mixed", toward=str(means.idxmax()),
                                 against=str(means.idxmin())))
            continue
        values = pd.to_numeric(rows["value"], errors="coerce")
        known = values.notna() & rows["shap"].notna()
        corr = values[known].rank().corr(rows["shap"][known].rank()) if known.sum() > 2 else np.nan
        direction = "mixed" if not np.isfinite(corr) or abs(corr) < TREND else "toward" if corr > 0 else "against"
        result.append(Driver(str(feature), float(weight), direction))
    return result


def drivers_sentence(found: Sequence[Driver], target: str, n_rows: int) -> str:
    """``income pushes toward approval most; debt pushes against``: the SHAP ranking in words."""
    if not found:
        return "No explanation computed yet."
    parts = [d.phrase(f"'{target}'") for d in found]
    first = parts[0] + " most"
    return (f"What moves the model (SHAP on {n_rows:,} sampled rows): {'; '.join([first, *parts[1:]])}. "
            "Each push is relative to the average prediction, for this model only; it is not cause and effect.")


def explained_class(schema: Schema) -> str:
    """The class whose score the words explain: the favourable outcome, else the last class."""
    return schema.favourable if schema.favourable is not None else schema.classes[-1]
