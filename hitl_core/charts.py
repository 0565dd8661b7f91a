"""Plotly figure builders: data in, ``go.Figure`` out, no Streamlit calls."""
from __future__ import annotations

import numpy as np
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


def _value_text(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def shap_waterfall(explanation, max_features: int = 12) -> go.Figure:
    """Base value → each feature's push (labelled with the row's value) → the model's output."""
    contributions = explanation.contributions
    shown, rest = contributions.iloc[:max_features], contributions.iloc[max_features:]
    labels = [f"{f} = {_value_text(explanation.feature_values[f])}" for f in shown.index]
    values = [float(v) for v in shown.to_numpy()]
    if len(rest):
        labels.append(f"{len(rest)} other features")
        values.append(float(rest.sum()))
    fig = go.Figure(go.Waterfall(
        orientation="h", base=explanation.base_value, measure=["relative"] * len(values) + ["total"],
        y=[*labels, "output"], x=[*values, 0],
        text=[f"{v:+.3f}" for v in values] + [f"{explanation.output:.3f}"], textposition="auto",
        increasing=dict(marker_color="#d6604d"), decreasing=dict(marker_color="#4393c3"),
        totals=dict(marker_color="#7f7f7f"),
    ))
    fig.update_layout(
        title=f"SHAP for '{explanation.class_name}': base {explanation.base_value:.3f} → "
              f"{explanation.output:.3f} ({explanation.output_space})",
        yaxis=dict(autorange="reversed"), showlegend=False,
        **{**_LAYOUT, "height": 140 + 28 * (len(values) + 1)},
    )
    return fig


def lime_weights(explanation, max_features: int = 12) -> go.Figure:
    """LIME's local linear weights per original column (red pushes towards the class, blue away)."""
    shown = explanation.contributions.iloc[:max_features][::-1]
    labels = [f"{f} = {_value_text(explanation.feature_values[f])}" for f in shown.index]
    fig = go.Figure(go.Bar(x=shown.to_numpy(), y=labels, orientation="h",
                           marker_color=["#d6604d" if v > 0 else "#4393c3" for v in shown.to_numpy()],
                           text=[f"{v:+.3f}" for v in shown.to_numpy()], textposition="auto"))
    fig.update_layout(title=f"LIME for '{explanation.class_name}': local model predicts {explanation.output:.2f}",
                      showlegend=False, **{**_LAYOUT, "height": 140 + 28 * (len(shown) + 1)})
    return fig


def importance_bar(importance: pd.Series) -> go.Figure:
    """Mean |SHAP| per feature: which columns move the model most, on average."""
    ordered = importance.sort_values()
    fig = go.Figure(go.Bar(x=ordered.to_numpy(), y=list(ordered.index), orientation="h", marker_color="#2f6fde"))
    fig.update_layout(title="Global importance (mean |SHAP|)", xaxis_title="mean |SHAP value|",
                      **{**_LAYOUT, "height": 120 + 24 * len(ordered)})
    return fig


def _value_rank(tidy: pd.DataFrame) -> pd.Series:
    """Each value's percentile within its feature (categoricals by category order): the beeswarm colour."""
    def rank(group: pd.Series) -> pd.Series:
        numeric = pd.to_numeric(group, errors="coerce")
        if numeric.notna().mean() < 0.5:
            numeric = group.astype(str).astype("category").cat.codes.astype(float)
        return numeric.rank(pct=True)
    return tidy.groupby("feature", group_keys=False)["value"].apply(rank)


def beeswarm(tidy: pd.DataFrame, order: list[str], seed: int = 0) -> go.Figure:
    """SHAP value of every sampled row, one band per feature, coloured by the feature's value (low → high)."""
    frame = tidy.assign(rank=_value_rank(tidy).to_numpy(), value_text=tidy["value"].map(_value_text))
    position = {f: i for i, f in enumerate(order[::-1])}
    jitter = np.random.default_rng(seed).uniform(-0.3, 0.3, len(frame))
    frame["y"] = frame["feature"].map(position) + jitter
    fig = go.Figure(go.Scattergl(
        x=frame["shap"], y=frame["y"], mode="markers",
        marker=dict(size=5, color=frame["rank"], colorscale="RdBu_r", opacity=0.7,
                    colorbar=dict(title="feature value", tickvals=[0, 1], ticktext=["low", "high"])),
        customdata=frame[["feature", "value_text", "row"]].to_numpy(),
        hovertemplate="%{customdata[0]} = %{customdata[1]}<br>SHAP %{x:.3f}<br>row %{customdata[2]}<extra></extra>",
    ))
    fig.add_vline(x=0, line_color="#999")
    fig.update_layout(title="SHAP values by feature (one dot per row)", xaxis_title="SHAP value",
                      yaxis=dict(tickvals=list(position.values()), ticktext=list(position.keys())),
                      **{**_LAYOUT, "height": 160 + 32 * len(order)})
    return fig


def dependence(tidy: pd.DataFrame, feature: str) -> go.Figure:
    """How one feature's value relates to its SHAP contribution across rows."""
    frame = tidy[tidy["feature"] == feature]
    fig = px.strip(frame, x="value", y="shap") if frame["value"].map(lambda v: isinstance(v, str)).any() \
        else px.scatter(frame, x="value", y="shap", opacity=0.6)
    fig.add_hline(y=0, line_color="#999")
    fig.update_layout(title=f"Dependence: {feature}", xaxis_title=feature, yaxis_title="SHAP value", **_LAYOUT)
    return fig
