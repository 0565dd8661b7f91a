"""Plotly figure builders: data in, ``go.Figure`` out, no Streamlit calls."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from hitl_core.evaluate import LOWER_IS_BETTER
from hitl_core.records import ModelVersion
from hitl_core.story import pct

if TYPE_CHECKING:
    from hitl_core.brief import SmartGoal

METRIC_LABELS = {
    "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)", "f1_macro": "F1 (macro)", "roc_auc": "ROC AUC", "log_loss": "Log loss",
    "brier": "Brier score",
}
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", height=340)


def _plain(text: object) -> str:
    """User text (class, column, group, model names, feature values) as plain text in a figure.

    plotly.js renders a subset of HTML (``<a href>``, ``<b>``, ``<br>``, ``<span style>``) in titles,
    tick labels, legend names, bar text, hover text, annotations and in data values substituted
    through ``%{...}`` in a hovertemplate. Escaped, ``<a href=...>`` reads as typed instead of
    becoming a live link. Every user string passes through here where it enters a figure; our own
    markup (``<br>`` in templates we write) stays outside it.
    """
    return html.escape(str(text), quote=False)


def confidence_histogram(pool: pd.DataFrame, threshold: float) -> go.Figure:
    """How confident the model is across the pool, with the review threshold drawn in."""
    pool = pool.assign(predicted=pool["predicted"].map(_plain, na_action="ignore"))
    fig = px.histogram(pool, x="confidence", color="predicted", nbins=30, range_x=[0, 1],
                       labels={"confidence": "confidence (top-class probability)", "predicted": "predicted"})
    fig.add_vline(x=threshold, line_dash="dash", line_color="crimson",
                  annotation_text=f"review below {threshold:.2f}", annotation_position="top left")
    fig.update_layout(title="Confidence across the review pool", bargap=0.05, yaxis_title="rows", **_LAYOUT)
    return fig


def class_probabilities(row: pd.Series, classes: tuple[str, ...]) -> go.Figure:
    """The model's probability for each class of one row."""
    probs = [float(row[f"p({c})"]) for c in classes]
    fig = go.Figure(go.Bar(x=probs, y=[_plain(c) for c in classes], orientation="h", text=[f"{p:.0%}" for p in probs],
                           textposition="auto", marker_color=["#1f77b4" if c != row["predicted"] else "#ff7f0e"
                                                              for c in classes]))
    fig.update_layout(title="Class probabilities", xaxis=dict(range=[0, 1], tickformat=".0%"),
                      **{**_LAYOUT, "height": 120 + 30 * len(classes)})
    return fig


def metrics_vs_baselines(comparison: pd.DataFrame) -> go.Figure:
    """Grouped bars: the model beside the majority and random baselines, metric by metric."""
    tidy = comparison.reset_index(names="metric").melt(id_vars="metric", var_name="model", value_name="value")
    tidy["metric"] = tidy["metric"].map(lambda m: _plain(METRIC_LABELS.get(m, m)))
    tidy["model"] = tidy["model"].map(_plain)
    fig = px.bar(tidy.dropna(), x="metric", y="value", color="model", barmode="group",
                 color_discrete_sequence=["#2f6fde", "#9bb7e0", "#e07b7b"])
    fig.update_layout(title="Validation metrics beside the baselines", yaxis_title="", xaxis_title="", **_LAYOUT)
    return fig


def confusion_heatmap(confusion: dict[str, dict[str, int]]) -> go.Figure:
    """Confusion matrix: rows are the true class, columns the predicted class."""
    matrix = pd.DataFrame(confusion).T
    fig = px.imshow(matrix.to_numpy(), x=[_plain(c) for c in matrix.columns], y=[_plain(c) for c in matrix.index],
                    text_auto=True, color_continuous_scale="Blues", labels=dict(x="predicted", y="true", color="rows"))
    fig.update_layout(title="Confusion matrix (validation)", **_LAYOUT)
    return fig


def history_frame(versions: list[ModelVersion], part: str = "validation") -> pd.DataFrame:
    """One row per (version, metric): the data behind the history chart."""
    rows = [{"version": v.version, "human labels": v.n_human_labels, "metric": METRIC_LABELS.get(m, m), "value": x}
            for v in versions for m, x in getattr(v, part).items() if x is not None]
    return pd.DataFrame(rows, columns=["version", "human labels", "metric", "value"])


