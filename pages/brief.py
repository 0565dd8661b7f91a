"""Brief page: what the project is for and how it is judged, written before (and while) modelling.

Hypothesis, stakeholders, a SMART goal with its progress, the optimisation metric beside the human
success measures, a premortem and safety checks evaluated on every model version. Leads and admins
edit it (:func:`hitl_core.actions.save_brief`: every save is a new version, kept); everyone reads it.
"""
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from hitl_core import actions, brief, users
from hitl_core.brief import Brief, SmartGoal
from hitl_core.fairness import attribute_name, attribute_sets
from hitl_ui import state
from hitl_ui.text import md_escape

state.through_frame(__file__)

FLASH = "brief_flash"
NO_METRIC = "(none)"

st.title("Brief")
project = state.require_project()
store = state.store()
schema = project.schema
history = brief.brief_history(store, project.id)
current = history[-1].brief if history else Brief()
editable = users.can(state.role(), "edit brief")
today = datetime.now(timezone.utc).date()
metrics = [m for m in brief.METRIC_TEXT if m != "brier" or len(schema.classes) == 2]
attributes = [attribute_name(s) for s in attribute_sets(schema.sensitive)]

if done := st.session_state.pop(FLASH, None):
    st.success(done, icon=":material/check_circle:")
if history:
    last = history[-1]
    st.caption(f"Project {md_escape(project.name)} · brief v{last.version} saved by {md_escape(last.created_by)} on "
               f"{last.created_at:%Y-%m-%d %H:%M} UTC · every save is kept (see *History*).")
else:
    st.info("No brief yet. Before modelling, write down what you expect (a testable hypothesis), who the model "
            "matters to, a SMART goal and the safety checks every version must pass."
            + (" Start on the *Edit* tab." if editable else " A lead or an admin writes it."),
            icon=":material/description:")

read, *rest = st.tabs(["Brief", "Edit", "History"] if editable else ["Brief", "History"])
edit_tab, history_tab = (rest[0], rest[1]) if editable else (None, rest[0])

with read:
    st.subheader("Hypothesis", anchor=False)
    st.markdown(md_escape(current.hypothesis) if current.hypothesis else "*Not written yet.*")
    for flag in brief.flags(current, today) if history else []:
        st.warning(md_escape(flag), icon=":material/flag:")

    st.subheader("Stakeholders", anchor=False)
    if current.stakeholders:
        st.dataframe(brief.stakeholders_frame(current), hide_index=True, key="brief_stakeholders_view",
                     column_config={"kind": st.column_config.TextColumn("kind", help="; ".join(
                         brief.STAKEHOLDER_KINDS.values())), "concerns": st.column_config.TextColumn(width="large"),
                         "success": st.column_config.TextColumn("how they judge success", width="large")})
    else:
        st.caption("None named yet: who pays for it (invested), who is decided about (impacted), who watches "
                   "(interested)?")

    st.subheader("SMART goal", anchor=False)
    version = state.current_version(project)
    progress = brief.goal_progress(current, version, today)
    if progress is None:
        st.caption("No goal yet: a metric target with a date, e.g. balanced accuracy ≥ 0.80 on validation by "
                   f"{today + timedelta(days=90):%Y-%m-%d}.")
    else:
        st.markdown(f"**{current.goal.text()}**")  # our words and numbers only: no user text in a goal
        (st.success if progress.met else st.info)(f"v{version.version}: {progress.sentence()}",
                                                  icon=":material/flag:")
        st.page_link("pages/metrics.py", label="The goal on the history chart (Metrics)", icon=":material/monitoring:")

    optimised, human = st.columns(2)
    optimised.markdown("**Optimisation metric** (what the model is tuned and compared on)  \n" +
                       (md_escape(brief.METRIC_TEXT[current.optimisation_metric]) if current.optimisation_metric
                        else "*not chosen*"))
    human.markdown("**Human success measures** (what people will count as success)  \n" +
                   (md_escape(current.success_measures) if current.success_measures else "*not written yet*"))

    st.subheader("Premortem", anchor=False)
    if current.premortem:
        st.dataframe(brief.premortem_frame(current), hide_index=True, key="brief_premortem_view",
                     column_config={"failure": st.column_config.TextColumn("it failed because…", width="large"),
                                    "mitigation": st.column_config.TextColumn("so now we…", width="large")})
    else:
        st.caption("Imagine the project failed a year from now: why? Each failure with what you do now to prevent it.")

    st.subheader("Safety checks on every version", anchor=False)
    if not current.checks:
        st.caption("No safety checks yet: named rules every model version must pass (a metric floor, the "
                   "four-fifths rule for a sensitive attribute, recall of a class, beating the majority baseline).")
    else:
        results = brief.evaluate_checks(current, version, schema)
        failed = [r for r in results if r.passed is False]
        (st.error if failed else st.success)(f"Current model v{version.version}: "
                                             f"{md_escape(brief.summary(results))}",
                                             icon=":material/gpp_bad:" if failed else ":material/verified_user:")
        st.dataframe(pd.DataFrame({"check": [c.name for c in current.checks],
                                   "rule": [c.rule() for c in current.checks]}), hide_index=True,
                     key="brief_checks_rules")
        st.dataframe(brief.checks_table(current, store.model_versions(project.id), schema), hide_index=True,
                     key="brief_checks_table", column_config={
                         "version": st.column_config.NumberColumn("version", format="v%d")})
        st.caption("✓ passed · ✗ failed · – cannot tell (the number is not stored with that version). Read "
                   "from the metrics stored with each version: validation unless the rule says held-out test.")

