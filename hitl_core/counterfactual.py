"""Counterfactuals (recourse): the smallest changes to a row that would give it another predicted class.

The search is DiCE's (``dice-ml``, model-agnostic "random" method) over the project's whole fitted
pipeline, so the changes are in the original columns; each candidate is then shrunk toward the row
(:meth:`CounterfactualExplainer.shrink`, in place of DiCE's slow post-hoc pass). DiCE's output is
never trusted as is: every candidate is rebuilt from the row (only the columns DiCE changed are
replaced), predicted again by the pipeline and kept only if the prediction really is the desired
class, no immutable column changed and every changed number lies in its allowed range. The rest
are dropped and counted. Of the valid ones the most diverse and smallest are shown: fewest changed
columns first, new sets of changed columns before repeats, then the smallest change in units of each
column's spread.

Immutable by default: sensitive attributes that are features, and age-like columns, i.e. a column
whose name has a word ``age``, ``birth``, ``born``, ``dob``, ``birthday``, ``birthdate``, ``yob``
(``age``, ``Age_years``, ``dateOfBirth``; not ``percentage`` or ``mileage``).
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hitl_core.data import Schema
from hitl_core.models import MISSING_CATEGORY, FittedModel, predict_with_confidence, threads_limited

DEFAULT_COUNT = 4
MAX_COUNT = 10
CANDIDATES_PER_RESULT = 3  # DiCE is asked for 3x the counterfactuals wanted: room to drop failures and pick diverse
SAMPLE_SIZE = 1000  # DiCE's default random samples per round
MAX_DECIMALS = 6  # numbers are searched and shown with at most this many decimals
DICE_ROWS = 5000  # training rows DiCE reads its ranges and levels from (plus each min, max and level)
AGE_WORDS = frozenset({"age", "birth", "born", "dob", "birthday", "birthdate", "yob"})
SHRINK_STEPS = np.linspace(0.0, 1.0, 21)[:-1]  # share of a numeric change kept when shrinking: 0 (undo), 5 %, … 95 %
OUTCOME = "__hitl_outcome__"  # DiCE wants an outcome column in its data: the model's own predictions
_UNDO = object()  # a shrink trial that puts the row's own value back
_DICE_LOCK = threading.Lock()  # DiCE seeds numpy's and random's global generators: one search at a time


class CounterfactualError(ValueError):
    """Settings that cannot give a counterfactual (unknown column or class, bad range); the message says the fix."""


# --------------------------------------------------------------------------- settings
def is_age_like(column: str) -> bool:
    """Whether a column name holds an age word (split on non-letters and camelCase), so it cannot be 'changed'."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", str(column))
    return any(w.lower() in AGE_WORDS for w in words)


def default_immutable(schema: Schema) -> tuple[str, ...]:
    """Features a person cannot change or must not be told to: sensitive ones and age-like ones."""
    return tuple(f for f in schema.features if f in schema.sensitive or is_age_like(f))