def metric_history(versions: list[ModelVersion], metrics: list[str], *, goal: SmartGoal | None = None) -> go.Figure:
    """Each chosen validation metric against the number of human labels, one point per model version.

    ``goal`` (the brief's SMART goal) is drawn as a dashed horizontal line at its target when its metric
    is shown and it is judged on validation, the split these points are.
    """
    frame = history_frame(versions)
    frame = frame[frame["metric"].isin([METRIC_LABELS.get(m, m) for m in metrics])]
    fig = px.line(frame, x="human labels", y="value", color="metric", markers=True, hover_data=["version"])
    lower = [METRIC_LABELS[m] for m in metrics if m in LOWER_IS_BETTER]
    subtitle = f" ({', '.join(lower)}: lower is better)" if lower else ""
    fig.update_layout(title=f"Validation metrics as human labels come in{subtitle}", yaxis_title="", **_LAYOUT)
    if goal is not None and goal.metric in metrics and goal.split == "validation":
        fig.add_hline(y=goal.target, line_dash="dash", line_color="#444", line_width=2,
                      annotation_text=f"goal: {_plain(goal.text())}", annotation_position="top left")
    return fig


def _value_text(value: object) -> str:
    """A feature value as a person writes it: 12,700 (not 1.27e+04), 0.111, salaried, missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "missing"
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _probability_text(p: float) -> str:
    """A probability a person reads: 0.001, 0.42, and "< 0.001" rather than a rounded 0.000."""
    return "< 0.001" if p < 0.0005 else "> 0.999" if p > 0.9995 else f"{p:.3f}"


def _in_units(value: float, space: str, probability: float | None) -> str:
    """A SHAP base or output in its own units with the probability beside: "−6.91 log-odds = probability 0.001"."""
    if space == "probability" or probability is None:
        return f"{value:.3f} ({_plain(space)})"
    return f"{value:.2f} {_plain(space)} = probability {_probability_text(probability)}"


def _short(value: float, space: str, probability: float | None) -> str:
    """The same in an axis label's room: "−6.21 (p 0.002)"; the axis title names the units."""
    if space == "probability" or probability is None:
        return f"{value:.3f}"
    return f"{value:.2f} (p {_probability_text(probability)})"


_PROBABILITY_TICKS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)


def _spaced_ticks(x_range: list[float], most: int = 6) -> list[float]:
    """Probability ticks inside the log-odds range, at least 1/``most`` of its width apart (no overlapping text)."""
    gap, kept = (x_range[1] - x_range[0]) / most, []
    for p in sorted(_PROBABILITY_TICKS, key=lambda p: abs(p - 0.5)):  # 0.5 first, then outwards
        at = float(np.log(p / (1 - p)))
        if x_range[0] <= at <= x_range[1] and all(abs(at - np.log(q / (1 - q))) >= gap for q in kept):
            kept.append(p)
    return sorted(kept)


