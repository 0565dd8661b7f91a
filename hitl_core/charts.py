"""Plotly figure builders: data in, ``go.Figure`` out, no Streamlit calls."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from hitl_core.evaluate import LOWER_IS_BETTER
from hitl_core.records import ModelVersion

METRIC_LABELS = {
    "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)", "f1_macro": "F1 (macro)", "roc_auc": "ROC AUC", "log_loss": "Log loss",
    "brier": "Brier score",
}
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", height=340)


def confidence_histogram(pool: pd.DataFrame, threshold: float) -> go.Figure:
    """How confident the model is across the pool, with the review threshold drawn in."""
    fig = px.histogram(pool, x="confidence", color="predicted", nbins=30, range_x=[0, 1],
                       labels={"confidence": "confidence (top-class probability)", "predicted": "predicted"})
    fig.add_vline(x=threshold, line_dash="dash", line_color="crimson",
                  annotation_text=f"review below {threshold:.2f}", annotation_position="top left")
    fig.update_layout(title="Confidence across the review pool", bargap=0.05, yaxis_title="rows", **_LAYOUT)
    return fig


def class_probabilities(row: pd.Series, classes: tuple[str, ...]) -> go.Figure:
    """The model's probability for each class of one row."""
    probs = [float(row[f"p({c})"]) for c in classes]
    fig = go.Figure(go.Bar(x=probs, y=list(classes), orientation="h", text=[f"{p:.0%}" for p in probs],
                           textposition="auto", marker_color=["#1f77b4" if c != row["predicted"] else "#ff7f0e"
                                                              for c in classes]))
    fig.update_layout(title="Class probabilities", xaxis=dict(range=[0, 1], tickformat=".0%"),
                      **{**_LAYOUT, "height": 120 + 30 * len(classes)})
    return fig


def metrics_vs_baselines(comparison: pd.DataFrame) -> go.Figure:
    """Grouped bars: the model beside the majority and random baselines, metric by metric."""
    tidy = comparison.reset_index(names="metric").melt(id_vars="metric", var_name="model", value_name="value")
    tidy["metric"] = tidy["metric"].map(lambda m: METRIC_LABELS.get(m, m))
    fig = px.bar(tidy.dropna(), x="metric", y="value", color="model", barmode="group",
                 color_discrete_sequence=["#2f6fde", "#9bb7e0", "#e07b7b"])
    fig.update_layout(title="Validation metrics beside the baselines", yaxis_title="", xaxis_title="", **_LAYOUT)
    return fig


def confusion_heatmap(confusion: dict[str, dict[str, int]]) -> go.Figure:
    """Confusion matrix: rows are the true class, columns the predicted class."""
    matrix = pd.DataFrame(confusion).T
    fig = px.imshow(matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index), text_auto=True,
                    color_continuous_scale="Blues", labels=dict(x="predicted", y="true", color="rows"))
    fig.update_layout(title="Confusion matrix (validation)", **_LAYOUT)
    return fig


def history_frame(versions: list[ModelVersion], part: str = "validation") -> pd.DataFrame:
    """One row per (version, metric): the data behind the history chart."""
    rows = [{"version": v.version, "human labels": v.n_human_labels, "metric": METRIC_LABELS.get(m, m), "value": x}
            for v in versions for m, x in getattr(v, part).items() if x is not None]
    return pd.DataFrame(rows, columns=["version", "human labels", "metric", "value"])


def metric_history(versions: list[ModelVersion], metrics: list[str]) -> go.Figure:
    """Each chosen validation metric against the number of human labels, one point per model version."""
    frame = history_frame(versions)
    frame = frame[frame["metric"].isin([METRIC_LABELS.get(m, m) for m in metrics])]
    fig = px.line(frame, x="human labels", y="value", color="metric", markers=True, hover_data=["version"])
    lower = [METRIC_LABELS[m] for m in metrics if m in LOWER_IS_BETTER]
    subtitle = f" ({', '.join(lower)}: lower is better)" if lower else ""
    fig.update_layout(title=f"Validation metrics as human labels come in{subtitle}", yaxis_title="", **_LAYOUT)
    return fig
