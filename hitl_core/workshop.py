"""The live workshop vote: one row on the shared screen, everyone votes, then the room sees the tally beside the model.

Pure: a round as stored, the votes of a round as a frame (``user``, ``label``), the model's answer
in; the tally, the agreement among the people and the sentence for the shared screen out
("7 of 9 people say yes; the model says yes (0.81)."). The rules of who may open, reveal, close
and vote live in :mod:`hitl_core.actions`; the votes themselves are decisions of kind "workshop",
so consensus and the Team page's agreement count them like any other vote.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from hitl_core import agreement
from hitl_core.markup import plotly_text

SHOWN_FEATURES = 3  # reasons named in the explanation sentence: a room reads three, not twelve


def tally(votes: pd.DataFrame, classes: Sequence[str]) -> pd.Series:
    """Votes per class, every class listed (0 for none) in the schema's order, then any label not in it."""
    counts = votes["label"].astype(str).value_counts() if len(votes) else pd.Series(dtype="int64")
    order = list(classes) + sorted(set(counts.index) - set(classes))
    return counts.reindex(order, fill_value=0).astype("int64").rename("votes")


def pairwise_agreement(votes: pd.DataFrame) -> float:
    """Share of pairs of voters who gave the same label (NaN under two voters): :func:`agreement.percent_agreement`
    on this one row, so the Team page and the shared screen use the same number."""
    frame = votes.assign(row_key="round")[["row_key", "user", "label"]]
    return agreement.percent_agreement(agreement.rating_table(frame, min_raters=2))


@dataclass(frozen=True)
class Result:
    """What the shared screen says after the reveal: the people's tally and the model's answer."""

    tally: pd.Series  # class → votes
    agreement: float  # pairwise: NaN with fewer than two voters
    predicted: str | None = None  # the model's label (None: no model)
    confidence: float | None = None

    @property
    def n_votes(self) -> int:
        return int(self.tally.sum())

    @property
    def majority(self) -> str | None:
        """The most voted label; None with no vote or a tie at the top."""
        top = self.tally[self.tally == self.tally.max()]
        return str(top.index[0]) if self.n_votes and len(top) == 1 else None

    @property
    def majority_share(self) -> float:
        return float(self.tally.max() / self.n_votes) if self.n_votes else float("nan")

    def people_sentence(self) -> str:
        """"7 of 9 people say yes", "the 4 people are split: 2 say yes, 2 say no", "nobody has voted yet"."""
        n = self.n_votes
        if n == 0:
            return "Nobody has voted yet"
        if self.majority is None:
            given = self.tally[self.tally > 0].sort_values(ascending=False, kind="stable")
            parts = ", ".join(f"{v} {'says' if v == 1 else 'say'} {label}" for label, v in given.items())
            return f"The {n} people are split: {parts}"
        top = int(self.tally.max())
        if n == 1:
            return f"1 person says {self.majority}"
        return f"All {n} people say {self.majority}" if top == n else f"{top} of {n} people say {self.majority}"

    def sentence(self) -> str:
        """The shared screen's headline: "7 of 9 people say yes; the model says yes (0.81)."."""
        people = self.people_sentence()
        if self.predicted is None:
            return f"{people}; there is no model answer to compare."
        confidence = "" if self.confidence is None else f" ({self.confidence:.2f})"
        return f"{people}; the model says {self.predicted}{confidence}."

    def agreement_sentence(self) -> str:
        """How much the people agree, and whether they agree with the model, in one line."""
        if self.n_votes < 2:
            return "Agreement needs at least two votes."
        text = f"{self.agreement:.0%} of pairs of people agree"
        if self.predicted is not None and self.majority is not None:
            text += "; the room agrees with the model" if self.majority == self.predicted else \
                "; the room disagrees with the model"
        return text + "."


def tally_chart(result: Result) -> go.Figure:
    """The room's votes per class as large bars, the model's class marked, readable from the back of the room."""
    names = [plotly_text(c) for c in result.tally.index]
    colours = ["#ff7f0e" if c == result.predicted else "#1f77b4" for c in result.tally.index]
    fig = go.Figure(go.Bar(x=names, y=result.tally.to_numpy(), marker_color=colours, text=result.tally.to_numpy(),
                           textposition="outside", textfont=dict(size=28), cliponaxis=False))
    title = "Votes" if result.predicted is None else \
        f"Votes (orange: the model's answer, {plotly_text(result.predicted)})"
    fig.update_layout(title=dict(text=title, font=dict(size=22)), template="plotly_white", height=300,
                      margin=dict(l=10, r=10, t=60, b=10), xaxis=dict(tickfont=dict(size=24)),
                      yaxis=dict(title="people", dtick=1, rangemode="tozero",
                                 range=[0, max(1, int(result.tally.max())) * 1.25]), bargap=0.3)
    return fig


def explanation_words(contributions: pd.Series, feature_values: pd.Series, class_name: str, *,
                      k: int = SHOWN_FEATURES) -> str:
    """The top SHAP contributions in words, for a room that will not read a waterfall chart.

    Parameters
    ----------
    contributions : source column → SHAP contribution to ``class_name``'s score (largest |value| first)
    feature_values : source column → this row's value
    """
    top = contributions.reindex(contributions.abs().sort_values(ascending=False, kind="stable").index)[:k]
    if top.empty or not top.abs().sum():
        return f"No single feature moves the model's score for {class_name} on this row."
    parts = [f"{name} = {value_text(feature_values.get(name))} ({'towards' if value > 0 else 'away from'} {class_name})"
             for name, value in top.items() if value]
    return f"What moved the model most: {'; '.join(parts)}."


def value_text(value: object) -> str:
    """A feature value as people read it: 52,000 not 52000.0; missing as "missing"."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "missing"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
