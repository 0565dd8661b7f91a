"""The project brief: hypothesis, stakeholders, a SMART goal, a premortem and safety checks on every version.

Pure rules over plain dataclasses; the store keeps every saved brief as a new version
(:func:`hitl_core.actions.save_brief` writes, :func:`current_brief` and :func:`brief_history` read).
Other pages and the model card use three functions:

* ``current_brief(store, project_id) -> Brief | None``: the newest saved brief (``None``: none yet);
* ``evaluate_checks(brief, version, schema) -> list[CheckResult]``: each safety check on one
  :class:`~hitl_core.records.ModelVersion`, from its stored metrics only (no model is loaded);
* ``goal_progress(brief, version, today) -> GoalProgress | None``: where the version stands against
  the SMART goal (``None``: the brief has no goal), with ``.sentence()`` for people.

A check whose number the version does not hold (no fairness stored, a group too small, no
favourable outcome named) is neither passed nor failed: ``passed is None`` and ``detail`` says why.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

import pandas as pd

from hitl_core.data import Schema
from hitl_core.evaluate import LOWER_IS_BETTER, METRIC_NAMES
from hitl_core.fairness import FOUR_FIFTHS, attribute_name, attribute_sets
from hitl_core.records import ModelVersion

if TYPE_CHECKING:  # only the readers at the bottom need the store
    from hitl_core.store import Store

Comparison = Literal[">=", "<="]
Split = Literal["validation", "test"]
CheckKind = Literal["metric", "four_fifths", "class_recall", "beats_majority"]
StakeholderKind = Literal["invested", "impacted", "interested"]

COMPARISONS: dict[str, str] = {">=": "≥", "<=": "≤"}
SPLITS: dict[str, str] = {"validation": "validation", "test": "held-out test"}
STAKEHOLDER_KINDS: dict[str, str] = {
    "invested": "invested (pays for it, owns the decision)",
    "impacted": "impacted (the decision is about them)",
    "interested": "interested (watches: regulator, press, other teams)",
}
CHECK_KINDS: dict[str, str] = {
    "metric": "metric ≥/≤ value",
    "four_fifths": "four-fifths rule met for an attribute",
    "class_recall": "recall of a class ≥ value",
    "beats_majority": "no worse than the majority baseline",
}
METRIC_TEXT: dict[str, str] = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "precision_macro": "precision (macro)",
    "recall_macro": "recall (macro)", "f1_macro": "F1 (macro)", "roc_auc": "ROC AUC", "log_loss": "log loss",
    "brier": "Brier score",
}
MAX_TEXT = 4000
MAX_NAME = 200
MAX_ROWS = 50
_MEASURABLE = re.compile(r"\d|%|\b(" + "|".join(re.escape(t) for t in METRIC_TEXT.values()) +
                         r"|precision|recall|f1|auc|rate|share|percent)\b", re.IGNORECASE)


class BriefError(ValueError):
    """A brief that cannot be saved as written; the message names the field and the fix."""


@dataclass(frozen=True)
class Stakeholder:
    """Someone the model matters to: what worries them and how they will judge success."""

    name: str
    kind: StakeholderKind = "impacted"
    concerns: str = ""
    success: str = ""


@dataclass(frozen=True)
class SmartGoal:
    """A metric target with a date: "balanced accuracy ≥ 0.80 on validation by 2027-03-01"."""

    metric: str
    target: float
    deadline: date
    comparison: Comparison = ">="
    split: Split = "validation"

    def text(self) -> str:
        return (f"{METRIC_TEXT.get(self.metric, self.metric)} {COMPARISONS[self.comparison]} {self.target:g} "
                f"on {SPLITS[self.split]} by {self.deadline:%Y-%m-%d}")


@dataclass(frozen=True)
class PremortemItem:
    """"Imagine it failed: why?" and what we do now so it does not."""

    failure: str
    mitigation: str = ""


@dataclass(frozen=True)
class SafetyCheck:
    """A named rule every model version must pass; which fields matter depends on ``kind``.

    ``metric``: ``metric`` ``comparison`` ``value`` on ``split``; ``four_fifths``: the stored
    demographic parity ratio of ``attribute`` (selection rate of the favourable outcome, else of
    ``class_name``) ≥ 0.8; ``class_recall``: recall of ``class_name`` ≥ ``value`` on validation (from
    the stored confusion matrix); ``beats_majority``: ``metric`` on ``split`` no worse than the
    majority-class baseline's.
    """

    name: str
    kind: CheckKind
    metric: str | None = None
    comparison: Comparison = ">="
    value: float | None = None
    split: Split = "validation"
    attribute: str | None = None
    class_name: str | None = None

    def rule(self) -> str:
        """The rule in words: "recall of class 'yes' ≥ 0.7 on validation"."""
        metric = METRIC_TEXT.get(self.metric or "", self.metric)
        if self.kind == "metric":
            return f"{metric} {COMPARISONS[self.comparison]} {self.value:g} on {SPLITS[self.split]}"
        if self.kind == "four_fifths":
            return f"four-fifths rule met for {self.attribute}"
        if self.kind == "class_recall":
            return f"recall of class '{self.class_name}' ≥ {self.value:g} on validation"
        return f"{metric} no worse than the majority baseline on {SPLITS[self.split]}"


@dataclass(frozen=True)
class Brief:
    """What the project is for and how it will be judged, written before (and while) modelling."""

    hypothesis: str = ""
    stakeholders: tuple[Stakeholder, ...] = ()
    goal: SmartGoal | None = None
    optimisation_metric: str | None = None  # what training and the charts optimise
    success_measures: str = ""  # what people will count as success, in their words
    premortem: tuple[PremortemItem, ...] = ()
    checks: tuple[SafetyCheck, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """One check on one version: passed (``None``: cannot tell), the number, the bar and why in words."""

    check: str
    version: int
    passed: bool | None
    value: float | None
    threshold: float | None
    detail: str

    def cell(self) -> str:
        """For a versions × checks table: "✓ 0.812 ≥ 0.8", "✗ 0.62 < 0.7", "– no fairness stored"."""
        mark = {True: "✓", False: "✗", None: "–"}[self.passed]
        return f"{mark} {self.detail}"


@dataclass(frozen=True)
class GoalProgress:
    """Where one version stands against the SMART goal, on the goal's split."""

    goal: SmartGoal
    version: int
    value: float | None
    met: bool | None
    gap: float | None  # how far from the target, ≥ 0 (0 when met)
    days_left: int  # negative: the deadline passed that many days ago

    def sentence(self) -> str:
        """"balanced accuracy 0.74 on validation, 0.06 short of the 0.80 goal, 89 days left"."""
        goal, digits = self.goal, _digits(self.goal.target)
        metric = METRIC_TEXT.get(goal.metric, goal.metric)
        target = f"{goal.target:.{digits}f}"
        if self.days_left > 0:
            when = f"{self.days_left:,} day{'s' if self.days_left != 1 else ''} left"
        elif self.days_left == 0:
            when = "the deadline is today"
        else:
            when = f"the deadline ({goal.deadline:%Y-%m-%d}) passed {-self.days_left:,} day" \
                   f"{'s' if self.days_left != -1 else ''} ago"
        if self.value is None:
            return f"{metric} is not available on {SPLITS[goal.split]} for v{self.version}; the goal is " \
                   f"{goal.text()} ({when})."
        head = f"{metric} {self.value:.{digits}f} on {SPLITS[goal.split]}"
        if self.met:
            return f"{head}: the {target} goal is met ({when})."
        side = "short of" if goal.comparison == ">=" else "above"
        return f"{head}, {self.gap:.{digits}f} {side} the {target} goal, {when}."


