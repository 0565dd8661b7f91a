"""Versions page: every model version, two of them side by side, and a rollback or promotion with who and why.

The comparison is :mod:`hitl_core.compare` on stored versions; the change goes through
:func:`hitl_core.actions.set_current_version` (one transaction: the project's current version and
an event with the actor and the reason). Every page asks the store for the current version on each
run and caches by version number, so after the rerun they all show the version made current.
"""
import streamlit as st

from hitl_core import actions, brief, compare, costs, loop
from hitl_core.models import MODEL_KINDS
from hitl_ui import costs_panel, retrain_line, state
from hitl_ui.text import md_escape

state.through_frame(__file__)

FLASH = "versions_flash"
MAX_ROWS_SHOWN = 2000


@st.cache_data(show_spinner="Comparing the two versions' predictions…", max_entries=16)
def changed_rows(project_id: int, version_a: int, version_b: int, part: str,
                 last_decision_id: int) -> compare.PredictionChanges:
    """Rows one split's predictions differ on, beside the effective labels up to ``last_decision_id``."""
    project = state.store().project(project_id)
    data = state.dataset(project_id, project.dataset_hash)
    labels = loop.effective_labels(data.labels, state.store().decisions(project_id, up_to=last_decision_id))
    return compare.changed_predictions(state.model(project_id, version_a), state.model(project_id, version_b), data,
                                       project.schema.classes, part, labels=labels, threads=state.settings().threads)


st.title("Versions")
project = state.require_project()
store = state.store()
current = state.current_version(project)
versions = store.model_versions(project.id)
by_number = {v.version: v for v in versions}

if done := st.session_state.pop(FLASH, None):
    st.success(md_escape(done), icon=":material/check_circle:")
st.caption(f"Project {md_escape(project.name)} · current model **v{current.version}** · "
           f"{MODEL_KINDS.get(current.model_kind, current.model_kind)} · {len(versions):,} version(s). Compare two "
           "versions, then roll back to an earlier one or promote a superseded one: it becomes the model every "
           "page, export and the CLI use, and the audit trail records who did it and why.")
retrain_line.retrain_status(project, current.version)

table = compare.version_table(versions, store.events(project.id))
project_brief = brief.current_brief(store, project.id)
if project_brief is not None and project_brief.checks:  # the brief's safety checks, judged on every version
    table.insert(2, "safety checks", [brief.summary(brief.evaluate_checks(project_brief, by_number[n], project.schema))
                                      for n in table["version"]])
st.dataframe(
    table, hide_index=True, key="versions_table",
    column_config={
        "version": st.column_config.NumberColumn("version", format="v%d"),
        "safety checks": st.column_config.TextColumn("safety checks", help="The brief's safety checks on this "
                                                     "version (details on the Brief page): ✓ passed, ✗ failed."),
        "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss", timezone="UTC"),
        "accuracy": st.column_config.NumberColumn("accuracy", format="%.3f", help="Validation split."),
        "balanced_accuracy": st.column_config.NumberColumn("balanced accuracy", format="%.3f"),
        "f1_macro": st.column_config.NumberColumn("F1 (macro)", format="%.3f"),
        "decisions": st.column_config.NumberColumn("decisions", help="Human decisions the training labels include."),
        "why": st.column_config.TextColumn("why", width="large",
                                           help="Why a version was superseded, or who made it current and why."),
    })
st.caption("Status: **current** = the model in use; **older** = was current once, since replaced; **superseded** = "
           "trained on labels older than the current version's, so it never became current (it can be promoted).")
withdrawn = set(store.withdrawn_versions(project.id))
if withdrawn:
    st.info(f"{', '.join(f'v{n}' for n in sorted(withdrawn))}: model file dropped when people's rows were withdrawn "
            "(a fitted model can hold their values). Their metrics stay listed above; they cannot be compared, "
            "rolled back to or restored.", icon=":material/person_remove:")
usable = [v for v in versions if v.version not in withdrawn]

pair = compare.default_pair(usable, current.version)
if pair is None:
    st.info("Only one model version so far: there is nothing to compare or roll back to yet. Correct or accept "
            "predictions on the Review page; each retrain adds a version here.", icon=":material/history_toggle_off:")
    st.page_link("pages/review.py", label="Go to Review", icon=":material/rate_review:")
    st.stop()

