"""Team page: how far people agree, each person's quality signals, gold rows, likely label errors, reasons.

A view: the figures come from hitl_core.agreement, hitl_core.quality and hitl_core.label_issues;
gold rows and the gold rate change only through hitl_core.actions. Gold answers are shown only to
roles that may set them, because the queue mixes gold rows in unmarked.
"""
import math

import pandas as pd
import streamlit as st

from hitl_core import actions, agreement, label_issues, quality, team_charts, users
from hitl_ui import review_panel, state
from hitl_ui.text import md_escape

state.through_frame(__file__)

st.title("Team")
project = state.require_project()
store = state.store()
classes = list(project.schema.classes)
last_decision = store.last_decision_id(project.id)
lead = users.can(state.role(), "adjudicate")


@st.cache_data(show_spinner="Measuring agreement and quality…", max_entries=8)
def team_figures(project_id: int, last_decision_id: int, gold: pd.Series):
    """Votes, agreement, per-person quality and trust by confidence band; once per new decision or gold change."""
    decisions = store.decisions(project_id, up_to=last_decision_id)
    votes = agreement.votes(decisions)
    return (decisions, agreement.agreement(votes), quality.person_quality(
        agreement.votes(decisions, latest=False), gold), quality.model_agreement_by_band(votes))


@st.cache_data(show_spinner=False, max_entries=4)
def likely_errors(project_id: int, version: int, last_decision_id: int, dataset_hash: str, model_kind: str,
                  seed: int) -> label_issues.LabelIssues:
    """cleanlab on out-of-fold probabilities of the project's model kind, per labels snapshot."""
    data = state.dataset(project_id, dataset_hash)
    labels = state.pool(project_id, version, last_decision_id)["label"]
    return label_issues.find_label_issues(data, labels, model_kind, seed=seed, threads=state.settings().threads)


gold = store.gold(project.id)
decisions, agreed, people, bands = team_figures(project.id, last_decision, gold)
if decisions.empty:
    st.info("Nobody has labelled a row in this project yet. Decisions made on the Review page appear here: agreement "
            "once two people have labelled the same rows, quality signals from the first decision.",
            icon=":material/group:")
    st.page_link("pages/review.py", label="Go to Review", icon=":material/rate_review:")

# --------------------------------------------------------------------------- agreement
st.header("Agreement between people", divider="gray")
for sentence in agreed.sentences():
    st.markdown(md_escape(sentence))
if agreed.n_items:
    figures = st.columns(4)
    figures[0].metric("Rows labelled by 2+ people", f"{agreed.n_items:,}")
    figures[1].metric("Percent agreement", f"{agreed.percent_agreement:.0%}",
                      help="Share of agreeing pairs of people per row, averaged over rows.")
    figures[2].metric("Krippendorff's alpha",
                      "—" if math.isnan(agreed.krippendorff_alpha) else f"{agreed.krippendorff_alpha:.2f}",
                      help="Nominal; uses every row with two or more labels, missing ratings allowed.")
    figures[3].metric("Fleiss' kappa", "—" if math.isnan(agreed.fleiss.kappa) else f"{agreed.fleiss.kappa:.2f}",
                      help=f"On the {agreed.fleiss.n_items:,} rows labelled by exactly "
                           f"{agreed.fleiss.raters_per_item} people (it needs the same number per row).")
    left, right = st.columns(2)
    left.plotly_chart(team_charts.kappa_heatmap(agreement.kappa_matrix(agreed.cohen)), width="stretch")
    right.plotly_chart(team_charts.people_confusion(agreement.confusion_matrix(agreed.confusion, classes)),
                       width="stretch")
    st.dataframe(agreed.cohen.rename(columns={"rater_a": "person", "rater_b": "other person",
                                              "n_shared": "rows both labelled"}), hide_index=True,
                 column_config={"agreement": st.column_config.NumberColumn(format="percent"),
                                "kappa": st.column_config.NumberColumn(format="%.2f")})
    disagreements = agreed.confusion[agreed.confusion["says"] != agreed.confusion["other_says"]]
    if len(disagreements):
        st.caption("Who says which class when another person says another (pairs of people on the same row):")
        st.dataframe(disagreements.sort_values("n", ascending=False).rename(
            columns={"user": "person", "says": "says", "other_says": "while another says", "n": "rows"}),
            hide_index=True)

# --------------------------------------------------------------------------- quality per person
st.header("Each person", divider="gray")
if people:
    st.dataframe(quality.quality_table(people), hide_index=True, column_config={
        **{c: st.column_config.NumberColumn(format="percent")
           for c in ("gold accuracy", "override rate", "keeps low-confidence predictions")},
        "decisions / hour": st.column_config.NumberColumn(format="%.0f"),
        "median s / decision": st.column_config.NumberColumn(format="%.0f")})
    for person in people:
        with st.container(border=True):
            st.markdown(f"**{md_escape(person.user)}**")
            st.markdown("\n".join(f"- {md_escape(s)}" for s in person.sentences()))
    if bands["n"].sum():
        st.plotly_chart(team_charts.model_agreement(bands), width="stretch")
    st.caption(f"Time per decision: gaps between a person's decisions; gaps over "
               f"{int(quality.SESSION_BREAK.total_seconds() // 60)} min are breaks and start a new session. "
               f"Automation bias: keeping low-confidence (< {quality.LOW_CONFIDENCE:.0%}) predictions more than "
               f"{quality.BIAS_MARGIN:.0%} above the most someone with that gold accuracy could agree, with at least "
               f"{quality.MIN_LOW_ROWS} such rows and {quality.MIN_GOLD} gold answers. Fatigue: first against last "
               f"third of each session ({quality.SLOWDOWN}× slower, or {quality.ACCURACY_DROP:.0%} less accurate on "
               "gold).")
