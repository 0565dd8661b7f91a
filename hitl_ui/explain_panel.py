"""The explanation and what-if panels shown beside a prediction on the Review page."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from hitl_core import actions, charts, users
from hitl_core.explain import LIME_SAMPLES, Explanation, top_k_agreement
from hitl_core.models import predict_with_confidence
from hitl_core.records import EXPLANATION_METHODS, VERDICTS, ModelVersion, Project
from hitl_ui import counterfactual_panel, similar_panel, state
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
               f"{shap_e.output_space}{_units_in_words(shap_e.output_space)}; one-hot and scaled columns are summed "
               f"back to their source column. LIME: {LIME_SAMPLES:,} seeded samples around this row.")
    feedback_form(project, version, row_key, shap_e)
    similar_panel.similar_cases(project, version, row_key, predicted)
    counterfactual_panel.panel(project, version, row_key, predicted)


def _units_in_words(space: str) -> str:
    """What a SHAP number means to a domain expert, in the explainer's output space."""
    if space != "log-odds":
        return ": each contribution adds to or takes from the probability directly"
    return (": 0 is probability 0.5, and each contribution multiplies the odds by e to its power (+0.7 doubles "
            "them, +0.8 multiplies them by about 2.2, −0.7 halves them)")


def feedback_form(project: Project, version: ModelVersion, row_key: str, shap_e: Explanation) -> None:
    """Let a reviewer say whether this row's explanation (SHAP or LIME, or one feature of it) is right."""
    if not users.can(state.role(), "give feedback"):
        return
    scope = f"{row_key}_v{version.version}"
    with st.form(f"explain_feedback_{scope}", border=True, clear_on_submit=True):
        st.markdown("**Does this explanation make sense?**")
        method_col, verdict_col, feature_col = st.columns([1, 2, 2])
        method = method_col.radio("Explanation", EXPLANATION_METHODS, format_func=str.upper, horizontal=True,
                                  key=f"feedback_method_{scope}")
        verdict = verdict_col.radio("Verdict", VERDICTS, horizontal=True, key=f"feedback_verdict_{scope}")
        feature = feature_col.selectbox("About one feature (optional)", [None, *shap_e.contributions.index],
                                        format_func=lambda f: "the whole explanation" if f is None else f,
                                        key=f"feedback_feature_{scope}")
        note = st.text_input("Note on the explanation (optional)", max_chars=actions.MAX_NOTE,
                             key=f"feedback_note_{scope}",
                             placeholder="What is wrong or helpful about it? Kept with the feedback.")
        sent = st.form_submit_button("Send feedback", icon=":material/rate_review:")
    if not sent:
        return
    try:
        actions.give_explanation_feedback(state.store(), project.id, state.user(), row_key=row_key,
                                          model_version=version.version, method=method, verdict=verdict,
                                          feature=feature, note=note)
    except (actions.ActionError, users.PermissionDenied) as exc:
        st.error(str(exc), icon=":material/error:")
    else:
        about = "the whole explanation" if feature is None else f"'{md_escape(feature)}'"
        st.success(f"Feedback saved: {method.upper()} of row {md_escape(row_key)} (model v{version.version}), "
                   f"{about}: {verdict}. The Explain page counts it.", icon=":material/check:")


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
        may_save = users.can(state.role(), "give feedback")
        st.caption("Change any values, then compare. Nothing is saved unless you save a what-if that flips the "
                   "prediction as a counterfactual for this row." if may_save else
                   "Change any values, then compare. Nothing here is saved.")
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
        if may_save:
            st.text_input("Why this change? (optional)", max_chars=actions.MAX_NOTE, key=f"wi_note_{scope}",
                          placeholder="Kept with a saved counterfactual.")
        buttons = st.columns(2)
        submitted = buttons[0].form_submit_button("Compare", icon=":material/compare_arrows:")
        save = may_save and buttons[1].form_submit_button(
            "Save as counterfactual", icon=":material/bookmark_add:", on_click=_save_what_if,
            args=(project, version.version, row_key, scope),
            help="Compare, and keep the change for this row if it flips the prediction (with your name and the "
                 "model version).")
    counterfactual_panel.say_flash(project.id, row_key, "what-if")
    if not (submitted or save):
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


def _save_what_if(project: Project, version: int, row_key: str, scope: str) -> None:
    """Save the form's values as a counterfactual before the rerun, so the row's saved list already shows it."""
    edited = {f: st.session_state.get(f"wi_{scope}_{f}") for f in project.schema.features}
    counterfactual_panel.save_what_if(project, version, row_key, edited, st.session_state.get(f"wi_note_{scope}", ""))