def shap_waterfall(explanation, max_features: int = 12) -> go.Figure:
    """Base value → each feature's push → the model's output, with base and output drawn from zero.

    The base value and the output are bars from zero with a marker at their value, so an output of
    −6.9 log-odds (probability 0.001) reads as −6.9, not as the short step from the base. In
    log-odds the probability stands beside each (and, for a binary target, on the top axis). The
    numbers sit in the axis labels, not on the bars: text beside a bar that starts at the left edge
    collides with the labels.
    """
    contributions = explanation.contributions
    space = explanation.output_space
    shown, rest = contributions.iloc[:max_features], contributions.iloc[max_features:]
    values = [float(v) for v in shown.to_numpy()]
    labels = [f"{_plain(f)} = {_plain(_value_text(explanation.feature_values[f]))}  ({v:+.3f})"
              for f, v in zip(shown.index, values)]
    if len(rest):
        values.append(float(rest.sum()))
        labels.append(f"{len(rest)} other features  ({values[-1]:+.3f})")
    base, output = float(explanation.base_value), float(explanation.output)
    base_label = f"base value  {_short(base, space, explanation.base_probability)}"
    output_label = f"output  {_short(output, space, explanation.probability)}"
    fig = go.Figure(go.Waterfall(
        orientation="h", measure=["absolute", *["relative"] * len(values), "total"],
        y=[base_label, *labels, output_label], x=[base, *values, 0],
        increasing=dict(marker_color="#d6604d"), decreasing=dict(marker_color="#4393c3"),
        totals=dict(marker_color="#bdbdbd"), connector=dict(line=dict(color="#999", dash="dot")),
        hoverinfo="skip",
    ))
    hover = [f"base value (the average row): {_in_units(base, space, explanation.base_probability)}",
             f"output: {_in_units(output, space, explanation.probability)}"]
    fig.add_trace(go.Scatter(x=[base, output], y=[base_label, output_label], mode="markers",
                             marker=dict(symbol="diamond", size=12, color="#222"), name="base and output",
                             customdata=hover, hovertemplate="%{customdata}<extra></extra>"))
    fig.add_vline(x=0, line_color="#444", line_width=1)
    running = np.cumsum([base, *values])
    low, high = min(0.0, *running, output), max(0.0, *running, output)
    pad = 0.05 * (high - low or 1.0)
    x_range = [low - pad, high + pad]
    class_text = _plain(explanation.class_name)
    layout = dict(xaxis=dict(title=f"{_plain(space)} of '{class_text}'", range=x_range, zeroline=False))
    if space == "log-odds" and explanation.probability is not None and _is_logistic(explanation):
        ticks = _spaced_ticks(x_range)
        layout["xaxis"]["title"] = f"log-odds of '{class_text}' (top: probability)"
        layout["xaxis2"] = dict(overlaying="x", side="top", range=x_range, showgrid=False,
                                tickvals=[float(np.log(p / (1 - p))) for p in ticks],
                                ticktext=[f"{p:g}" for p in ticks])
        fig.add_trace(go.Scatter(x=x_range, y=[output_label] * 2, xaxis="x2", mode="markers",
                                 marker=dict(opacity=0), hoverinfo="skip", showlegend=False))
    fig.update_layout(
        title=f"SHAP for '{class_text}': output {_in_units(output, space, explanation.probability)}",
        title_font_size=14, yaxis=dict(autorange="reversed"), showlegend=False, **layout,
        **{**_LAYOUT, "height": 170 + 28 * (len(values) + 2), "margin": dict(l=10, r=10, t=70, b=10)},
    )
    return fig


def _is_logistic(explanation) -> bool:
    """Whether output and probability are tied by the logistic function (binary log-odds; multiclass logits are not)."""
    return abs(explanation.probability - 1 / (1 + np.exp(-explanation.output))) < 1e-9


def lime_weights(explanation, max_features: int = 12) -> go.Figure:
    """LIME's local linear weights per original column (red pushes towards the class, blue away)."""
    shown = explanation.contributions.iloc[:max_features][::-1]
    labels = [f"{_plain(f)} = {_plain(_value_text(explanation.feature_values[f]))}" for f in shown.index]
    fig = go.Figure(go.Bar(x=shown.to_numpy(), y=labels, orientation="h",
                           marker_color=["#d6604d" if v > 0 else "#4393c3" for v in shown.to_numpy()],
                           text=[f"{v:+.3f}" for v in shown.to_numpy()], textposition="auto"))
    fig.update_layout(title=f"LIME for '{_plain(explanation.class_name)}': local model predicts "
                            f"{explanation.output:.2f}",
                      showlegend=False, **{**_LAYOUT, "height": 140 + 28 * (len(shown) + 1)})
    return fig


def importance_bar(importance: pd.Series) -> go.Figure:
    """Mean |SHAP| per feature: which columns move the model most, on average."""
    ordered = importance.sort_values()
    fig = go.Figure(go.Bar(x=ordered.to_numpy(), y=[_plain(f) for f in ordered.index], orientation="h",
                           marker_color="#2f6fde"))
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
    frame = tidy.assign(rank=_value_rank(tidy).to_numpy(), value_text=tidy["value"].map(_value_text).map(_plain),
                        feature_text=tidy["feature"].map(_plain), row_text=tidy["row"].map(_plain))
    position = {f: i for i, f in enumerate(order[::-1])}
    jitter = np.random.default_rng(seed).uniform(-0.3, 0.3, len(frame))
    frame["y"] = frame["feature"].map(position) + jitter
    fig = go.Figure(go.Scattergl(
        x=frame["shap"], y=frame["y"], mode="markers",
        marker=dict(size=5, color=frame["rank"], colorscale="RdBu_r", opacity=0.7,
                    colorbar=dict(title="feature value", tickvals=[0, 1], ticktext=["low", "high"])),
        customdata=frame[["feature_text", "value_text", "row_text"]].to_numpy(),
        hovertemplate="%{customdata[0]} = %{customdata[1]}<br>SHAP %{x:.3f}<br>row %{customdata[2]}<extra></extra>",
    ))
    fig.add_vline(x=0, line_color="#999")
    fig.update_layout(title="SHAP values by feature (one dot per row)", xaxis_title="SHAP value",
                      yaxis=dict(tickvals=list(position.values()), ticktext=[_plain(f) for f in position]),
                      **{**_LAYOUT, "height": 160 + 32 * len(order)})
    return fig


