"""Metrics page: the current model beside its baselines, the confusion matrix and the history of versions."""
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from hitl_core import brief, charts
from hitl_core.evaluate import LOWER_IS_BETTER, METRIC_NAMES
from hitl_core.models import BASELINE_KINDS, MODEL_KINDS
from hitl_ui import costs_panel, retrain_line, state

state.through_frame(__file__)

st.title("Metrics")
project = state.require_project()

versions = state.store().model_versions(project.id)
latest = state.current_version(project)
earlier = [v for v in versions if v.version < latest.version and v.status != "superseded"]
previous = earlier[-1] if earlier else None
retrain_line.retrain_status(project, latest.version)
st.caption(f"Model v{latest.version} · {MODEL_KINDS[latest.model_kind]} · {latest.n_human_labels:,} human labels · "
           f"fit in {latest.fit_seconds:.2f} s · all figures on the validation split unless marked *held-out test*.")


def comparison(part: str) -> pd.DataFrame:
    """Metric × (model, baselines) on one split."""
    table = pd.DataFrame({f"model v{latest.version}": getattr(latest, part)})
    for kind, label in BASELINE_KINDS.items():
        table[label] = pd.Series(latest.baselines[kind][part])
    return table.reindex(METRIC_NAMES).dropna(how="all")


headline = st.columns(4)
for column, metric in zip(headline, ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc")):
    value = latest.validation.get(metric)
    before = previous.validation.get(metric) if previous else None
    change = None if value is None or before is None else round(value - before, 3)
    column.metric(charts.METRIC_LABELS[metric], "n/a" if value is None else f"{value:.3f}",
                  delta=None if change is None else (f"{change:+.3f} vs v{previous.version}" if change
                                                     else f"no change vs v{previous.version}"),
                  delta_color="normal" if change else "off",  # "+0.000" in green read as an improvement
                  delta_arrow="auto" if change else "off")

validation = comparison("validation")
left, right = st.columns([3, 2])
left.plotly_chart(charts.metrics_vs_baselines(validation), width="stretch")
right.plotly_chart(charts.confusion_heatmap(latest.confusion), width="stretch")
st.dataframe(validation.rename(index=charts.METRIC_LABELS).style.format("{:.3f}", na_rep="n/a"))
st.caption("Log loss and Brier score: lower is better. Brier is shown for binary targets only.")

costs_panel.section(project, latest)

st.subheader("History")
if len(versions) < 2:
    st.info("Only one model version so far. Correct or accept predictions on the Review page: each retrain "
            "adds a point here.", icon=":material/timeline:")
project_brief = brief.current_brief(state.store(), project.id)
goal = project_brief.goal if project_brief else None
if goal is not None:  # the brief's SMART goal: where the current model stands, and its target on the chart
    progress = brief.goal_progress(project_brief, latest, datetime.now(timezone.utc).date())
    st.markdown(f"**Goal:** {goal.text()}. v{latest.version}: {progress.sentence()}")  # no user text in a goal
    if goal.split != "validation":
        st.caption("The goal is judged on the held-out test set; the chart below shows validation, so it has no "
                   "goal line (the sentence above is the test number).")
shown = ["accuracy", "balanced_accuracy", "f1_macro"]
shown += [goal.metric] if goal is not None and goal.metric not in shown else []
chosen = st.multiselect("Metrics", list(METRIC_NAMES), default=shown,
                        format_func=charts.METRIC_LABELS.get, key="history_metrics")
if chosen:
    st.plotly_chart(charts.metric_history(versions, chosen, goal=goal), width="stretch")
st.dataframe(
    pd.DataFrame([{"version": v.version, "status": v.status, "created": v.created_at, "model": v.model_kind,
                   "trigger": v.trigger,
                   "human labels": v.n_human_labels, "training rows": v.n_train, "fit (s)": round(v.fit_seconds, 3),
                   "accuracy": v.validation["accuracy"], "f1_macro": v.validation["f1_macro"],
                   "why": v.status_reason}
                  for v in reversed(versions)]),
    hide_index=True, key="version_table")

st.subheader("Held-out test set")
st.caption("Split off before anything was trained or tuned and never used for either: the honest estimate. "
           "Do not pick models by this table, or it stops being honest.")
st.dataframe(comparison("test").rename(index=charts.METRIC_LABELS).style.format("{:.3f}", na_rep="n/a"))
lower = ", ".join(charts.METRIC_LABELS[m] for m in LOWER_IS_BETTER)
st.caption(f"Lower is better for: {lower}.")
