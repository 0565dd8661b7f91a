"""Review page: every prediction with its confidence; accept or correct, one row or a selection at a time.

Writes go only through hitl_core.actions (with the label the person saw, so a concurrent change is a
conflict, not an overwrite); retrains run in a worker, and the page picks up a new version by itself.
"""
import pandas as pd
import streamlit as st

from hitl_core import actions, active, charts, complaints, consensus, users
from hitl_core.models import MODEL_KINDS
from hitl_core.records import RETRAIN_POLICIES
from hitl_ui import review_panel as panel
from hitl_ui import retrain_line, state

state.through_frame(__file__)

st.title("Review predictions")
project = state.require_project()
panel.consume_rerun_request()

store = state.store()
schema = project.schema
classes = schema.classes
version = state.current_version(project)
last_decision = store.last_decision_id(project.id)
pool = state.pool(project.id, version.version, last_decision)
extra = panel.visible_extra_columns(schema, state.pii_role())  # PII only for a signed-in admin
if extra:
    data = state.dataset(project.id, project.dataset_hash)
    pool = pool.join(data.frame.loc[pool.index, extra])

panel.show_flash("top")
st.caption(
    f"Model **v{version.version}** · {MODEL_KINDS[version.model_kind]} · trained on {version.n_train:,} labelled "
    f"rows, {version.n_human_labels:,} of them decided by people · retrain: "
    f"{RETRAIN_POLICIES[project.retrain_policy].lower()}"
    + (f" (N = {project.retrain_every})" if project.retrain_policy == "every_n" else "")
)
retrain_line.retrain_status(project, version.version)

can_settle = users.can(state.role(), "change settings")
with st.expander("Model, retrain and team settings" if can_settle else "Settings (a lead changes them)",
                 icon=":material/tune:"):
    with st.form("loop_settings"):
        c1, c2, c3 = st.columns(3)
        kinds = list(MODEL_KINDS)
        model_kind = c1.selectbox("Model", kinds, index=kinds.index(project.model_kind), format_func=MODEL_KINDS.get)
        policies = list(RETRAIN_POLICIES)
        policy = c2.selectbox("Retrain", policies, index=policies.index(project.retrain_policy),
                              format_func=RETRAIN_POLICIES.get)
        every = c3.number_input("N (for 'every N')", min_value=1, max_value=1000, value=project.retrain_every)
        t1, t2 = st.columns(2)
        overlap = t1.number_input("People per row (overlap)", min_value=1, max_value=actions.MAX_OVERLAP,
                                  value=project.overlap,
                                  help="Above 1, each person's label is kept as a vote, the majority trains the "
                                       "model, and ties or low agreement go to the lead.")
        blind = t2.toggle("Blind review", value=project.blind,
                          help="Hide the model's prediction, confidence and explanation from reviewers, so their "
                               "labels measure their own accuracy and are not anchored on the model.")
        if st.form_submit_button("Save settings", icon=":material/save:", disabled=not can_settle):
            try:
                changed = actions.change_settings(store, project.id, state.user(), model_kind=model_kind,
                                                  retrain_policy=policy, retrain_every=int(every),
                                                  overlap=int(overlap), blind=bool(blind))
            except (actions.ActionError, users.PermissionDenied) as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                retrain = (f" A retrain with {MODEL_KINDS[model_kind]} is queued."
                           if changed.model_kind != project.model_kind else "")
                panel.flash("top", "success", "Settings saved." + retrain)
                st.rerun()


if users.can(state.role(), "set guidelines"):
    with st.expander("Labelling guidelines and override reasons", icon=":material/menu_book:"):
        with st.form("guidelines"):
            text = st.text_area("Guidelines (Markdown; shown beside every row)", value=project.guidelines,
                                height=200, max_chars=actions.MAX_GUIDELINES)
            reasons = st.text_area("Override reasons, one per line (an override must pick one; empty: none asked)",
                                   value="\n".join(project.reasons))
            if st.form_submit_button("Save guidelines", icon=":material/save:"):
                try:
                    actions.set_guidelines(store, project.id, state.user(), guidelines=text,
                                           reasons=reasons.splitlines())
                except (actions.ActionError, users.PermissionDenied) as exc:
                    st.error(str(exc), icon=":material/error:")
                else:
                    panel.flash("top", "success", "Guidelines saved; reviewers see them beside every row.")
                    st.rerun()