def dependence(tidy: pd.DataFrame, feature: str) -> go.Figure:
    """How one feature's value relates to its SHAP contribution across rows."""
    frame = tidy[tidy["feature"] == feature]
    frame = frame.assign(value=frame["value"].map(lambda v: _plain(v) if isinstance(v, str) else v))
    fig = px.strip(frame, x="value", y="shap") if frame["value"].map(lambda v: isinstance(v, str)).any() \
        else px.scatter(frame, x="value", y="shap", opacity=0.6)
    fig.add_hline(y=0, line_color="#999")
    fig.update_layout(title=f"Dependence: {_plain(feature)}", xaxis_title=_plain(feature), yaxis_title="SHAP value",
                      **_LAYOUT)
    return fig


_STRATEGY_COLOURS = ["#7f7f7f", "#2f6fde", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def learning_curves(strategies: dict[str, dict], *, reference: float | None = None, baseline: float | None = None,
                    names: dict[str, str] | None = None) -> go.Figure:
    """Validation accuracy against labels spent, one line per query strategy (± one std over repeats).

    ``strategies`` is the ``strategies`` block of a simulation result (``curve``: [[n_labels, accuracy], …],
    optional ``curve_std``); ``reference`` the full-label model's validation accuracy, drawn with its
    99 % level; ``baseline`` the majority-class accuracy.
    """
    names = names or {}
    fig = go.Figure()
    for i, (strategy, summary) in enumerate(strategies.items()):
        colour = _STRATEGY_COLOURS[i % len(_STRATEGY_COLOURS)]
        x = [point[0] for point in summary["curve"]]
        y = [point[1] for point in summary["curve"]]
        std = [point[1] for point in summary.get("curve_std", [])]
        label = _plain(names.get(strategy, strategy))
        if std and summary.get("repeats", 1) > 1:
            band = dict(width=0)
            fig.add_trace(go.Scatter(x=x + x[::-1], y=[a + s for a, s in zip(y, std)] + [a - s for a, s in zip(y, std)][::-1],
                                     fill="toself", fillcolor=colour, opacity=0.12, line=band, hoverinfo="skip",
                                     showlegend=False, legendgroup=strategy))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, legendgroup=strategy,
                                 line=dict(color=colour, width=3 if strategy != "random" else 2,
                                           dash="dot" if strategy == "random" else "solid"),
                                 hovertemplate=f"{label}<br>%{{x}} labels<br>accuracy %{{y:.3f}}<extra></extra>"))
    if reference is not None:
        fig.add_hline(y=reference, line_color="#222", line_dash="dash",
                      annotation_text=f"full-label model {reference:.3f}", annotation_position="bottom right")
        fig.add_hline(y=0.99 * reference, line_color="#999", line_dash="dot",
                      annotation_text="99 % of it", annotation_position="bottom left")
    lowest = min((p[1] for s in strategies.values() for p in s["curve"]), default=None)
    if baseline is not None and lowest is not None and baseline < lowest - 0.15:
        # far below the curves: a line would squash them flat, so say where it is instead
        fig.add_annotation(text=f"majority class {baseline:.3f} (below the chart)", xref="paper", yref="paper",
                           x=0, y=0, xanchor="left", yanchor="bottom", showarrow=False, font=dict(color="crimson"))
    elif baseline is not None:
        fig.add_hline(y=baseline, line_color="crimson", line_dash="dot",
                      annotation_text=f"majority class {baseline:.3f}", annotation_position="top left")
    fig.update_layout(title="Learning curves: validation accuracy as labels come in", xaxis_title="labels",
                      yaxis_title="validation accuracy", legend=dict(orientation="h", y=-0.2),
                      **{**_LAYOUT, "height": 420})
    return fig