@dataclass(frozen=True)
class RecourseSettings:
    """What a counterfactual search asks for; hashable and JSON-able, so it keys caches and stored results."""

    desired: str
    count: int = DEFAULT_COUNT
    immutable: tuple[str, ...] = ()
    ranges: tuple[tuple[str, float, float], ...] = ()  # (numeric feature, lowest, highest) allowed
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps({"desired": self.desired, "count": self.count, "immutable": sorted(self.immutable),
                           "ranges": sorted([list(r) for r in self.ranges]), "seed": self.seed}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RecourseSettings":
        raw = json.loads(text)
        return cls(desired=raw["desired"], count=raw["count"], immutable=tuple(raw["immutable"]),
                   ranges=tuple(tuple(r) for r in raw["ranges"]), seed=raw["seed"])

    def validated(self, schema: Schema) -> "RecourseSettings":
        """These settings, or a :class:`CounterfactualError` naming what is wrong and how to fix it."""
        if self.desired not in schema.classes:
            raise CounterfactualError(f"'{self.desired}' is not a class of '{schema.target}'; choose one of "
                                      f"{list(schema.classes)}.")
        if not 1 <= self.count <= MAX_COUNT:
            raise CounterfactualError(f"Ask for 1 to {MAX_COUNT} counterfactuals, not {self.count}.")
        unknown = [c for c in [*self.immutable, *(r[0] for r in self.ranges)] if c not in schema.features]
        if unknown:
            raise CounterfactualError(f"{unknown} {'is' if len(unknown) == 1 else 'are'} not a feature of the model; "
                                      f"use some of {list(schema.features)}.")
        for column, low, high in self.ranges:
            if column not in schema.numeric:
                raise CounterfactualError(f"'{column}' is not numeric: a range applies to numeric features only.")
            if not low <= high:
                raise CounterfactualError(f"The range of '{column}' runs from {low:g} to {high:g}: give the lowest "
                                          "value first.")
        if set(schema.features) <= set(self.immutable):
            raise CounterfactualError("Every feature is marked immutable: allow at least one to change.")
        return self


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Counterfactual:
    """One checked change to a row: column → (from, to), and what the model then predicts."""

    changes: dict[str, tuple[object, object]]
    predicted: str
    confidence: float
    distance: float = 0.0  # sum over changed numbers of |to - from| / the column's spread; categories count 1

    def to_json(self) -> dict:
        return {"changes": {c: [_plain(a), _plain(b)] for c, (a, b) in self.changes.items()},
                "predicted": self.predicted, "confidence": float(self.confidence)}


@dataclass(frozen=True)
class Recourse:
    """The counterfactuals of one row for one setting, and what the check dropped."""

    row: str
    predicted: str  # the row's prediction now
    confidence: float
    settings: RecourseSettings
    counterfactuals: tuple[Counterfactual, ...]
    found: int  # distinct candidates DiCE returned
    dropped: dict[str, int] = field(default_factory=dict)  # why → how many failed the check
    seconds: float = 0.0

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def summary(self) -> str:
        """One sentence: how many shown, found and dropped (and why)."""
        why = "; ".join(f"{n} {reason}" for reason, n in self.dropped.items())
        dropped = f"; {self.n_dropped} dropped by the check ({why})" if self.dropped else "; none failed the check"
        return (f"{len(self.counterfactuals)} counterfactual(s) to '{self.settings.desired}' shown of "
                f"{self.found} found by DiCE{dropped}; {self.seconds:.1f} s.")


def _plain(value: object) -> object:
    """A cell as JSON: None for missing, Python numbers and strings."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


# --------------------------------------------------------------------------- the check
def _same(a: object, b: object) -> bool:
    """Equal cells: both missing, equal numbers (to 1e-9 relative) or equal text."""
    a_missing = a is None or (not isinstance(a, str) and pd.isna(a))
    b_missing = b is None or (not isinstance(b, str) and pd.isna(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=1e-12))
    return str(a) == str(b)


def changes_between(schema: Schema, row: pd.Series, candidate: pd.Series) -> dict[str, tuple[object, object]]:
    """Feature → (row's value, candidate's value) for every feature the candidate changes."""
    return {f: (_plain(row[f]), _plain(candidate[f])) for f in schema.features if not _same(row[f], candidate[f])}


def apply_changes(schema: Schema, row: pd.DataFrame, changes: dict[str, object]) -> pd.DataFrame:
    """The one-row frame with ``changes`` (feature → new value) applied, every other column as it was."""
    return apply_each(schema, row, [changes])


def apply_each(schema: Schema, row: pd.DataFrame, changes: list[dict[str, object]]) -> pd.DataFrame:
    """One copy of the one-row frame per change set, each with its changes applied (column-wise: no per-row pandas)."""
    out = row[list(schema.features)].iloc[np.zeros(len(changes), dtype=int)]
    for column in dict.fromkeys(c for change in changes for c in change):
        numeric = column in schema.numeric
        values = out[column].to_numpy(dtype=float if numeric else object, copy=True)
        for i, change in enumerate(changes):
            if column in change:
                value = change[column]
                values[i] = (np.nan if value is None else float(value)) if numeric else value
        out[column] = values
    return out


def edited_changes(schema: Schema, row: pd.DataFrame, edited: dict[str, object]) -> dict[str, object]:
    """Feature → new value for what a what-if form changed (an empty category or number means missing)."""
    candidate = {f: None if v is None or (f in schema.categorical and v == "") else v for f, v in edited.items()}
    applied = apply_changes(schema, row, candidate).iloc[0]
    return {f: new for f, (_, new) in changes_between(schema, row[list(schema.features)].iloc[0], applied).items()}


def check(model: FittedModel, schema: Schema, row: pd.DataFrame, candidates: list[dict[str, object]], *,
          desired: str, immutable: tuple[str, ...] = (),
          ranges: tuple[tuple[str, float, float], ...] = (),
          spread: pd.Series | None = None) -> tuple[list[Counterfactual], Counter]:
    """Keep the candidates (feature → new value) that really give ``desired`` and respect the settings.

    Each candidate is applied to ``row`` (one-row frame) and predicted by the pipeline; it fails when
    it changes nothing, changes an immutable feature, puts a number outside its allowed range, or the
    model does not predict ``desired``. Returns the valid counterfactuals and a count per failure.
    """
    reasons: Counter = Counter()
    if not candidates:
        return [], reasons
    original = row[list(schema.features)].iloc[0]
    bounds = {c: (lo, hi) for c, lo, hi in ranges}
    kept: list[tuple[dict, pd.DataFrame]] = []
    applied = apply_each(schema, row, candidates)
    for i in range(len(candidates)):
        changed = applied.iloc[[i]]
        changes = changes_between(schema, original, changed.iloc[0])
        if not changes:
            reasons["changed nothing"] += 1
        elif any(c in immutable for c in changes):
            reasons["changed an immutable column"] += 1
        elif any(c in bounds and not bounds[c][0] - 1e-9 <= float(new) <= bounds[c][1] + 1e-9
                 for c, (_, new) in changes.items() if new is not None):
            reasons["outside an allowed range"] += 1
        else:
            kept.append((changes, changed))
    if not kept:
        return [], reasons
    predictions = predict_with_confidence(model, pd.concat([c for _, c in kept]), schema.classes)
    valid = []
    for (changes, _), label, confidence in zip(kept, predictions.labels, predictions.confidence):
        if label != desired:
            reasons[f"not predicted '{desired}' when re-checked"] += 1
            continue
        valid.append(Counterfactual(changes=changes, predicted=str(label), confidence=float(confidence),
                                    distance=_distance(schema, changes, spread)))
    return valid, reasons


def _distance(schema: Schema, changes: dict[str, tuple[object, object]], spread: pd.Series | None) -> float:
    """Size of a change: |Δ| in units of the column's spread for numbers (missing ↔ value: 1), 1 per category."""
    total = 0.0
    for column, (old, new) in changes.items():
        if column in schema.numeric and old is not None and new is not None:
            scale = float(spread[column]) if spread is not None and spread.get(column, 0) > 0 else 1.0
            total += abs(float(new) - float(old)) / scale
        else:
            total += 1.0
    return total


def pick_diverse(found: list[Counterfactual], count: int) -> tuple[Counterfactual, ...]:
    """``count`` of the counterfactuals: smallest first, each new set of changed columns before a repeat."""
    ordered = sorted(found, key=lambda c: (len(c.changes), c.distance, sorted(c.changes)))
    chosen, seen_sets, rest = [], set(), []
    for cf in ordered:
        columns = frozenset(cf.changes)
        (rest if columns in seen_sets else chosen).append(cf)
        seen_sets.add(columns)
    return tuple((chosen + rest)[:count])


# --------------------------------------------------------------------------- the search
class CounterfactualExplainer:
    """DiCE over one fitted pipeline and its training rows; read-only once built (searches run one at a time)."""

    def __init__(self, model: FittedModel, schema: Schema, background: pd.DataFrame):
        import dice_ml  # ~2 s to import (sklearn submodules): only where counterfactuals are asked for
        self.model, self.schema = model, schema
        self.fill = self._fill_values(background)
        train = self._filled(_summary_rows(background[list(schema.features)], schema))
        self.spread = train[list(schema.numeric)].astype(float).std().fillna(0.0)
        train[OUTCOME] = model.estimator.predict(train)  # a column DiCE needs; predicting the filled rows
        self.decimals = {c: decimals(train[c]) for c in schema.numeric}
        self.data = dice_ml.Data(dataframe=train, continuous_features=list(schema.numeric), outcome_name=OUTCOME,
                                 continuous_features_precision=self.decimals)
        self.dice_model = dice_ml.Model(model=model.estimator, backend="sklearn")
        self.classes = tuple(str(c) for c in model.estimator.classes_)
        self._dice = dice_ml.Dice

    def _fill_values(self, background: pd.DataFrame) -> dict[str, object]:
        """What the pipeline turns a missing cell into: its imputer's medians, and the 'missing' category."""
        fill: dict[str, object] = {c: MISSING_CATEGORY for c in self.schema.categorical}
        preprocess = self.model.estimator[:-1][-1]
        for name, transformer, columns in preprocess.transformers_:
            if name == "num":
                imputer = transformer[0]
                fill.update({c: float(v) for c, v in zip(imputer.feature_names_in_, imputer.statistics_)})
        for c in self.schema.numeric:  # a column all missing in training: the imputer dropped it
            fill.setdefault(c, float(background[c].median()) if background[c].notna().any() else 0.0)
        return fill

    def _filled(self, X: pd.DataFrame) -> pd.DataFrame:
        """Rows without missing cells, as DiCE requires; the pipeline predicts them exactly like the originals."""
        out = X.copy()
        for c in self.schema.numeric:
            out[c] = out[c].astype(float).fillna(self.fill[c])
        for c in self.schema.categorical:
            out[c] = out[c].astype(object).where(out[c].notna(), MISSING_CATEGORY).astype(str)
        return out

    def explain(self, row: pd.DataFrame, settings: RecourseSettings) -> Recourse:
        """Up to ``settings.count`` checked counterfactuals for one row (a one-row frame of the dataset)."""
        settings = settings.validated(self.schema)
        start = time.perf_counter()
        now = predict_with_confidence(self.model, row[list(self.schema.features)], self.schema.classes)
        predicted, confidence = str(now.labels[0]), float(now.confidence[0])
        if settings.desired == predicted:
            raise CounterfactualError(f"Row {row.index[0]} is already predicted '{predicted}'; choose another class "
                                      "to ask what would change it.")
        if settings.desired not in self.classes:
            raise CounterfactualError(f"The model was not trained on class '{settings.desired}' (no training row "
                                      f"has it), so nothing can be predicted as it; choose one of "
                                      f"{list(self.classes)}.")
        found = _distinct(self._search(row, settings))
        candidates = self.shrink(row, found, settings)
        valid, reasons = check(self.model, self.schema, row, candidates, desired=settings.desired,
                               immutable=settings.immutable, ranges=settings.ranges, spread=self.spread)
        return Recourse(row=str(row.index[0]), predicted=predicted, confidence=confidence, settings=settings,
                        counterfactuals=pick_diverse(valid, settings.count), found=len(found), dropped=dict(reasons),
                        seconds=time.perf_counter() - start)

    def shrink(self, row: pd.DataFrame, candidates: list[dict[str, object]],
               settings: RecourseSettings) -> list[dict[str, object]]:
        """Make each candidate smaller while the model still predicts the desired class.

        DiCE's random search changes a column to a random value in its range; its own post-hoc
        pass walks back one row per prediction (minutes on a busy machine). Here, for each changed
        column in turn (largest change first), every candidate tries undoing it and keeping 5 %, 10 %,
        … 95 % of a numeric change (rounded to the column's decimals, inside its allowed range), all
        candidates in one prediction per round, and keeps the smallest that still gives the class.
        """
        work = [dict(c) for c in candidates]
        original = row[list(self.schema.features)].iloc[0]
        bounds = {c: (lo, hi) for c, lo, hi in settings.ranges}
        orders = [sorted(c, key=lambda f: -_distance(self.schema, {f: (_plain(original[f]), _plain(c[f]))},
                                                     self.spread)) for c in work]
        for step in range(max((len(o) for o in orders), default=0)):
            trials: list[tuple[int, str, object]] = []  # (candidate, column, value to try)
            for i, order in enumerate(orders):
                if step >= len(order):
                    continue
                column = order[step]
                for value in self._smaller(column, original[column], work[i][column], bounds.get(column)):
                    trials.append((i, column, value))
            if not trials:
                continue
            tried = [{**{k: v for k, v in work[i].items() if k != column},
                      **({} if value is _UNDO else {column: value})} for i, column, value in trials]
            labels = predict_with_confidence(self.model, apply_each(self.schema, row, tried),
                                             self.schema.classes).labels
            done: set[int] = set()
            for (i, column, value), label in zip(trials, labels):  # trials of one candidate run smallest first
                if i in done or label != settings.desired:
                    continue
                done.add(i)
                if value is _UNDO:
                    del work[i][column]
                else:
                    work[i][column] = value
        return _distinct(work)

    def _smaller(self, column: str, old: object, new: object, bounds: tuple[float, float] | None) -> list[object]:
        """Values to try for one changed column, smallest change first: undo, then shares of a numeric change."""
        trials: list[object] = [_UNDO]
        if column not in self.schema.numeric or _plain(old) is None or _plain(new) is None:
            return trials
        decimals = self.decimals.get(column, 6)
        for share in SHRINK_STEPS[1:]:
            value = round(float(old) + share * (float(new) - float(old)), decimals)
            if bounds is None or bounds[0] <= value <= bounds[1]:
                trials.append(value)
        return trials

    def _search(self, row: pd.DataFrame, settings: RecourseSettings) -> list[dict[str, object]]:
        """DiCE's candidates as feature → value for the features it changed (of the filled row)."""
        query = self._filled(row[list(self.schema.features)]).reset_index(drop=True)
        vary = [f for f in self.schema.features if f not in settings.immutable]
        permitted = {c: [lo, hi] for c, lo, hi in settings.ranges}
        from raiutils.exceptions import UserConfigValidationException
        with _DICE_LOCK, threads_limited(1), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # DiCE's pandas idioms warn on pandas 3; its tqdm bar and prints go too
            explainer = self._dice(self.data, self.dice_model, method="random")
            try:
                result = explainer.generate_counterfactuals(
                    query, total_CFs=settings.count * CANDIDATES_PER_RESULT,
                    desired_class=self.classes.index(settings.desired), features_to_vary=vary,
                    permitted_range=permitted or None, random_seed=settings.seed, sample_size=SAMPLE_SIZE,
                    posthoc_sparsity_param=None)  # its linear search predicts one row per step: minutes on a busy box
            except UserConfigValidationException:  # DiCE's way of saying it found none
                return []
        frame = result.cf_examples_list[0].final_cfs_df
        if frame is None or frame.empty:
            return []
        filled = query.iloc[0]
        return [{f: cf[f] for f in self.schema.features if not _same(cf[f], filled[f])}
                for _, cf in frame[list(self.schema.features)].iterrows()]


def decimals(values: pd.Series) -> int:
    """Decimals a numeric column is recorded with (0 for 46700.0, 3 for 0.363), at most ``MAX_DECIMALS``.

    Given to DiCE, which otherwise takes the longest decimal string among the column's modes, in a
    Python loop over every value when all values differ (3.6 s a search at 5,000 rows).
    """
    present = values.dropna().to_numpy(dtype=float)
    for places in range(MAX_DECIMALS):
        scaled = present * 10.0 ** places
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled)) * 1e-3):
            return places
    return MAX_DECIMALS