else:
    st.info("No decisions yet: each person's pace, overrides and accuracy on gold rows appear after their first "
            "decision on the Review page.", icon=":material/person:")

# --------------------------------------------------------------------------- gold rows
st.header("Gold rows (known answers)", divider="gray")
rate = store.gold_rate(project.id)
st.markdown(f"{len(gold):,} gold row(s); {rate:.0%} of each *Ask next* batch on the Review page is given to gold rows "
            "the person has not answered yet, unmarked.")
if not lead:
    st.caption("Only a lead or an admin sees and sets gold rows, so that nobody reviewing knows which rows are gold.")
else:
    if len(gold):
        st.dataframe(gold.rename("known label").rename_axis("row").reset_index(), hide_index=True, height=200)
    else:
        st.info("No gold rows yet: add rows whose answer you are sure of, then set a gold rate above 0 so they are "
                "mixed into people's batches.", icon=":material/workspace_premium:")
    add, remove = st.columns(2)
    with add.form("gold_add", clear_on_submit=True):
        keys_text = st.text_area("Row keys", placeholder="e.g. 17, 42, 108", key="gold_keys",
                                 help="Rows of the review pool (as shown on the Review page), separated by commas, "
                                      "spaces or new lines.")
        label = st.selectbox("Their known label", classes, key="gold_label")
        if st.form_submit_button("Set as gold", icon=":material/workspace_premium:"):
            keys = [k for k in keys_text.replace(",", " ").split() if k]
            try:
                changed = actions.set_gold(store, project.id, state.user(), {k: label for k in keys})
            except (actions.ActionError, users.PermissionDenied) as exc:
                st.error(md_escape(str(exc)), icon=":material/error:")
            else:
                st.success(f"{changed} gold row(s) set to {md_escape(label)}.", icon=":material/check:")
                st.rerun()
    with remove.form("gold_remove"):
        dropped = st.multiselect("Remove from gold", list(gold.index), key="gold_drop")
        new_rate = st.slider("Gold rate: share of each batch", 0.0, actions.MAX_GOLD_RATE, float(rate), 0.05,
                             key="gold_rate", help="0 = no gold rows in the queue. 0.1 = about 2 of a batch of 20.")
        if st.form_submit_button("Save", icon=":material/save:"):
            try:
                if dropped:
                    actions.set_gold(store, project.id, state.user(), {k: None for k in dropped})
                actions.set_gold_rate(store, project.id, state.user(), new_rate)
            except (actions.ActionError, users.PermissionDenied) as exc:
                st.error(md_escape(str(exc)), icon=":material/error:")
            else:
                st.rerun()

# --------------------------------------------------------------------------- likely label errors
st.header("Likely label errors", divider="gray")
version = state.current_version(project)
if st.toggle("Check every label with confident learning (cleanlab, 5-fold cross-validation of the project's model)",
             key=f"team_label_issues_{project.id}"):
    with st.status("Training the model on 4 of 5 folds, five times, to score each label out of fold…",
                   expanded=False) as status:
        found = likely_errors(project.id, version.version, last_decision, project.dataset_hash, project.model_kind,
                              project.seed)
        status.update(label="Labels checked", state="complete")
    st.markdown(md_escape(found.sentence()))
    if not found.ranked.empty:
        table = found.ranked.head(200).rename_axis("row").reset_index()
        st.dataframe(table, hide_index=True, column_config={
            "quality": st.column_config.ProgressColumn("quality", min_value=0.0, max_value=1.0, format="%.3f",
                                                       help="Out-of-fold probability of the row's label: low = "
                                                            "likely wrong."),
            "likely_error": st.column_config.CheckboxColumn("flagged", help="Confident learning's verdict.")})
        pick, go_to = st.columns([3, 1], vertical_alignment="bottom")
        row = pick.selectbox("Row to check", list(table["row"]), key="team_issue_row")
        if go_to.button("Open in Review", icon=":material/rate_review:", key="team_open_review"):
            review_panel.set_open_row(project.id, str(row))
            st.switch_page("pages/review.py")
else:
    st.caption("Ranks the labelled rows of the review pool by how probable a model that never saw them finds their "
               "label; takes a few seconds (five fits).")

# --------------------------------------------------------------------------- reasons
if "reason" in decisions.columns:
    st.header("Override reasons", divider="gray")
    reasons = decisions.loc[(decisions["action"] == "override") & decisions["reason"].fillna("").ne(""), "reason"]
    if reasons.empty:
        st.caption("No override carries a reason yet.")
    else:
        st.dataframe(reasons.value_counts().rename_axis("reason").reset_index(name="overrides"), hide_index=True)
