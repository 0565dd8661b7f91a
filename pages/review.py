"""Review page: every prediction with its confidence; accept or correct, one row or a selection at a time."""
import pandas as pd
import streamlit as st

from hitl_core import active, charts, loop
from hitl_core.models import MODEL_KINDS
from hitl_core.records import RETRAIN_POLICIES
from hitl_ui import explain_panel, state

state.through_frame(__file__)

st.title("Review predictions")
project = state.require_project()

store = state.store()
latest = store.latest_version(project.id)
n_decisions = store.count_decisions(project.id)
pool = state.pool(project.id, latest.version, n_decisions)
classes = project.schema.classes

if flash := st.session_state.pop("flash", None):
    st.success(flash, icon=":material/check_circle:")

pending = n_decisions - latest.n_decisions
head, action = st.columns([4, 1])
head.caption(
    f"Model **v{latest.version}** · {MODEL_KINDS[latest.model_kind]} · trained on {latest.n_train:,} labelled rows, "
    f"{latest.n_human_labels:,} of them decided by people · retrain: {RETRAIN_POLICIES[project.retrain_policy].lower()}"
    + (f" · **{pending} decision(s) not yet in the model**" if pending > 0 else "")
)
if action.button("Retrain now", icon=":material/refresh:", disabled=pending <= 0,
                 help="Train a new version on the current effective labels."):
    state.retrain_with_status(project, trigger="manual")
    st.session_state["flash"] = "Retrained on the latest decisions."
    st.rerun()


with st.expander("Model and retrain settings", icon=":material/tune:"):
    with st.form("loop_settings"):
        c1, c2, c3 = st.columns(3)
        kinds = list(MODEL_KINDS)
        model_kind = c1.selectbox("Model", kinds, index=kinds.index(project.model_kind), format_func=MODEL_KINDS.get)
        policies = list(RETRAIN_POLICIES)
        policy = c2.selectbox("Retrain", policies, index=policies.index(project.retrain_policy),
                              format_func=RETRAIN_POLICIES.get)
        every = c3.number_input("N (for 'every N')", min_value=1, max_value=1000, value=project.retrain_every)
        if st.form_submit_button("Save settings", icon=":material/save:"):
            project = store.update_project(project.id, model_kind=model_kind, retrain_policy=policy,
                                           retrain_every=int(every))
            if model_kind != latest.model_kind:
                state.retrain_with_status(project, trigger=f"model changed to {model_kind}")
            st.session_state["flash"] = "Settings saved."
            st.rerun()


def _save_threshold() -> None:
    store.update_project(project.id, threshold=float(st.session_state[f"threshold_{project.id}"]))


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

with st.expander("Confidence and triage: what the threshold costs and buys", icon=":material/tune:"):
    chart_left, chart_right = st.columns(2)
    chart_left.plotly_chart(charts.confidence_histogram(pool, threshold), width="stretch")
    human = chart_right.slider("Reviewer accuracy (assumed)", 0.5, 1.0, 0.95, 0.01, key="triage_human",
                               help="How often a person gets a routed row right; 1.0 = always.")
    curve = state.triage(project.id, latest.version, human)
    chart_right.plotly_chart(charts.triage_curve(curve, threshold=threshold), width="stretch")
    chart_right.caption("On validation: each threshold sends the rows below it to a person. The left end is the "
                        "model alone, the right end people alone.")

strategy_col, batch_col = st.columns([3, 1])
strategy = strategy_col.selectbox(
    "Ask next by", [s for s in active.STRATEGIES if s not in active.COMMITTEE], index=2,
    format_func=active.STRATEGIES.get, key="review_strategy",
    help="Which unlabeled rows the model asks about first. Query-by-committee runs on the Simulation page.")
batch_size = int(batch_col.number_input("Batch size", 1, 500, 20, key="review_batch"))
ranked, reason = state.ranked_pool(project.id, latest.version, n_decisions, strategy, batch_size)
pool = pool.join(ranked[["rank", "score", "in_batch", "reason"]].rename(columns={"reason": "why asked"}))
if reason:
    st.caption(f":material/psychology_alt: {reason}")

views = {
    "Ask next": pool.index[pool["in_batch"].fillna(False).astype(bool)],
    "Needs review": queue.index,
    "Disagreements": pool.index[pool["disagrees"]],
    "Unlabeled": pool.index[pool["label"].isna()],
    "Reviewed": pool.index[pool["reviewed"]],
    "All": pool.index,
}
f1, f2, f3, f4 = st.columns([2, 2, 2, 1.5])
view_name = f1.radio("Show", list(views), index=0 if len(views["Ask next"]) else 1, key="review_view",
                     format_func=lambda v: f"{v} ({len(views[v]):,})")
predicted = f2.multiselect("Predicted class", classes, default=list(classes), key="review_classes")
low, high = f3.slider("Confidence between", 0.0, 1.0, (0.0, 1.0), step=0.01, key="review_conf")
order = f4.selectbox("Sort", ["Strategy rank", "Least confident first", "Most confident first", "Row ID"],
                     key="review_sort")