def triage_curve(frame: pd.DataFrame, *, threshold: float | None = None) -> go.Figure:
    """Accuracy of people + model against the share of rows people review (``hitl_core.active.triage``).

    The left end is the model alone, the right end people alone; the marker shows ``threshold``.
    """
    curve = frame[frame["point"] == "threshold"]
    fig = go.Figure(go.Scatter(
        x=curve["to_human"], y=curve["hybrid_accuracy"], mode="lines", name="people + model",
        line=dict(color="#2f6fde", width=3), customdata=curve[["threshold", "n_to_human"]].to_numpy(),
        hovertemplate="confidence below %{customdata[0]:.2f} → a person<br>%{x:.0%} of rows "
                      "(%{customdata[1]})<br>accuracy %{y:.3f}<extra></extra>"))
    ends = frame[frame["point"] != "threshold"]
    fig.add_trace(go.Scatter(x=ends["to_human"], y=ends["hybrid_accuracy"], mode="markers+text", name="ends",
                             text=ends["point"], textposition=["top right", "top left"][:len(ends)],
                             marker=dict(size=11, color="#222"), showlegend=False,
                             hovertemplate="%{text}: accuracy %{y:.3f}<extra></extra>"))
    if threshold is not None:
        at = curve.iloc[(curve["threshold"] - threshold).abs().argsort().iloc[0]]
        fig.add_trace(go.Scatter(x=[at["to_human"]], y=[at["hybrid_accuracy"]], mode="markers", name="your threshold",
                                 marker=dict(size=14, color="crimson", symbol="diamond"),
                                 hovertemplate=f"threshold {threshold:.2f}: %{{x:.0%}} to people, "
                                               "accuracy %{y:.3f}<extra></extra>"))
    fig.update_layout(title="Triage: accuracy against the share of rows people review (validation)",
                      xaxis=dict(title="share of rows sent to a person", tickformat=".0%", range=[-0.03, 1.03]),
                      yaxis_title="expected accuracy (people + model)", legend=dict(orientation="h", y=-0.2),
                      **{**_LAYOUT, "height": 380})
    return fig


def expected_costs(estimates: dict, names: dict[str, str], *, per: int = 100) -> go.Figure:
    """Expected cost of ``per`` decisions: the model beside its baselines, whiskers = the bootstrap interval.

    ``estimates``: name → :class:`hitl_core.costs.ExpectedCost` (one unit); ``names``: name → bar label.
    The axis starts at 0, so a bar twice as tall costs twice as much.
    """
    keys = list(estimates)
    unit = _plain(estimates[keys[0]].unit)
    values = [estimates[k].per(per) for k in keys]
    upper = [(estimates[k].high or estimates[k].per_row) * per - v for k, v in zip(keys, values)]
    lower = [v - (estimates[k].low or estimates[k].per_row) * per for k, v in zip(keys, values)]
    fig = go.Figure(go.Bar(
        x=[_plain(names.get(k, k)) for k in keys], y=values, marker_color=["#2f6fde"] + ["#b8b8b8"] * (len(keys) - 1),
        error_y=dict(type="data", array=upper, arrayminus=lower, color="#444"),
        text=[f"{v:,.0f}" if v >= 100 else f"{v:,.2f}" for v in values], textposition="inside",
        insidetextanchor="start", hovertemplate="%{x}: %{y:,.2f} " + unit + f" per {per} decisions<extra></extra>"))
    fig.update_layout(title=f"Expected cost per {per} decisions ({unit})",
                      yaxis=dict(title=unit, rangemode="tozero"), showlegend=False, **_LAYOUT)
    return fig