def _digits(target: float) -> int:
    """Decimals to show: two, or three when the target needs them (0.805)."""
    return 2 if round(target, 2) == round(target, 6) else 3


# --------------------------------------------------------------------------- JSON
def to_json(brief: Brief) -> str:
    """The stored form (dates as ISO text); :func:`from_json` reads it back equal."""
    data = asdict(brief)
    if brief.goal is not None:
        data["goal"]["deadline"] = brief.goal.deadline.isoformat()
    return json.dumps(data, sort_keys=True)


def from_json(text: str) -> Brief:
    """A stored brief; fields a later version added get their defaults."""
    data = json.loads(text)
    goal = data.get("goal")
    return Brief(
        hypothesis=data.get("hypothesis", ""),
        stakeholders=tuple(Stakeholder(**s) for s in data.get("stakeholders", [])),
        goal=None if goal is None else SmartGoal(**{**goal, "deadline": date.fromisoformat(goal["deadline"])}),
        optimisation_metric=data.get("optimisation_metric"),
        success_measures=data.get("success_measures", ""),
        premortem=tuple(PremortemItem(**p) for p in data.get("premortem", [])),
        checks=tuple(SafetyCheck(**c) for c in data.get("checks", [])),
    )


# --------------------------------------------------------------------------- validation
def _metric_range(metric: str) -> tuple[float, float]:
    return (0.0, float("inf")) if metric == "log_loss" else (0.0, 1.0)


