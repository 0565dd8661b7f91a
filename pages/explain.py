"""Explain page: what drives the model overall (mean |SHAP|, beeswarm, dependence), on a seeded sample."""
import pandas as pd
import streamlit as st

from hitl_core import charts
from hitl_core.explain import feedback_counts, importance, ranking_difference
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

budget = state.global_budget(project.id, latest.version, min(limit, pool_size))
exact_rows = min(int(n_rows), budget.rows)
tidy = state.global_sample_with_progress(project, latest.version, class_name, exact_rows)
ranking = importance(tidy)

method = "exact TreeSHAP" if latest.model_kind in ("rf", "hgb") else "exact SHAP"
cost = f"{budget.seconds_per_row * 1000:.1f} ms" if budget.seconds_per_row >= 1e-4 else "under 0.1 ms"
st.caption(f"Model v{latest.version} · {MODEL_KINDS[latest.model_kind]} · {tidy['row'].nunique():,} seeded rows of "
           f"the training pool · {method} · contributions to the '{md_escape(class_name)}' score, summed back to "
           f"original columns · measured {cost} a row for this model.")
if exact_rows < n_rows:
    st.info(f"Exact SHAP costs {cost} a row on this model, so {exact_rows:,} of the {int(n_rows):,} rows asked for "
            f"fit in about {budget.budget_seconds:.0f} s; the views below use those {exact_rows:,}. The fast "
            "approximate view below can take all of them.", icon=":material/timer:")
st.plotly_chart(charts.importance_bar(ranking), width="stretch")
st.plotly_chart(charts.beeswarm(tidy, list(ranking.index)), width="stretch")
feature = st.selectbox("Dependence plot for", list(ranking.index), key="dependence_feature")
st.plotly_chart(charts.dependence(tidy, feature), width="stretch")

if latest.model_kind == "rf":
    st.subheader("Fast approximate view")
    if st.toggle(f"Add the approximate (Saabas) ranking on all {int(n_rows):,} rows", key="global_approximate",
                 help="Path attributions: ~100x faster on forests and still additive, but up to 0.25 off exact "
                      "TreeSHAP per value, which can swap features in the ranking."):
        rough = state.global_sample_with_progress(project, latest.version, class_name, int(n_rows), approximate=True)
        rough_ranking = importance(rough)
        # the exact sample is the first rows of the larger one: on those, only the method differs
        same_rows = ranking_difference(ranking, importance(rough[rough["row"].isin(tidy["row"])]))
        all_rows = ranking_difference(ranking, rough_ranking)
        compared = (f"Against the exact ranking: on the same {exact_rows:,} rows the approximation gives "
                    f"{same_rows.sentence()}; on all {rough['row'].nunique():,} rows, {all_rows.sentence()}.")
        if same_rows.shared < same_rows.k or same_rows.spearman < 0.9:
            st.warning(compared + " Trust the exact view above for the ranking.", icon=":material/compare_arrows:")
        else:
            st.caption(compared)
        st.dataframe(pd.DataFrame({
            "exact rank": range(1, len(ranking) + 1),
            "approximate rank": rough_ranking.rank(ascending=False, method="first").reindex(ranking.index).astype(int),
            "exact mean |SHAP|": ranking, "approximate mean |SHAP|": rough_ranking.reindex(ranking.index),
        }, index=ranking.index).rename_axis("feature"), width="stretch")

st.subheader("Feedback on explanations")
feedback = state.store().explanation_feedback(project.id)
if feedback.empty:
    st.info("No feedback yet. On the Review page, under a row's SHAP and LIME charts, mark its explanation "
            "helpful, not helpful or wrong (optionally for one feature, with a note); the counts appear here.",
            icon=":material/reviews:")
else:
    by_feature, by_version = st.columns(2)
    by_feature.caption(f"{len(feedback):,} verdicts per feature (most 'wrong' first)")
    by_feature.dataframe(feedback_counts(feedback, "feature"), width="stretch")
    by_version.caption("Per model version")
    by_version.dataframe(feedback_counts(feedback, "model_version").rename(index=lambda v: f"v{v}"), width="stretch")