def triage_cost_curve(frame: pd.DataFrame, unit: str, *, threshold: float | None = None) -> go.Figure:
    """Total cost of people + model for each confidence threshold (``hitl_core.costs.triage_costs``).

    Rows below the threshold go to a person; the cheapest threshold is marked, the model alone is the
    dashed line, and the axis starts at 0 so savings are drawn to scale.
    """
    unit = _plain(unit)
    curve = frame[frame["point"] == "threshold"]
    hover = ("confidence below %{x:.2f} → a person: %{customdata[0]:,} rows<br>total %{y:,.0f} " + unit +
             "<br>reviews %{customdata[1]:,.0f} · people's errors %{customdata[2]:,.0f} · model's errors "
             "%{customdata[3]:,.0f}<br>costly errors caught %{customdata[4]:,.1f}<extra></extra>")
    fig = go.Figure(go.Scatter(
        x=curve["threshold"], y=curve["total_cost"], mode="lines", name="total cost", line=dict(color="#2f6fde", width=3),
        customdata=curve[["n_to_human", "review_cost", "people_error_cost", "model_error_cost", "caught"]].to_numpy(),
        hovertemplate=hover))
    alone = float(frame.iloc[0]["total_cost"])
    fig.add_hline(y=alone, line_dash="dash", line_color="#888",
                  annotation_text=f"model alone {alone:,.0f} {unit}", annotation_position="top left")
    best = frame.loc[frame["cheapest"]].iloc[0]
    fig.add_trace(go.Scatter(x=[best["threshold"]], y=[best["total_cost"]], mode="markers+text", name="cheapest",
                             text=[f"cheapest: {best['threshold']:.2f}"], textposition="bottom center",
                             marker=dict(size=14, color="#2ca02c", symbol="star"),
                             hovertemplate=f"cheapest threshold %{{x:.2f}}: %{{y:,.0f}} {unit}<extra></extra>"))
    if threshold is not None:
        at = curve.iloc[(curve["threshold"] - threshold).abs().argsort().iloc[0]]
        fig.add_trace(go.Scatter(x=[at["threshold"]], y=[at["total_cost"]], mode="markers", name="project threshold",
                                 marker=dict(size=12, color="crimson", symbol="diamond"),
                                 hovertemplate=f"project threshold %{{x:.2f}}: %{{y:,.0f}} {unit}<extra></extra>"))
    fig.update_layout(title="Triage cost: people review the rows below the threshold (validation)",
                      xaxis=dict(title="confidence threshold", range=[-0.02, 1.02]),
                      yaxis=dict(title=f"total cost ({unit})", rangemode="tozero"),
                      legend=dict(orientation="h", y=-0.2), **{**_LAYOUT, "height": 380})
    return fig


# --------------------------------------------------------------------------- fairness (hitl_core.fairness)
_FAIR, _UNFAIR, _TOO_SMALL = "#2f6fde", "#d62728", "#b8b8b8"
_DISPARITY_COLOURS = {"demographic_parity_difference": "#ff7f0e", "demographic_parity_ratio": "#d62728",
                      "equalized_odds_difference": "#2ca02c", "equalized_odds_ratio": "#9467bd"}


def selection_rates(report) -> go.Figure:
    """Share predicted positive per group (bars) beside the share truly positive (diamonds), with the four-fifths line.

    ``report`` is a :class:`hitl_core.fairness.FairnessReport`. Bars under the dashed line (80 % of
    the highest compared group) are red; groups too small to judge are grey and ignored by the line.
    """
    from hitl_core.fairness import FOUR_FIFTHS

    table = report.by_group
    below = set(report.below_four_fifths())
    colours = [_TOO_SMALL if table.loc[g, "too_small"] else _UNFAIR if g in below else _FAIR for g in table.index]
    rates = table["selection_rate"].astype(float)
    hover = [f"{_plain(g)}<br>{int(n):,} rows" + (" (too small to judge)" if small else "")
             for g, n, small in zip(table.index, table["count"], table["too_small"])]
    groups = [_plain(g) for g in table.index]
    fig = go.Figure(go.Bar(x=groups, y=rates, marker_color=colours, name="selection rate (model)",
                           text=[f"{r:.0%}" for r in rates], textposition="outside", hovertext=hover))
    fig.add_trace(go.Scatter(x=groups, y=table["base_rate"], mode="markers", name="base rate (labels)",
                             marker=dict(symbol="diamond", size=11, color="#222222")))
    judged = rates[~table["too_small"].to_numpy(dtype=bool)].dropna()
    if len(judged) >= 2 and judged.max() > 0:
        line = FOUR_FIFTHS * judged.max()
        fig.add_hline(y=line, line_dash="dash", line_color=_UNFAIR)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(dash="dash", color=_UNFAIR),
                                 name=f"four-fifths line: 80 % of the highest rate ({line:.0%})"))
    top = float(np.nanmax([rates.max(), table["base_rate"].max(), 0.1]))
    fig.update_layout(title=f"Share predicted '{_plain(report.positive_class)}' by {_plain(report.sensitive)} "
                            f"({_plain(report.split)})",
                      yaxis=dict(tickformat=".0%", range=[0, min(1.0, top * 1.2) if top < 0.83 else 1.08]),
                      legend=dict(orientation="h", y=-0.15), **_LAYOUT)
    return fig