def _metrics_of(schema: Schema) -> tuple[str, ...]:
    """Metrics stored for this target: Brier only for a binary one."""
    return tuple(m for m in METRIC_NAMES if m != "brier" or len(schema.classes) == 2)


def _check_metric(metric: str | None, schema: Schema, where: str) -> str:
    metrics = _metrics_of(schema)
    if metric not in metrics:
        raise BriefError(f"{where}: unknown metric '{metric}'; choose one of {', '.join(metrics)}.")
    return metric


def _check_value(value: float | None, metric: str, where: str) -> float:
    low, high = _metric_range(metric)
    if value is None or pd.isna(value):
        raise BriefError(f"{where}: give a target value for {METRIC_TEXT[metric]}.")
    if not low <= float(value) <= high:
        span = "0 or more" if high == float("inf") else f"between {low:g} and {high:g}"
        raise BriefError(f"{where}: {METRIC_TEXT[metric]} is {span}, so a target of {value:g} is out of range.")
    return float(value)


def _text(value: str, where: str, limit: int = MAX_TEXT) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise BriefError(f"{where} is {len(value):,} characters; keep it under {limit:,}.")
    return value


def validate(brief: Brief, schema: Schema) -> Brief:
    """The brief cleaned (text trimmed) or a :class:`BriefError` naming the field and the fix.

    A deadline in the past, an untestable hypothesis or a failure without a mitigation is allowed:
    :func:`flags` says so.
    """
    stakeholders = []
    for i, s in enumerate(brief.stakeholders, 1):
        name = _text(s.name, f"Stakeholder {i}'s name", MAX_NAME)
        if not name:
            raise BriefError(f"Stakeholder {i} has no name: say who it is, or delete the row.")
        if s.kind not in STAKEHOLDER_KINDS:
            raise BriefError(f"Stakeholder '{name}': kind '{s.kind}' is not one of {', '.join(STAKEHOLDER_KINDS)}.")
        stakeholders.append(Stakeholder(name, s.kind, _text(s.concerns, f"Concerns of '{name}'"),
                                        _text(s.success, f"Success for '{name}'")))
    goal = brief.goal
    if goal is not None:
        metric = _check_metric(goal.metric, schema, "SMART goal")
        if goal.comparison not in COMPARISONS or goal.split not in SPLITS:
            raise BriefError("SMART goal: compare with ≥ or ≤, on validation or test.")
        if not isinstance(goal.deadline, date):
            raise BriefError("SMART goal: give the deadline as a date (YYYY-MM-DD).")
        goal = replace(goal, target=_check_value(goal.target, metric, "SMART goal"))
    if brief.optimisation_metric is not None:
        _check_metric(brief.optimisation_metric, schema, "Optimisation metric")
    premortem = []
    for i, p in enumerate(brief.premortem, 1):
        failure = _text(p.failure, f"Premortem row {i}")
        if not failure:
            raise BriefError(f"Premortem row {i} has a mitigation but no failure: say what could go wrong.")
        premortem.append(PremortemItem(failure, _text(p.mitigation, f"Mitigation of premortem row {i}")))
    checks = [_validated_check(c, schema, i) for i, c in enumerate(brief.checks, 1)]
    names = [c.name for c in checks]
    if duplicate := next((n for n in names if names.count(n) > 1), None):
        raise BriefError(f"Two safety checks are named '{duplicate}': give each check its own name.")
    for rows, what in ((stakeholders, "stakeholders"), (premortem, "premortem rows"), (checks, "safety checks")):
        if len(rows) > MAX_ROWS:
            raise BriefError(f"{len(rows)} {what}; keep it to {MAX_ROWS}.")
    return Brief(hypothesis=_text(brief.hypothesis, "The hypothesis"), stakeholders=tuple(stakeholders), goal=goal,
                 optimisation_metric=brief.optimisation_metric,
                 success_measures=_text(brief.success_measures, "The human success measures"),
                 premortem=tuple(premortem), checks=tuple(checks))