def _save_threshold() -> None:
    """The threshold is a project setting: stored through the write path, with an event."""
    try:
        actions.change_settings(store, project.id, state.user(),
                                threshold=float(st.session_state[f"threshold_{project.id}"]))
    except actions.ActionError as exc:
        panel.flash("top", "error", f"Threshold not saved: {exc}")


threshold = st.slider(
    "Confidence threshold: predictions below it go to the *needs review* queue", 0.0, 1.0,
    value=float(project.threshold), step=0.01, key=f"threshold_{project.id}", on_change=_save_threshold)
queue = pool[(pool["confidence"] < threshold) & ~pool["reviewed"]]

counts = st.columns(5)
counts[0].metric("Pool rows", f"{len(pool):,}")
counts[1].metric("Needs review", f"{len(queue):,}", help="Below the threshold and not yet decided by a person.")
counts[2].metric("Disagree with label", f"{int(pool['disagrees'].sum()):,}")
counts[3].metric("Unlabeled", f"{int(pool['label'].isna().sum()):,}")
counts[4].metric("Reviewed by people", f"{int(pool['reviewed'].sum()):,}")

# a toggle, not an expander: a collapsed expander still builds its figures on every rerun (~0.1 s at 100k rows)
if st.toggle("Show confidence and triage: what the threshold costs and buys", key="review_triage"):
    chart_left, chart_right = st.columns(2)
    chart_left.plotly_chart(charts.confidence_histogram(pool, threshold), width="stretch")
    human = chart_right.slider("Reviewer accuracy (assumed)", 0.5, 1.0, 0.95, 0.01, key="triage_human",
                               help="How often a person gets a routed row right; 1.0 = always.")
    curve = state.triage(project.id, version.version, human)
    chart_right.plotly_chart(charts.triage_curve(curve, threshold=threshold), width="stretch")
    chart_right.caption("On validation: each threshold sends the rows below it to a person. The left end is the "
                        "model alone, the right end people alone. What each threshold costs, and the cheapest, "
                        "is on the Metrics page once the project's costs are set.")

strategy_col, batch_col = st.columns([3, 1])
strategy = strategy_col.selectbox(
    "Ask next by", [s for s in active.STRATEGIES if s not in active.COMMITTEE], index=2,
    format_func=active.STRATEGIES.get, key="review_strategy", on_change=panel.view_changed,
    help="Which unlabeled rows the model asks about first. Query-by-committee runs on the Simulation page.")
batch_size = int(batch_col.number_input("Batch size", 1, 500, 20, key="review_batch", on_change=panel.view_changed))
ranked, reason = state.ranked_pool(project.id, version.version, last_decision, strategy, batch_size)
ranked = state.mix_gold(project, ranked, last_decision)  # known answers, unmarked (Team page)
complained = complaints.open_rows(store.complaints(project.id))
ranked = complaints.prioritise(ranked, complained)  # rows under complaint first, ahead of the strategy
pool = pool.join(ranked[["rank", "score", "in_batch", "reason"]].rename(columns={"reason": "why asked"}))
pool["rank"] = pool["rank"].astype("Int64")
if reason:
    st.caption(f":material/psychology_alt: {reason}")

asked = pool.loc[pool["in_batch"].fillna(False).astype(bool)].sort_values("rank").index
if users.can(state.role(), "label"):
    # hand out rows from the head of the queue, so two people are not given the same row beyond the overlap:
    # a third reviewer gets the rows after the batch the first two hold
    in_batch = pool["in_batch"].fillna(False).astype(bool)  # the strategy's batch, gold rows and complaints
    queued = asked.append(pool[pool["score"].notna() & ~in_batch].sort_values("score", ascending=False)
                          .index[:batch_size * 4])
    leased = set(actions.lease_rows(store, project.id, state.user(), [str(k) for k in queued], n=batch_size))
    asked = queued[[str(k) in leased for k in queued]]
views = {
    "Ask next": asked,
    "Needs review": queue.index,
    "Disagreements": pool.index[pool["disagrees"]],
    "Unlabeled": pool.index[pool["label"].isna()],
    "Reviewed": pool.index[pool["reviewed"]],
    "Complaints": pool.index[pool.index.isin(complained)],
    **({"To adjudicate": consensus.disputed(state.row_consensus(project.id, last_decision)).index}
       if project.overlap > 1 else {}),
    "All": pool.index,
}
f1, f2, f3, f4 = st.columns([2, 2, 2, 1.5])
# the option texts stay fixed (counts go in the captions): Streamlit matches a radio's value by its text,
# so a count in the text would reset the view after every save
view_name = f1.radio("Show", list(views), index=0 if len(views["Ask next"]) else 1, key="review_view",
                     captions=[f"{len(v):,} rows" for v in views.values()], on_change=panel.view_changed)