numbers = [v.version for v in reversed(usable)]
pick_keys = (f"versions_a_{project.id}", f"versions_b_{project.id}")


def _label(number: int) -> str:
    return f"v{number} · {by_number[number].status}"


left, right = st.columns(2)
number_a = left.selectbox("Compare", numbers, index=numbers.index(pair[0]), format_func=_label, key=pick_keys[0],
                          help="The reference, by default the current version.")
number_b = right.selectbox("with", numbers, index=numbers.index(pair[1]), format_func=_label, key=pick_keys[1],
                           help="The candidate, by default the previous version: every change below is this one "
                                "minus the reference, and the form at the bottom makes it current.")
a, b = by_number[number_a], by_number[number_b]
name_a, name_b = compare.version_name(a), compare.version_name(b)

if a.version == b.version:
    st.info("Pick two different versions to compare.", icon=":material/compare_arrows:")
else:
    st.subheader("Metrics")
    table = compare.metrics_table(a, b)
    number = st.column_config.NumberColumn(format="%.3f")
    metric_columns = {"name": "metric", name_a: number, name_b: number,
                      "change": st.column_config.NumberColumn(f"change ({name_b} − {name_a})", format="%+.3f"),
                      "better": "better", "majority baseline": st.column_config.NumberColumn(
                          f"majority baseline ({name_b})", format="%.3f", help="The number to beat.")}
    validation_tab, test_tab = st.tabs(["Validation", "Held-out test"])
    with validation_tab:
        chart, numbers_table = st.columns([3, 2])
        chart.plotly_chart(compare.metrics_figure(a, b, "validation"), width="stretch")
        numbers_table.dataframe(table.loc[table["split"] == "validation", list(metric_columns)], hide_index=True,
                                column_config=metric_columns, key="versions_metrics_validation")
    with test_tab:
        st.dataframe(table.loc[table["split"] == "test", list(metric_columns)], hide_index=True,
                     column_config=metric_columns, key="versions_metrics_test")
        st.caption("Split off before anything was trained; never pick a version by this table, or it stops being "
                   "an honest estimate.")
    st.caption("Log loss and Brier score (↓): lower is better; the *better* column takes that into account.")

    st.subheader("Fairness")
    fairness = compare.fairness_table(a, b, schema=project.schema)
    if fairness.empty:
        st.info("No fairness summaries stored with these versions: mark sensitive columns when creating the project "
                "on the Data page, and each version stores its disparities on the validation split.",
                icon=":material/balance:")
    else:
        st.dataframe(fairness.drop(columns="disparity"), hide_index=True, key="versions_fairness", column_config={
            "name": "disparity", name_a: number, name_b: number,
            "change": st.column_config.NumberColumn(f"change ({name_b} − {name_a})", format="%+.3f"),
        })
        st.caption("Stored with each version (validation split). Differences: lower is fairer; ratios: higher is "
                   "fairer (the four-fifths rule wants the demographic parity ratio ≥ 0.8). A blank: too few groups "
                   "large enough to judge. Groups per version are on the Fairness page.")

    st.subheader("Costs")
    cost_model = costs.project_costs(project)
    if cost_model is None:
        st.info("No costs set for this project, so the versions cannot be compared in money. A lead sets what each "
                "kind of error and one review cost on the Metrics page.", icon=":material/payments:")
        st.page_link("pages/metrics.py", label="Set costs on Metrics", icon=":material/payments:")
    else:
        cost_table = compare.costs_table(
            a, b, cost_model, seed=project.seed,
            **{f"majority_{side}": costs_panel.majority_class(project.id, v.last_decision_id, project.dataset_hash)
               for side, v in (("a", a), ("b", b))})
        money = st.column_config.NumberColumn(format="%.2f")
        st.dataframe(cost_table, hide_index=True, key="versions_costs", column_config={
            name_a: money, name_b: money,
            "change": st.column_config.NumberColumn(f"change ({name_b} − {name_a})", format="%+.2f"),
            f"{name_a} interval": st.column_config.TextColumn(f"{name_a} 95 % interval"),
            f"{name_b} interval": st.column_config.TextColumn(f"{name_b} 95 % interval"),
        })
        st.markdown(md_escape(cost_table.attrs["sentence"]))
        st.caption(f"In {md_escape(cost_model.unit)}, on the validation split, from each version's confusion matrix "
                   "priced by the project's costs (set on the Metrics page); intervals: seeded bootstrap.")

    st.subheader("Predictions that change")
    part = st.segmented_control("Rows", list(compare.PARTS), format_func=compare.PARTS.get, default="train",
                                key=f"versions_part_{project.id}") or "train"
    changes = changed_rows(project.id, a.version, b.version, part, store.last_decision_id(project.id))
    counts = st.columns(4)
    counts[0].metric("Rows whose prediction changes", f"{changes.n_changed:,}",
                     help=f"Of {changes.n_rows:,} rows in the {compare.PARTS[part]}.")
    counts[1].metric("Share of the rows", f"{changes.share:.1%}")
    if changes.n_fixed is not None:
        counts[2].metric(f"Now right ({name_b})", f"{changes.n_fixed:,}",
                         help=f"Changed rows whose label {name_b} predicts and {name_a} did not.")
        counts[3].metric(f"Now wrong ({name_b})", f"{changes.n_broken:,}",
                         help=f"Changed rows whose label {name_a} predicted and {name_b} does not.")
    if changes.n_changed == 0:
        st.info(f"{name_a} and {name_b} predict the same class for every row of the {compare.PARTS[part]}.",
                icon=":material/check:")
    else:
        shown = changes.rows.head(MAX_ROWS_SHOWN)
        data = state.dataset(project.id, project.dataset_hash)
        shown = shown.join(data.frame.loc[shown.index, list(project.schema.features)])
        st.dataframe(
            shown.rename_axis("row"), key="versions_changed_rows", column_config={
                "predicted_a": f"{name_a} predicted",
                "confidence_a": st.column_config.ProgressColumn(f"{name_a} confidence", min_value=0.0, max_value=1.0,
                                                                format="%.2f"),
                "predicted_b": f"{name_b} predicted",
                "confidence_b": st.column_config.ProgressColumn(f"{name_b} confidence", min_value=0.0, max_value=1.0,
                                                                format="%.2f"),
                "label": st.column_config.TextColumn("label", help="Effective label now: the latest human decision, "
                                                                   "else the given label; blank = unlabeled."),
            })
        if changes.n_changed > MAX_ROWS_SHOWN:
            st.caption(f"Showing the first {MAX_ROWS_SHOWN:,} of {changes.n_changed:,} changed rows.")