def _validated_check(check: SafetyCheck, schema: Schema, i: int) -> SafetyCheck:
    name = _text(check.name, f"Safety check {i}'s name", MAX_NAME)
    if not name:
        raise BriefError(f"Safety check {i} has no name: name it (e.g. 'recall of defaults'), or delete the row.")
    where = f"Safety check '{name}'"
    if check.kind not in CHECK_KINDS:
        raise BriefError(f"{where}: kind '{check.kind}' is not one of {', '.join(CHECK_KINDS)}.")
    if check.comparison not in COMPARISONS or check.split not in SPLITS:
        raise BriefError(f"{where}: compare with ≥ or ≤, on validation or test.")
    check = replace(check, name=name)
    if check.kind in ("metric", "beats_majority"):
        metric = _check_metric(check.metric, schema, where)
        if check.kind == "metric":
            return replace(check, value=_check_value(check.value, metric, where), attribute=None, class_name=None)
        return replace(check, value=None, attribute=None, class_name=None)
    if check.kind == "four_fifths":
        names = [attribute_name(s) for s in attribute_sets(schema.sensitive)]
        if not names:
            raise BriefError(f"{where}: the project has no sensitive attribute, so there is no four-fifths rule to "
                             "check; mark sensitive columns when creating a project on the Data page.")
        if check.attribute not in names:
            raise BriefError(f"{where}: '{check.attribute}' is not a sensitive attribute; choose one of "
                             f"{', '.join(names)}.")
        if check.class_name is not None and check.class_name not in schema.classes:
            raise BriefError(f"{where}: '{check.class_name}' is not a class; choose one of "
                             f"{', '.join(schema.classes)}.")
        return replace(check, metric=None, value=None, split="validation")
    if check.class_name not in schema.classes:
        raise BriefError(f"{where}: '{check.class_name}' is not a class of '{schema.target}'; choose one of "
                         f"{', '.join(schema.classes)}.")
    if check.split != "validation":
        raise BriefError(f"{where}: recall per class is stored for the validation split only; check it there.")
    value = _check_value(check.value, "recall_macro", where)
    return replace(check, metric=None, comparison=">=", value=value, attribute=None)


def flags(brief: Brief, today: date) -> list[str]:
    """What is allowed but worth a second look: a past deadline, an untestable hypothesis, no mitigation."""
    out = []
    if not brief.hypothesis:
        out.append("No hypothesis yet: write what you expect the model (and the people reviewing it) to achieve.")
    elif not _MEASURABLE.search(brief.hypothesis):
        out.append("The hypothesis has no measurable claim, so nothing could prove it wrong: add a number and what "
                   "it is measured on (e.g. 'reviewing 300 uncertain rows lifts balanced accuracy on validation "
                   "above 0.80').")
    if brief.goal is not None and brief.goal.deadline < today:
        out.append(f"The goal's deadline {brief.goal.deadline:%Y-%m-%d} is in the past: keep it if that is the "
                   "record, or set a new date.")
    out += [f"Premortem: '{p.failure[:60]}' has no mitigation yet." for p in brief.premortem if not p.mitigation]
    return out


# --------------------------------------------------------------------------- evaluation
def _met(value: float, comparison: str, bar: float) -> bool:
    return value >= bar if comparison == ">=" else value <= bar


def _result(check: SafetyCheck, version: ModelVersion, value: float | None, bar: float | None,
            comparison: str, missing: str, unit: str = "") -> CheckResult:
    if value is None or bar is None:
        return CheckResult(check.name, version.version, None, value, bar, missing)
    passed = _met(value, comparison, bar)
    sign = COMPARISONS[comparison] if passed else {">=": "<", "<=": ">"}[comparison]
    return CheckResult(check.name, version.version, passed, value, bar, f"{value:.3f} {sign} {bar:.3g}{unit}")