view = pool.loc[views[view_name]]
view = view[view["predicted"].isin(predicted) & view["confidence"].between(low, high)]
if order == "Strategy rank":
    view = view.sort_values(["rank", "confidence"], na_position="last", kind="stable")
elif order == "Row ID":
    view = view.sort_index()
else:
    view = view.sort_values("confidence", ascending=order == "Least confident first", kind="stable")

if view.empty and view_name == "Ask next" and not len(views["Ask next"]):
    st.info("Every row of the pool has a label, so the model has nothing to ask. Choose *Needs review* or "
            "*Disagreements* to audit the given labels.", icon=":material/task_alt:")
    st.stop()
if view.empty:
    st.info("No rows match these filters. Widen the confidence range, pick more classes or choose another view "
            "(for example *All*).", icon=":material/filter_alt_off:")
    st.stop()

st.session_state["review_keys"] = list(view.index)


def _follow_table_selection() -> None:
    """Clicking a row in the table opens it in the decision panel."""
    rows = st.session_state["pool_table"].selection.rows
    if rows:
        st.session_state["review_row"] = st.session_state["review_keys"][rows[-1]]


probability_columns = [f"p({c})" for c in classes]
shown = ["label", "predicted", "confidence", *probability_columns, "rank", "why asked", "disagrees", "reviewed",
         *project.schema.features]
selection = st.dataframe(
    view[shown].assign(label=view["label"].fillna("unlabeled")), key="pool_table", on_select=_follow_table_selection, selection_mode="multi-row", height=360,
    column_config={
        "label": st.column_config.TextColumn("label", help="Effective label: a person's latest decision, "
                                                           "else the given label; empty = unlabeled."),
        "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.2f"),
        **{c: st.column_config.NumberColumn(c, format="%.2f") for c in probability_columns},
    },
)
selected_keys = [view.index[i] for i in selection.selection.rows if i < len(view)]


def _save(decisions: list, message: str) -> None:
    """Write decisions (committed before we say so), retrain if the policy asks, move on."""
    store.add_decisions(project.id, decisions)
    st.toast(f"Saved {len(decisions)} decision(s) to the database.", icon=":material/save:")
    if loop.retrain_due(project, store.count_decisions(project.id), latest):
        state.retrain_with_status(project, trigger="correction")
    st.session_state["flash"] = message
    st.rerun()


batch = st.columns([2, 5])
if batch[0].button(f"Accept {len(selected_keys)} selected prediction(s)", disabled=not selected_keys,
                   icon=":material/done_all:", help="Tick rows in the table, then accept their predictions at once."):
    _save(loop.decisions_for(view.loc[selected_keys], new_labels=None, user=state.user(),
                             model_version=latest.version),
          f"Accepted {len(selected_keys)} predictions.")
batch[1].caption("Tick rows in the table to select them; the last row you tick opens below.")

st.divider()
keys = list(view.index[:1000])
if "review_next" in st.session_state:  # set after a save: open the next row of the queue
    st.session_state["review_row"] = st.session_state.pop("review_next")
if st.session_state.get("review_row") not in keys:
    st.session_state["review_row"] = keys[0]
key = st.selectbox("Row to decide on", keys, key="review_row",
                   help="The first 1,000 rows of the current view, in its order.")
row = view.loc[key]

left, right = st.columns([3, 2])
with left:
    st.markdown(f"**Row {key}** · predicted **{row['predicted']}** with confidence **{row['confidence']:.0%}**")
    given = "unlabeled" if pd.isna(row["given"]) else row["given"]
    current = "unlabeled" if pd.isna(row["label"]) else row["label"]
    st.caption(f"Given label: {given} · current label: {current}"
               + (" · already reviewed by a person" if row["reviewed"] else ""))
    features = project.schema.features
    st.dataframe(pd.DataFrame({"feature": features, "value": [str(row[f]) for f in features]}), hide_index=True,
                 height=min(400, 36 * (len(features) + 1)))
with right:
    st.plotly_chart(charts.class_probabilities(row, classes), width="stretch")
    with st.form(f"decide_{key}"):
        label = st.radio("Correct label", classes, index=classes.index(row["predicted"]), horizontal=True)
        note = st.text_input("Note (optional)", placeholder="Why? Visible in the audit trail.")
        accept, correct = st.columns(2)
        accepted = accept.form_submit_button("Accept prediction", icon=":material/check:")
        corrected = correct.form_submit_button("Save label", type="primary", icon=":material/edit:")

if accepted or corrected:
    new_label = row["predicted"] if accepted else label
    decisions = loop.decisions_for(view.loc[[key]], new_labels=pd.Series({key: new_label}), user=state.user(),
                                   model_version=latest.version, note=note)
    position = keys.index(key)
    if position + 1 < len(keys):
        st.session_state["review_next"] = keys[position + 1]
    verb = "Accepted" if decisions[0].action == "accept" else "Overrode"
    _save(decisions, f"{verb} row {key}: {row['predicted']} → {new_label}.")

st.subheader("Why this prediction?")
explain_panel.explanation(project, latest, key, row["predicted"])
with st.expander("What if? Edit this row's values and compare", icon=":material/science:"):
    explain_panel.what_if(project, latest, key)
