"""The explanation and what-if panels shown beside a prediction on the Review page."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from hitl_core import charts
from hitl_core.explain import LIME_SAMPLES, top_k_agreement
from hitl_core.models import predict_with_confidence
from hitl_core.records import ModelVersion, Project
from hitl_ui import state
from hitl_ui.text import md_escape

TOP_K = 3


def explanation(project: Project, version: ModelVersion, row_key: str, predicted: str) -> None:
    """SHAP waterfall and LIME weights side by side, with whether they agree on the top features."""
    classes = project.schema.classes
    class_name = predicted
    if len(classes) > 2:
        class_name = st.selectbox("Explain the score of class", classes, index=classes.index(predicted),
                                  key=f"explain_class_{row_key}")
    shap_e, lime_e = state.explain_row(project.id, version.version, row_key, class_name)
    agreement = top_k_agreement(shap_e.contributions, lime_e.contributions, k=TOP_K)
    shared = round(agreement * TOP_K)
    if agreement < 2 / 3:
        st.warning(f"SHAP and LIME share only {shared} of their top {TOP_K} features for this row: the explanation "
                   "is unstable here, so lean on the feature values rather than on either chart.",
                   icon=":material/warning:")
    else:
        st.caption(f":material/check_circle: SHAP and LIME agree on {shared} of the top {TOP_K} features.")
    left, right = st.columns(2)
    left.plotly_chart(charts.shap_waterfall(shap_e), width="stretch", key=f"shap_{row_key}_{class_name}")
    right.plotly_chart(charts.lime_weights(lime_e), width="stretch", key=f"lime_{row_key}_{class_name}")
    st.caption(f"Explaining model v{version.version} ({version.model_kind}). SHAP output is in "
               f"{shap_e.output_space}; one-hot and scaled columns are summed back to their source column. "
               f"LIME: {LIME_SAMPLES:,} seeded samples around this row.")


def what_if(project: Project, version: ModelVersion, row_key: str) -> None:
    """Edit a row's feature values and compare the new prediction and explanation with the original.

    Widget keys carry the row and the model version: Streamlit keeps a keyed widget's value, so keys
    shared between rows would show the previous row's values.
    """
    data = state.dataset(project.id, project.dataset_hash)
    schema = data.schema
    original = data.features.loc[[row_key]]
    scope = f"{row_key}_v{version.version}"
    with st.form(f"what_if_{scope}"):
        st.caption("Change any values, then compare. Nothing here is saved.")
        columns = st.columns(3)
        edited = {}
        for i, feature in enumerate(schema.features):
            value = original.iloc[0][feature]
            box = columns[i % 3]
            label = md_escape(feature)
            if feature in schema.categorical:
                levels = sorted(data.features[feature].dropna().astype(str).unique())
                current = "" if pd.isna(value) else str(value)
                options = levels if current in levels else [current, *levels]
                edited[feature] = box.selectbox(label, options, index=options.index(current),
                                                key=f"wi_{scope}_{feature}")
            else:
                edited[feature] = box.number_input(label, value=None if pd.isna(value) else float(value),
                                                   key=f"wi_{scope}_{feature}", format="%g")
        submitted = st.form_submit_button("Compare", icon=":material/compare_arrows:")
    if not submitted:
        return
    changed = original.copy()
    for feature, value in edited.items():
        changed[feature] = value
    changed.index = pd.Index([f"{row_key} (what-if)"])
    model = state.model(project.id, version.version)
    before = predict_with_confidence(model, original, schema.classes).to_frame().iloc[0]
    after = predict_with_confidence(model, changed, schema.classes).to_frame().iloc[0]
    shap_explainer, _ = state.explainers(project.id, version.version)
    left, right = st.columns(2)
    left.metric("Original", f"{before['predicted']} ({before['confidence']:.2f})")
    right.metric("What-if", f"{after['predicted']} ({after['confidence']:.2f})",
                 delta="prediction changed" if after["predicted"] != before["predicted"] else "same prediction",
                 delta_color="inverse" if after["predicted"] != before["predicted"] else "off")
    left.plotly_chart(charts.shap_waterfall(shap_explainer.explain(original, before["predicted"])[0]),
                      width="stretch", key=f"wi_before_{scope}")
    right.plotly_chart(charts.shap_waterfall(shap_explainer.explain(changed, before["predicted"])[0]),
                       width="stretch", key=f"wi_after_{scope}")