def evaluate_check(check: SafetyCheck, version: ModelVersion, schema: Schema) -> CheckResult:
    """One check on one version's stored numbers."""
    if check.kind == "metric":
        value = getattr(version, check.split).get(check.metric)
        return _result(check, version, value, check.value, check.comparison,
                       f"{METRIC_TEXT.get(check.metric, check.metric)} not available on {SPLITS[check.split]}")
    if check.kind == "beats_majority":
        value = getattr(version, check.split).get(check.metric)
        bar = version.baselines.get("majority", {}).get(check.split, {}).get(check.metric)
        comparison = "<=" if check.metric in LOWER_IS_BETTER else ">="
        return _result(check, version, value, bar, comparison,
                       f"{METRIC_TEXT.get(check.metric, check.metric)} or its baseline not stored",
                       " (majority)")
    if check.kind == "class_recall":
        row = version.confusion.get(str(check.class_name), {})
        support = sum(row.values())
        value = row.get(str(check.class_name), 0) / support if support else None
        return _result(check, version, value, check.value, ">=",
                       f"no validation rows of class '{check.class_name}'")
    positive = schema.favourable or check.class_name
    if positive is None:
        return CheckResult(check.name, version.version, None, None, FOUR_FIFTHS,
                           "name the favourable outcome on the Data page first")
    found, ratio = _parity_ratio(version, str(check.attribute), positive, schema)
    if not found:
        return CheckResult(check.name, version.version, None, None, FOUR_FIFTHS,
                           f"no fairness stored for {check.attribute} with v{version.version}")
    return _result(check, version, ratio, FOUR_FIFTHS, ">=",
                   "fewer than two groups large enough to compare", f" (share '{positive}')")


def _parity_ratio(version: ModelVersion, attribute: str, positive: str, schema: Schema) -> tuple[bool, float | None]:
    """(found, demographic parity ratio) of the version's validation report of ``attribute`` selecting ``positive``.

    Read off the stored report, never rebuilt (a whole report costs 3-16 ms, and this runs for every
    version on every page run). A binary version stored for the other class gives it exactly: each
    group's share predicted ``positive`` is one minus its share predicted the other class (as
    :meth:`hitl_core.fairness.FairnessReport.for_other_class` derives, over the same judged groups).
    """
    other = None
    for item in version.fairness:
        if (item.get("sensitive"), item.get("split")) != (attribute, "validation"):
            continue
        if item.get("positive_class") == positive:
            return True, item.get("demographic_parity_ratio")
        other = other or item
    if other is None or len(schema.classes) != 2 or other.get("positive_class") not in schema.classes:
        return False, None
    small = set(other.get("too_small", []))
    rates = [1.0 - g["selection_rate"] for name, g in other["by_group"].items() if name not in small]
    if len(rates) < 2 or max(rates) <= 0:
        return True, None
    return True, min(rates) / max(rates)


def evaluate_checks(brief: Brief, version: ModelVersion, schema: Schema) -> list[CheckResult]:
    """Every safety check of ``brief`` on ``version``, in the brief's order."""
    return [evaluate_check(check, version, schema) for check in brief.checks]


def checks_table(brief: Brief, versions: Sequence[ModelVersion], schema: Schema) -> pd.DataFrame:
    """Versions (newest first) × checks, each cell ✓/✗/– with the number: the page's pass/fail grid."""
    rows = [{"version": v.version, **{r.check: r.cell() for r in evaluate_checks(brief, v, schema)}}
            for v in reversed(list(versions))]
    return pd.DataFrame(rows, columns=["version", *(c.name for c in brief.checks)])


def summary(results: Sequence[CheckResult]) -> str:
    """One cell for a version: "✓ 3/3", "✗ 1 of 3 failed: recall of defaults", "" without checks."""
    if not results:
        return ""
    failed = [r.check for r in results if r.passed is False]
    unknown = sum(r.passed is None for r in results)
    if failed:
        return f"✗ {len(failed)} of {len(results)} failed: {', '.join(failed)}"
    passed = len(results) - unknown
    return f"✓ {passed}/{len(results)}" + (f" ({unknown} cannot tell)" if unknown else "")


def goal_progress(brief: Brief, version: ModelVersion, today: date) -> GoalProgress | None:
    """Where ``version`` stands against the brief's SMART goal on ``today`` (``None``: the brief has no goal)."""
    goal = brief.goal
    if goal is None:
        return None
    value = getattr(version, goal.split).get(goal.metric)
    days_left = (goal.deadline - today).days
    if value is None:
        return GoalProgress(goal, version.version, None, None, None, days_left)
    met = _met(value, goal.comparison, goal.target)
    return GoalProgress(goal, version.version, value, met, 0.0 if met else abs(goal.target - value), days_left)