def _summary_rows(background: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """A seeded sample of the training rows plus the rows that hold each number's min and max and each category.

    DiCE takes ranges and levels from its data and recomputes decimals over all of it on every search
    (0.4 s at 50k rows); this keeps the ranges and levels of the whole pool in at most ~5,000 rows.
    """
    keep = set(background.sample(min(DICE_ROWS, len(background)), random_state=0).index)
    for column in schema.numeric:
        if background[column].notna().any():
            keep.update([background[column].idxmin(), background[column].idxmax()])
    for column in schema.categorical:
        keep.update(background[column].astype(object).fillna(MISSING_CATEGORY).astype(str)
                    .reset_index().drop_duplicates(column).iloc[:, 0])
    return background.loc[[k for k in background.index if k in keep]]


def _distinct(candidates: list[dict[str, object]]) -> list[dict[str, object]]:
    """Candidates with the same changes once (DiCE can return one twice)."""
    seen, out = set(), []
    for candidate in candidates:
        key = tuple(sorted((k, str(v)) for k, v in candidate.items()))
        if key not in seen:
            seen.add(key)
            out.append(candidate)
    return out


def default_desired(schema: Schema, classes: tuple[str, ...], proba: np.ndarray, predicted: str) -> str:
    """The class to aim for: the favourable one when the row does not have it, else the most likely other class."""
    if schema.favourable and schema.favourable != predicted and schema.favourable in classes:
        return schema.favourable
    order = np.argsort(-np.asarray(proba), kind="stable")
    return next(classes[j] for j in order if classes[j] != predicted)
