"""Explain page: what drives the model overall (mean |SHAP|, beeswarm, dependence), on a seeded sample."""
import math

import pandas as pd
import streamlit as st

from hitl_core import charts
from hitl_core.explain import importance
from hitl_core.models import MODEL_KINDS
from hitl_ui import retrain_line, state
from hitl_ui.text import md_escape

state.through_frame(__file__)

st.title("Explain the model")
project = state.require_project()

latest = state.current_version(project)
retrain_line.retrain_status(project, latest.version)
classes = project.schema.classes
limit = state.settings().explain_rows
pool_size = int((state.dataset(project.id, project.dataset_hash).split == "train").sum())

left, right = st.columns(2)
class_name = left.selectbox("Class whose score is explained", classes, index=len(classes) - 1, key="global_class")
n_rows = right.number_input(f"Rows to sample from the pool (at most {limit:,})", min_value=10,
                            max_value=min(limit, pool_size), value=min(500, limit, pool_size), step=50,
                            key="global_rows")

chunks = math.ceil(min(n_rows, pool_size) / state.GLOBAL_CHUNK)
progress = st.progress(0.0, text="Computing SHAP values…")
parts = []
for chunk in range(chunks):
    parts.append(state.global_chunk(project.id, latest.version, class_name, int(n_rows), chunk))
    progress.progress((chunk + 1) / chunks, text=f"Computing SHAP values… {min((chunk + 1) * state.GLOBAL_CHUNK, n_rows):,} rows")
progress.empty()
tidy = pd.concat(parts, ignore_index=True)
ranking = importance(tidy)

method = "approximate (path-based) TreeSHAP, fast on forests" if latest.model_kind == "rf" else "exact SHAP"
st.caption(f"Model v{latest.version} · {MODEL_KINDS[latest.model_kind]} · {tidy['row'].nunique():,} seeded rows of "
           f"the training pool · {method} · contributions to the '{md_escape(class_name)}' score, summed back to "
           "original columns.")
st.plotly_chart(charts.importance_bar(ranking), width="stretch")
st.plotly_chart(charts.beeswarm(tidy, list(ranking.index)), width="stretch")
feature = st.selectbox("Dependence plot for", list(ranking.index), key="dependence_feature")
st.plotly_chart(charts.dependence(tidy, feature), width="stretch")