# --------------------------------------------------------------------------- changes and history
def changes(before: Brief | None, after: Brief) -> list[str]:
    """What a save changed, in words, for the history and the audit trail."""
    if before is None:
        return ["first brief"]
    out = [f"{label} changed" for label, attr in (("hypothesis", "hypothesis"),
                                                  ("human success measures", "success_measures"))
           if getattr(before, attr) != getattr(after, attr)]
    if before.goal != after.goal:
        out.append(f"goal: {before.goal.text() if before.goal else 'none'} → "
                   f"{after.goal.text() if after.goal else 'none'}")
    if before.optimisation_metric != after.optimisation_metric:
        out.append(f"optimisation metric: {before.optimisation_metric or 'none'} → "
                   f"{after.optimisation_metric or 'none'}")
    for label, old, new, key in (("stakeholder", before.stakeholders, after.stakeholders, lambda s: s.name),
                                 ("premortem", before.premortem, after.premortem, lambda p: p.failure),
                                 ("check", before.checks, after.checks, lambda c: c.name)):
        old_by, new_by = {key(x): x for x in old}, {key(x): x for x in new}
        out += [f"{label} added: {k}" for k in new_by if k not in old_by]
        out += [f"{label} removed: {k}" for k in old_by if k not in new_by]
        out += [f"{label} edited: {k}" for k in new_by if k in old_by and new_by[k] != old_by[k]]
    return out or ["no change"]


@dataclass(frozen=True)
class BriefVersion:
    """One saved brief: its number, who saved it when, and what it changed from the one before."""

    version: int
    created_by: str
    created_at: datetime
    brief: Brief
    changes: list[str] = field(default_factory=list)


def brief_history(store: "Store", project_id: int) -> list[BriefVersion]:
    """Every saved brief of a project, oldest first, each with what it changed."""
    out: list[BriefVersion] = []
    for version, created_by, created_at, text in store.briefs(project_id):
        brief = from_json(text)
        out.append(BriefVersion(version, created_by, created_at, brief,
                                changes(out[-1].brief if out else None, brief)))
    return out


def current_brief(store: "Store", project_id: int) -> Brief | None:
    """The newest saved brief of a project, ``None`` before the first save."""
    found = store.latest_brief(project_id)
    return None if found is None else from_json(found)


# --------------------------------------------------------------------------- edited tables (st.data_editor)
def _cell(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip()


def _number(value: object) -> float | None:
    return None if value is None or _cell(value) == "" else float(value)


def _filled(frame: pd.DataFrame) -> list[dict]:
    """Rows of an edited table that hold anything (the editor's blank new rows are dropped)."""
    return [row for row in frame.to_dict("records") if any(_cell(v) for v in row.values())]


def stakeholders_from_frame(frame: pd.DataFrame) -> tuple[Stakeholder, ...]:
    """The stakeholder editor's rows (name, kind, concerns, success) as stakeholders."""
    return tuple(Stakeholder(_cell(r.get("name")), _cell(r.get("kind")) or "impacted", _cell(r.get("concerns")),
                             _cell(r.get("success"))) for r in _filled(frame))


def premortem_from_frame(frame: pd.DataFrame) -> tuple[PremortemItem, ...]:
    """The premortem editor's rows (failure, mitigation)."""
    return tuple(PremortemItem(_cell(r.get("failure")), _cell(r.get("mitigation"))) for r in _filled(frame))


def checks_from_frame(frame: pd.DataFrame) -> tuple[SafetyCheck, ...]:
    """The safety-check editor's rows (name, kind, metric, comparison, value, split, attribute, class)."""
    return tuple(SafetyCheck(name=_cell(r.get("name")), kind=_cell(r.get("kind")) or "metric",
                             metric=_cell(r.get("metric")) or None, comparison=_cell(r.get("comparison")) or ">=",
                             value=_number(r.get("value")), split=_cell(r.get("split")) or "validation",
                             attribute=_cell(r.get("attribute")) or None, class_name=_cell(r.get("class")) or None)
                 for r in _filled(frame))


def stakeholders_frame(brief: Brief) -> pd.DataFrame:
    return pd.DataFrame([asdict(s) for s in brief.stakeholders], columns=["name", "kind", "concerns", "success"])


def premortem_frame(brief: Brief) -> pd.DataFrame:
    return pd.DataFrame([asdict(p) for p in brief.premortem], columns=["failure", "mitigation"])


def checks_frame(brief: Brief) -> pd.DataFrame:
    rows = [{**asdict(c), "class": c.class_name} for c in brief.checks]
    return pd.DataFrame(rows, columns=["name", "kind", "metric", "comparison", "value", "split", "attribute",
                                       "class"]).astype({"value": float})