predicted = f2.multiselect("Predicted class", classes, default=list(classes), key="review_classes",
                           on_change=panel.view_changed)
low, high = f3.slider("Confidence between", 0.0, 1.0, (0.0, 1.0), step=0.01, key="review_conf",
                      on_change=panel.view_changed)
order = f4.selectbox("Sort", ["Strategy rank", "Least confident first", "Most confident first", "Row ID"],
                     key="review_sort")

view = pool.loc[views[view_name]]
view = view[view["predicted"].isin(predicted) & view["confidence"].between(low, high)]
if order == "Strategy rank":
    view = view.sort_values(["rank", "score"], ascending=[True, False], na_position="last", kind="stable")
elif order == "Row ID":
    view = view.sort_index()
else:
    view = view.sort_values("confidence", ascending=order == "Least confident first", kind="stable")

keys = [str(k) for k in view.index]
open_key = panel.resolve_open_row(project.id, pool.index, keys)
if view.empty:
    if view_name == "Ask next" and not len(views["Ask next"]):
        st.info("Every row of the pool has a label, so the model has nothing to ask. Choose *Needs review* or "
                "*Disagreements* to audit the given labels.", icon=":material/task_alt:")
    elif view_name == "Complaints" and not complained:
        st.info("No open complaints. Anyone can flag a decision in the row panel below (*Complain about this "
                "decision*); a flagged row then comes first under *Ask next*.", icon=":material/flag:")
    else:
        st.info("No rows match these filters. Widen the confidence range, pick more classes or choose another "
                "view (for example *All*).", icon=":material/filter_alt_off:")
    if open_key is None:
        panel.show_flash("table")
        panel.show_flash("panel")  # e.g. the save that emptied this view
        st.stop()
else:
    probability_columns = [f"p({c})" for c in classes]
    shown = ["label", "predicted", "confidence", *probability_columns, "rank", "why asked", "disagrees",
             "reviewed", *extra, *schema.features]
    if project.blind:  # the model's answer (and, with several people per row, their majority) stays hidden
        hidden = {"predicted", "confidence", *probability_columns, "disagrees",
                  *(["label"] if project.overlap > 1 else [])}
        shown = [c for c in shown if c not in hidden]
    display = view[shown].assign(**({"label": view["label"].fillna("unlabeled")} if "label" in shown else {}))
    display.index = display.index.rename(panel.index_name(schema))
    numeric = [c for c in [*extra, *schema.features] if pd.api.types.is_numeric_dtype(display[c])
               and not pd.api.types.is_bool_dtype(display[c])]
    ticked = panel.pool_table(
        project.id, display, view[["label", "predicted", "confidence"]], version.version,
        height=360 if len(display) > 9 else "auto", placeholder=panel.DASH,
        column_config={
            "label": st.column_config.TextColumn("label", help="Effective label: a person's latest decision, "
                                                               "else the given label."),
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0,
                                                          format="%.2f"),
            **{c: st.column_config.NumberColumn(c, format="%.2f") for c in probability_columns},
            "rank": st.column_config.NumberColumn("rank", format="%d", help="Place in the strategy's next batch; "
                                                                             "— = not in it (sorted by score)."),
            **{c: st.column_config.NumberColumn(c, format="localized") for c in numeric},
            **{c: st.column_config.Column(c, help="Personal data: shown to admins only, never used by the model."
                                          if c in schema.pii else
                                          "Sensitive attribute: shown to you, not used by the model.")
               for c in extra},
        },
    )
    batch = st.columns([2, 5], vertical_alignment="center")
    batch[0].button(f"Accept {len(ticked)} selected prediction(s)", key="review_accept_selected",
                    disabled=ticked.empty or project.blind or not users.can(state.role(), "label"),
                    icon=":material/done_all:", on_click=panel.accept_selected,
                    args=(project.id,), help="Tick rows in the table, then accept their predictions at once.")
    batch[1].caption("Tick rows to select them; the row you tick last opens below. Ticks clear after each save "
                     "and whenever the table changes.")
    panel.show_flash("table")

st.divider()
panel.decision_panel(project, version, pool, keys, view_name)