st.subheader("Roll back or promote")
if b.version == current.version:
    st.caption(f"{name_b} is the current version: pick another version under *with* to make it current.")
else:
    action = (f"Promote {name_b}" if b.status == "superseded" else f"Roll back to {name_b}"
              if b.version < current.version else f"Make {name_b} current again")
    with st.form(f"versions_change_{project.id}"):
        st.markdown(f"**{action}** (now v{current.version}): {name_b} becomes the model every page, export "
                    f"and the CLI use, its predictions exactly as stored. A later retrain on newer decisions becomes "
                    f"current again by the usual rule. Recorded as {md_escape(state.user())}.")
        reason = st.text_area("Why (required: the audit trail shows it)", key=f"versions_reason_{project.id}",
                              max_chars=actions.MAX_NOTE,
                              placeholder="e.g. v3 dropped recall on group_b; back to v2 until the labels are checked")
        submitted = st.form_submit_button(action, type="primary", icon=":material/history_toggle_off:")
    if submitted:
        try:
            changed = actions.set_current_version(store, project.id, state.user(), version=b.version, reason=reason)
        except actions.ActionError as exc:
            st.error(md_escape(str(exc)), icon=":material/error:")
        else:
            st.session_state[FLASH] = (f"{compare.version_name(changed)} is now the current version (was "
                                       f"v{current.version}). Why: {reason.strip()}")
            for key in (*pick_keys, f"versions_reason_{project.id}"):
                st.session_state.pop(key, None)  # back to current vs previous, with an empty reason
            st.rerun(scope="app")
