"""Quality signals per person: accuracy on gold rows, pace, overrides, trust in the model, fatigue.

Pure functions over a frame of decisions in :data:`hitl_core.agreement.VOTE_COLUMNS` (``row_key``,
``user``, ``label``, ``created_at``, ``predicted_label``, ``confidence``: what the person decided and
what the model showed them) and the project's gold rows (known label by row key). Every signal
comes back as numbers *and* as plain sentences with those numbers, because a flag without its
evidence cannot be checked.

The rules, stated once:

- **Time per decision** is the gap since the same person's previous decision. A gap longer than
  ``SESSION_BREAK`` (30 minutes) is a break: it starts a new session and is not counted as work.
  Active hours are the sum of the counted gaps; throughput is decisions per active hour.
- **Override rate**: share of decisions, among those where a prediction was shown, that differ
  from it.
- **Automation bias**: on rows the model was unsure of (confidence below ``LOW_CONFIDENCE``), a
  person who is right with probability *g* (their gold accuracy) and a model right with probability
  *m* (its mean confidence there, i.e. assuming calibration) can agree at most
  ``min(g, m) + min(1 - g, 1 - m)`` of the time, however their errors line up. Agreeing more than
  ``BIAS_MARGIN`` (10 points) above that bound is flagged, given at least ``MIN_LOW_ROWS`` (20)
  low-confidence rows and ``MIN_GOLD`` (10) gold answers.
- **Fatigue**: each session is cut in thirds by position; the first and last thirds of all
  sessions are compared. Slowing down: the last third's median time per decision is at least
  ``SLOWDOWN`` (1.5×) the first's; accuracy dropping: gold accuracy falls by at least
  ``ACCURACY_DROP`` (15 points). Each needs ``MIN_PER_THIRD`` (5) measurements in both thirds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

SESSION_BREAK = pd.Timedelta(minutes=30)
LOW_CONFIDENCE = 0.6
CONFIDENCE_BANDS: tuple[tuple[float, float, str], ...] = (
    (0.0, LOW_CONFIDENCE, "low (< 60%)"), (LOW_CONFIDENCE, 0.8, "medium (60-80%)"), (0.8, math.inf, "high (≥ 80%)"))
BIAS_MARGIN = 0.10
MIN_LOW_ROWS = 20
MIN_GOLD = 10
SLOWDOWN = 1.5
ACCURACY_DROP = 0.15
MIN_PER_THIRD = 5


def timings(decisions: pd.DataFrame) -> pd.DataFrame:
    """Every decision with its person's ``session`` number, ``seconds`` since their previous decision (``NaN`` at a
    session's start) and ``third`` of the session it falls in (1, 2, 3)."""
    frame = decisions.reset_index(drop=True).sort_values(["user", "created_at"], kind="stable")
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    gap = frame.groupby("user", sort=False)["created_at"].diff()
    starts = gap.isna() | (gap > SESSION_BREAK)
    frame["session"] = starts.astype(int).groupby(frame["user"], sort=False).cumsum()
    frame["seconds"] = gap.dt.total_seconds().where(~starts)
    within = frame.groupby(["user", "session"], sort=False)
    position, size = within.cumcount(), within["row_key"].transform("size")
    frame["third"] = np.minimum(3, (3 * position // size) + 1).astype(int)
    return frame


def gold_hits(decisions: pd.DataFrame, gold: pd.Series) -> pd.Series:
    """For decisions on gold rows, whether the label equals the known answer (indexed like ``decisions``)."""
    known = decisions["row_key"].astype(str).map(gold)
    return (decisions["label"].astype(str) == known)[known.notna()]


def model_agreement_by_band(votes: pd.DataFrame) -> pd.DataFrame:
    """Per person and model-confidence band: ``n`` rows with a prediction shown and the share ``agrees`` with it."""
    shown = votes[votes["predicted_label"].notna() & votes["confidence"].notna()]
    edges = [lo for lo, _, _ in CONFIDENCE_BANDS] + [math.inf]
    names = [name for _, _, name in CONFIDENCE_BANDS]
    band = pd.cut(shown["confidence"].astype(float), edges, labels=names, right=False)
    agrees = (shown["label"].astype(str) == shown["predicted_label"].astype(str)).astype(float)
    grouped = pd.DataFrame({"user": shown["user"], "band": band, "agrees": agrees}).groupby(
        ["user", "band"], observed=False)["agrees"]
    return pd.DataFrame({"n": grouped.size(), "agrees": grouped.mean()}).reset_index()


@dataclass(frozen=True)
class AutomationBias:
    """Agreement with low-confidence predictions against the most a person of this gold accuracy could agree."""

    n_low: int
    agrees: float  # share of low-confidence predictions the person kept
    model_confidence: float  # the model's mean confidence on those rows (its accuracy there, if calibrated)
    gold_accuracy: float
    n_gold: int
    bound: float  # min(g, m) + min(1 - g, 1 - m)

    @property
    def enough(self) -> bool:
        return self.n_low >= MIN_LOW_ROWS and self.n_gold >= MIN_GOLD

    @property
    def flagged(self) -> bool:
        return self.enough and self.agrees > self.bound + BIAS_MARGIN


def automation_bias(votes: pd.DataFrame, gold_accuracy: float, n_gold: int) -> AutomationBias:
    """The automation-bias test of one person's votes (rule in the module docstring)."""
    low = votes[votes["predicted_label"].notna() & (votes["confidence"].astype(float) < LOW_CONFIDENCE)]
    agrees = float((low["label"].astype(str) == low["predicted_label"].astype(str)).mean()) if len(low) else math.nan
    m = float(low["confidence"].astype(float).mean()) if len(low) else math.nan
    g = gold_accuracy
    bound = min(g, m) + min(1 - g, 1 - m) if not (math.isnan(g) or math.isnan(m)) else math.nan
    return AutomationBias(len(low), agrees, m, g, n_gold, bound)


@dataclass(frozen=True)
class Fatigue:
    """First third against last third of a person's sessions: time per decision and accuracy on gold."""

    sessions: int
    first_seconds: float
    last_seconds: float
    n_first: int
    n_last: int
    first_gold: float
    last_gold: float
    n_first_gold: int
    n_last_gold: int

    @property
    def slowing(self) -> bool:
        return (min(self.n_first, self.n_last) >= MIN_PER_THIRD and self.first_seconds > 0
                and self.last_seconds >= SLOWDOWN * self.first_seconds)

    @property
    def accuracy_drop(self) -> bool:
        return (min(self.n_first_gold, self.n_last_gold) >= MIN_PER_THIRD
                and self.first_gold - self.last_gold >= ACCURACY_DROP)


def fatigue(timed: pd.DataFrame, hits: pd.Series) -> Fatigue:
    """Fatigue figures of one person from :func:`timings` rows and :func:`gold_hits` (aligned by index)."""
    thirds = {t: timed[timed["third"] == t] for t in (1, 3)}
    seconds = {t: part["seconds"].dropna() for t, part in thirds.items()}
    gold = {t: hits.reindex(part.index).dropna().astype(bool) for t, part in thirds.items()}
    return Fatigue(sessions=int(timed["session"].nunique()),
                   first_seconds=_median(seconds[1]), last_seconds=_median(seconds[3]),
                   n_first=len(seconds[1]), n_last=len(seconds[3]),
                   first_gold=_mean(gold[1]), last_gold=_mean(gold[3]),
                   n_first_gold=len(gold[1]), n_last_gold=len(gold[3]))


def _median(values: pd.Series) -> float:
    return float(values.median()) if len(values) else math.nan


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


@dataclass(frozen=True)
class PersonQuality:
    """One person's quality signals, each with the counts behind it."""

    user: str
    n_decisions: int
    n_rows: int
    n_gold: int
    gold_accuracy: float
    active_hours: float
    per_hour: float
    median_seconds: float
    n_shown: int  # decisions where a prediction was shown
    override_rate: float
    bias: AutomationBias
    fatigue: Fatigue

    def sentences(self) -> list[str]:
        """The signals as plain sentences, each with its numbers."""
        who = self.user
        out = [f"{who} made {self.n_decisions:,} decision(s) on {self.n_rows:,} row(s) in {self.fatigue.sessions} "
               "session(s)" + (f": {self.active_hours:.1f} active hour(s), {self.per_hour:.0f} decisions an hour, a "
                               f"median of {self.median_seconds:.0f} s each (gaps over 30 min are breaks)."
                               if not math.isnan(self.median_seconds) else ".")]
        if self.n_gold:
            right = round(self.gold_accuracy * self.n_gold)
            out.append(f"On {self.n_gold} gold row(s) {who} gave the known answer {right} time(s) "
                       f"({self.gold_accuracy:.0%}).")
        else:
            out.append(f"{who} has answered no gold row yet, so their accuracy is unknown: a lead sets gold rows "
                       "and a gold rate below.")
        if self.n_shown:
            out.append(f"{who} changed the model's prediction on {self.override_rate:.0%} of {self.n_shown:,} "
                       "row(s) where it was shown.")
        out.append(self._bias_sentence())
        out.extend(self._fatigue_sentences())
        return out

    def _bias_sentence(self) -> str:
        b, who = self.bias, self.user
        if not b.enough:
            return (f"Too little to judge automation bias for {who}: it needs {MIN_LOW_ROWS} low-confidence rows "
                    f"and {MIN_GOLD} gold answers (has {b.n_low} and {b.n_gold}).")
        evidence = (f"{who} kept {b.agrees:.0%} of {b.n_low} low-confidence predictions (the model's confidence there "
                    f"averages {b.model_confidence:.0%}); someone right {b.gold_accuracy:.0%} of the time on gold "
                    f"could agree at most {b.bound:.0%}")
        if b.flagged:
            return (f"Possible automation bias: {evidence}. Check these rows in blind mode or talk it through "
                    "with them.")
        return f"No sign of automation bias: {evidence}."

    def _fatigue_sentences(self) -> list[str]:
        f, who, out = self.fatigue, self.user, []
        if f.slowing:
            out.append(f"Possible fatigue: {who}'s median time per decision rose from {f.first_seconds:.0f} s in the "
                       f"first third of a session to {f.last_seconds:.0f} s in the last "
                       f"({f.last_seconds / f.first_seconds:.1f}×; {f.n_first} and {f.n_last} decisions).")
        if f.accuracy_drop:
            out.append(f"Possible fatigue: {who}'s accuracy on gold fell from {f.first_gold:.0%} in the first third "
                       f"of a session to {f.last_gold:.0%} in the last ({f.n_first_gold} and {f.n_last_gold} "
                       "gold answers).")
        if not out and min(f.n_first, f.n_last) >= MIN_PER_THIRD:
            out.append(f"No sign of fatigue for {who}: median {f.first_seconds:.0f} s per decision early in a session, "
                       f"{f.last_seconds:.0f} s late.")
        return out


def person_quality(decisions: pd.DataFrame, gold: pd.Series) -> list[PersonQuality]:
    """Every person's signals from all their decisions (``agreement.votes(..., latest=False)``) and the gold rows.

    Accuracy on gold, overrides and trust in the model count each person's latest decision per
    row; time and fatigue count every decision.
    """
    if decisions.empty:
        return []
    gold = gold.astype(object)
    gold.index = gold.index.astype(str)
    timed = timings(decisions)
    hits = gold_hits(timed, gold)
    people = []
    for who, mine in timed.groupby("user", sort=True):
        latest = mine.sort_values("created_at", kind="stable").drop_duplicates("row_key", keep="last")
        on_gold = gold_hits(latest, gold)
        gold_accuracy = _mean(on_gold.astype(float))
        shown = latest[latest["predicted_label"].notna()]
        seconds = mine["seconds"].dropna()
        hours = float(seconds.sum()) / 3600
        people.append(PersonQuality(
            user=str(who), n_decisions=len(mine), n_rows=int(mine["row_key"].nunique()), n_gold=len(on_gold),
            gold_accuracy=gold_accuracy, active_hours=hours,
            per_hour=len(seconds) / hours if hours > 0 else math.nan, median_seconds=_median(seconds),
            n_shown=len(shown),
            override_rate=_mean((shown["label"].astype(str) != shown["predicted_label"].astype(str)).astype(float)),
            bias=automation_bias(latest, gold_accuracy, len(on_gold)), fatigue=fatigue(mine, hits)))
    return people


def quality_table(people: list[PersonQuality]) -> pd.DataFrame:
    """One row per person for a table: the figures of :class:`PersonQuality`, flags as words."""
    rows = [{"person": p.user, "decisions": p.n_decisions, "gold answers": p.n_gold, "gold accuracy": p.gold_accuracy,
             "decisions / hour": p.per_hour, "median s / decision": p.median_seconds,
             "override rate": p.override_rate,
             "keeps low-confidence predictions": p.bias.agrees,
             "flags": ", ".join(flag for flag, on in (("automation bias", p.bias.flagged),
                                                      ("slowing down", p.fatigue.slowing),
                                                      ("accuracy drops late", p.fatigue.accuracy_drop)) if on)}
            for p in people]
    return pd.DataFrame(rows)
