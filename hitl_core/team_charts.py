"""Plotly figures of the Team page: agreement between people and their agreement with the model.

Pure (frames in, ``go.Figure`` out); people's names and class names are user text and pass through
:func:`hitl_core.markup.plotly_text` where they enter a figure.
"""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from hitl_core.markup import plotly_text

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", height=340)


def kappa_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """People × people Cohen's kappa (-1 … 1; blank: no shared rows or undefined), from ``agreement.kappa_matrix``."""
    names = [plotly_text(p) for p in matrix.columns]
    fig = px.imshow(matrix.to_numpy(dtype=float), x=names, y=names, zmin=-1, zmax=1, text_auto=".2f",
                    color_continuous_scale="RdBu", labels=dict(color="kappa"))
    fig.update_layout(title="Cohen's kappa per pair (rows both labelled)", **_LAYOUT)
    return fig


def people_confusion(matrix: pd.DataFrame) -> go.Figure:
    """Class × class counts over pairs of people on the same row (``agreement.confusion_matrix``); off-diagonal =
    disagreement."""
    fig = px.imshow(matrix.to_numpy(), x=[plotly_text(c) for c in matrix.columns],
                    y=[plotly_text(c) for c in matrix.index], text_auto=True, color_continuous_scale="Blues",
                    labels=dict(x="another person says", y="one person says", color="pairs"))
    fig.update_layout(title="When two people labelled the same row", **_LAYOUT)
    return fig


def model_agreement(bands: pd.DataFrame) -> go.Figure:
    """Share of the model's predictions each person kept, per confidence band (``quality.model_agreement_by_band``)."""
    shown = bands[bands["n"] > 0].assign(person=lambda f: f["user"].map(plotly_text),
                                         band=lambda f: f["band"].astype(str))
    fig = px.bar(shown, x="band", y="agrees", color="person", barmode="group", hover_data={"n": True},
                 labels=dict(agrees="kept the prediction", band="model confidence"))
    fig.update_layout(title="Agreement with the model by its confidence", yaxis_tickformat=".0%",
                      yaxis_range=[0, 1], **_LAYOUT)
    return fig