def group_rates(report) -> go.Figure:
    """Accuracy, TPR, FPR and precision per group: where equalized odds looks."""
    from hitl_core.fairness import GROUP_METRICS

    metrics = ["accuracy", "tpr", "fpr", "precision"]
    tidy = (report.by_group[metrics].reset_index(names="group")
            .melt(id_vars="group", var_name="metric", value_name="value"))
    tidy["metric"] = tidy["metric"].map(GROUP_METRICS)
    tidy["group"] = tidy["group"].map(_plain)
    fig = px.bar(tidy.dropna(), x="group", y="value", color="metric", barmode="group",
                 color_discrete_sequence=["#2f6fde", "#2ca02c", "#d62728", "#9467bd"])
    fig.update_layout(title=f"Error rates by {_plain(report.sensitive)} ({_plain(report.split)})",
                      yaxis=dict(tickformat=".0%"),
                      xaxis_title="", yaxis_title="", **_LAYOUT)
    return fig


def fairness_history(history: pd.DataFrame) -> go.Figure:
    """Each disparity against the number of human labels, beside validation accuracy, one point per model version.

    ``history`` is :func:`hitl_core.fairness.history_frame`: ratios should stay above the dashed
    0.8 line, differences near 0.
    """
    from hitl_core.fairness import DISPARITIES, FOUR_FIFTHS

    fig = go.Figure()
    for name, label in DISPARITIES.items():
        fig.add_trace(go.Scatter(x=history["human labels"], y=history[name], mode="lines+markers", name=label,
                                 line=dict(color=_DISPARITY_COLOURS[name],
                                           dash="dot" if "difference" in name else "solid"),
                                 customdata=history[["version"]], hovertemplate="v%{customdata[0]}: %{y:.3f}"))
    fig.add_trace(go.Scatter(x=history["human labels"], y=history["accuracy"], mode="lines+markers", name="Accuracy",
                             line=dict(color="#222222", width=3), customdata=history[["version"]],
                             hovertemplate="v%{customdata[0]}: %{y:.3f}"))
    fig.add_hline(y=FOUR_FIFTHS, line_dash="dash", line_color="#999999", annotation_text="four-fifths (ratios)",
                  annotation_position="bottom right")
    most = float(history["human labels"].max()) if len(history) else 0.0
    fig.update_layout(title="Disparities and accuracy as human labels come in (validation)", xaxis_title="human labels",
                      xaxis=dict(range=[-0.5, max(10.0, most * 1.05)]), yaxis=dict(range=[0, 1.05]),
                      legend=dict(orientation="h", y=-0.2),
                      **{**_LAYOUT, "height": 400})
    return fig


def mitigation_tradeoff(comparison: pd.DataFrame) -> go.Figure:
    """Accuracy against disparity (differences: lower is fairer) for the model and its mitigated twin.

    ``comparison`` is :meth:`hitl_core.fairness.Mitigation.comparison` (first row: the model).
    """
    names = ["model" if i == 0 else "mitigated" for i in range(len(comparison))]
    fig = go.Figure()
    for column, symbol, label in (("demographic_parity_difference", "circle", "demographic parity difference"),
                                  ("equalized_odds_difference", "square", "equalized odds difference")):
        fig.add_trace(go.Scatter(x=comparison[column], y=comparison["accuracy"], mode="lines+markers+text",
                                 text=names, textposition="top center", name=label,
                                 hovertext=[_plain(m) for m in comparison.index],
                                 marker=dict(symbol=symbol, size=13, color=_DISPARITY_COLOURS[column]),
                                 line=dict(color=_DISPARITY_COLOURS[column], dash="dot")))
    xs = comparison[["demographic_parity_difference", "equalized_odds_difference"]].to_numpy(dtype=float)
    ys = comparison["accuracy"].to_numpy(dtype=float)
    x_pad = max(0.02, 0.15 * (np.nanmax(xs) - np.nanmin(xs)))
    y_pad = max(0.005, 0.25 * (np.nanmax(ys) - np.nanmin(ys)))
    fig.update_layout(title="Accuracy against disparity (left is fairer, up is more accurate)",
                      xaxis=dict(title="disparity (difference between groups)",
                                 range=[max(-x_pad, np.nanmin(xs) - x_pad), np.nanmax(xs) + x_pad]),
                      yaxis=dict(title="accuracy", range=[np.nanmin(ys) - y_pad, np.nanmax(ys) + 2 * y_pad]),
                      legend=dict(orientation="h", y=-0.25), **{**_LAYOUT, "height": 380})
    return fig