if edit_tab is not None:
    with edit_tab, st.form(f"brief_form_{project.id}"):
        hypothesis = st.text_area("Hypothesis", value=current.hypothesis, max_chars=brief.MAX_TEXT,
                                  key="brief_hypothesis",
                                  help="Testable: a measurable claim that could turn out false.",
                                  placeholder="Reviewing the 300 least certain rows lifts balanced accuracy on "
                                              "validation above 0.80 without breaking the four-fifths rule.")
        st.markdown("**Stakeholders**")
        stakeholders = st.data_editor(
            brief.stakeholders_frame(current), num_rows="dynamic", hide_index=True, key="brief_stakeholders_edit",
            column_config={
                "name": st.column_config.TextColumn("name", required=True, max_chars=brief.MAX_NAME),
                "kind": st.column_config.SelectboxColumn("kind", options=list(brief.STAKEHOLDER_KINDS),
                                                         default="impacted", required=True,
                                                         help="; ".join(brief.STAKEHOLDER_KINDS.values())),
                "concerns": st.column_config.TextColumn("concerns", width="large"),
                "success": st.column_config.TextColumn("how they judge success", width="large")})
        st.markdown("**SMART goal**")
        goal = current.goal
        has_goal = st.checkbox("This project has a metric goal", value=goal is not None, key="brief_has_goal")
        columns = st.columns([3, 1, 2, 2, 2])
        goal_metric = columns[0].selectbox("Metric", metrics, format_func=brief.METRIC_TEXT.get, key="brief_metric",
                                           index=metrics.index(goal.metric) if goal else metrics.index(
                                               "balanced_accuracy"))
        goal_comparison = columns[1].selectbox("Comparison", list(brief.COMPARISONS), format_func=brief.COMPARISONS.get,
                                               index=list(brief.COMPARISONS).index(goal.comparison) if goal else 0,
                                               key="brief_comparison", label_visibility="hidden")
        goal_target = columns[2].number_input("Target", min_value=0.0, value=goal.target if goal else 0.8,
                                              step=0.01, format="%.3f", key="brief_target")
        goal_split = columns[3].selectbox("On", list(brief.SPLITS), format_func=brief.SPLITS.get, key="brief_split",
                                          index=list(brief.SPLITS).index(goal.split) if goal else 0)
        goal_deadline = columns[4].date_input("By", value=goal.deadline if goal else today + timedelta(days=90),
                                              key="brief_deadline", min_value=date(2000, 1, 1))
        optimised, human = st.columns(2)
        options = [NO_METRIC, *metrics]
        optimisation = optimised.selectbox(
            "Optimisation metric", options, format_func=lambda m: brief.METRIC_TEXT.get(m, m), key="brief_optimised",
            index=options.index(current.optimisation_metric) if current.optimisation_metric in options else 0,
            help="The number the model is tuned and compared on.")
        success = human.text_area("Human success measures", value=current.success_measures, key="brief_success",
                                  max_chars=brief.MAX_TEXT, help="What people will count as success, in their words.")
        st.markdown("**Premortem**")
        premortem = st.data_editor(
            brief.premortem_frame(current), num_rows="dynamic", hide_index=True, key="brief_premortem_edit",
            column_config={"failure": st.column_config.TextColumn("it failed because…", required=True,
                                                                  width="large"),
                           "mitigation": st.column_config.TextColumn("so now we…", width="large")})
        st.markdown("**Safety checks**")
        st.caption("Kinds: " + "; ".join(f"*{k}*: {md_escape(v)}" for k, v in brief.CHECK_KINDS.items()) +
                   ". A metric check uses metric, ≥/≤, value and split; four-fifths uses the attribute (and the "
                   "favourable outcome); recall uses class and value; majority baseline uses metric and split.")
        checks = st.data_editor(
            brief.checks_frame(current), num_rows="dynamic", hide_index=True, key="brief_checks_edit",
            column_config={
                "name": st.column_config.TextColumn("name", required=True, max_chars=brief.MAX_NAME),
                "kind": st.column_config.SelectboxColumn("kind", options=list(brief.CHECK_KINDS), required=True,
                                                         default="metric"),
                "metric": st.column_config.SelectboxColumn("metric", options=metrics),
                "comparison": st.column_config.SelectboxColumn("≥/≤", options=list(brief.COMPARISONS),
                                                               default=">="),
                "value": st.column_config.NumberColumn("value", min_value=0.0, format="%.3f"),
                "split": st.column_config.SelectboxColumn("split", options=list(brief.SPLITS), default="validation"),
                "attribute": st.column_config.SelectboxColumn("attribute", options=attributes,
                                                              help="Sensitive attribute (four-fifths rule)."),
                "class": st.column_config.SelectboxColumn("class", options=list(schema.classes))})
        saved_as = f"brief v{(history[-1].version if history else 0) + 1}"
        submitted = st.form_submit_button(f"Save as {saved_as}", type="primary", icon=":material/save:")
    if submitted:
        edited = Brief(
            hypothesis=hypothesis, stakeholders=brief.stakeholders_from_frame(stakeholders),
            goal=SmartGoal(goal_metric, float(goal_target), goal_deadline, goal_comparison, goal_split)
            if has_goal else None,
            optimisation_metric=None if optimisation == NO_METRIC else optimisation, success_measures=success,
            premortem=brief.premortem_from_frame(premortem), checks=brief.checks_from_frame(checks))
        try:
            number = actions.save_brief(store, project.id, state.user(), edited)
        except (actions.ActionError, users.PermissionDenied) as exc:
            edit_tab.error(md_escape(str(exc)), icon=":material/error:")
        else:
            notes = brief.flags(edited, today)
            st.session_state[FLASH] = f"Saved brief v{number}." + (
                f" Worth a second look: {md_escape(' '.join(notes))}" if notes else "")
            st.rerun()

with history_tab:
    if not history:
        st.caption("No saved brief yet.")
    else:
        st.dataframe(pd.DataFrame([{"version": h.version, "saved by": h.created_by, "saved at": h.created_at,
                                    "what changed": "; ".join(h.changes)} for h in reversed(history)]),
                     hide_index=True, key="brief_history", column_config={
                         "version": st.column_config.NumberColumn("version", format="v%d"),
                         "saved at": st.column_config.DatetimeColumn("saved at (UTC)", format="YYYY-MM-DD HH:mm",
                                                                     timezone="UTC"),
                         "what changed": st.column_config.TextColumn("what changed", width="large")})