def human_rates(human) -> go.Figure:
    """Per group: how often reviewers overrode the model, and the share they labelled vs the model predicted positive.

    ``human`` is a :class:`hitl_core.fairness.HumanFairness`.
    """
    table = human.by_group
    fig = go.Figure()
    for column, label, colour in (("override_rate", "overrode the model", "#ff7f0e"),
                                  ("human_positive_rate", f"labelled '{_plain(human.positive_class)}' by people",
                                   "#2ca02c"),
                                  ("model_positive_rate", f"predicted '{_plain(human.positive_class)}' by the model",
                                   "#2f6fde")):
        fig.add_trace(go.Bar(x=[_plain(g) for g in table.index], y=table[column], name=label, marker_color=colour,
                             text=[f"{v:.0%}" if pd.notna(v) else "" for v in table[column]], textposition="outside"))
    fig.update_layout(title=f"Reviewers' decisions by {_plain(human.sensitive)}", barmode="group",
                      yaxis=dict(tickformat=".0%", range=[0, 1.1]), legend=dict(orientation="h", y=-0.15), **_LAYOUT)
    return fig


# --------------------------------------------------------------------------- overview and model card (hitl_core.story)
_NOW, _BEFORE, _GUESS = "#2f6fde", "#9bb7e0", "#b8b8b8"


def accuracy_story(now, before=None) -> go.Figure:
    """Held-out accuracy now (and before people's labels) beside always guessing the majority class.

    ``now`` and ``before`` are :class:`hitl_core.story.Accuracy`. The axis runs from 0 to 100 %, so a
    two-point change looks like two points; whiskers are the 95 % Wilson intervals. No red or green:
    a bar's colour says which model it is, never whether it went up.
    """
    fig = go.Figure()
    if now.majority is not None:
        guess = f"always '{_plain(now.majority_class)}'" if now.majority_class else "majority guess"
        fig.add_trace(go.Bar(x=[guess], y=[now.majority], marker_color=_GUESS, text=[pct(now.majority)],
                             textposition="inside", insidetextanchor="start",
                             hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    models = [(f"v{before.version}, before people's labels", before, _BEFORE)] \
        if before is not None and before.version != now.version else []
    models.append((f"v{now.version}, now", now, _NOW))
    fig.add_trace(go.Bar(
        x=[m[0] for m in models], y=[m[1].accuracy for m in models], marker_color=[m[2] for m in models],
        text=[pct(m[1].accuracy) for m in models], textposition="inside", insidetextanchor="start",
        error_y=dict(type="data", symmetric=False, color="#222", array=[m[1].high - m[1].accuracy for m in models],
                     arrayminus=[m[1].accuracy - m[1].low for m in models]),
        hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    fig.update_layout(title=f"Right answers on {now.n:,} held-out rows ({pct(0.95)} interval)",
                      yaxis=dict(range=[0, 1.05], tickformat=".0%", title=""), showlegend=False,
                      **{**_LAYOUT, "height": 380})
    return fig


def drivers_bar(drivers, target: str) -> go.Figure:
    """The top features by mean |SHAP| (axis from 0), each bar saying which way it pushes ``target``.

    ``drivers`` are :class:`hitl_core.story.Driver`, strongest first; colours as in the SHAP
    waterfall (red pushes toward the class, blue against, grey both ways).
    """
    shown = list(drivers)[::-1]
    colours = {"toward": "#d6604d", "against": "#4393c3", "mixed": _GUESS}
    fig = go.Figure(go.Bar(
        x=[d.importance for d in shown], y=[_plain(d.feature) for d in shown], orientation="h",
        marker_color=[colours["mixed" if d.toward is not None else d.direction] for d in shown],
        text=[_plain(d.short()) for d in shown], textposition="inside", insidetextanchor="start",
        hovertemplate="%{y}: mean |SHAP| %{x:.3f}<extra></extra>"))
    fig.update_layout(title="What moves the model most", showlegend=False, uniformtext=dict(minsize=12, mode="show"),
                      xaxis=dict(rangemode="tozero", title=f"average push on '{_plain(target)}' (mean |SHAP|)"),
                      **{**_LAYOUT, "height": 160 + 60 * len(shown)})
    return fig
