"""The parts of the Review page that change with each decision: the labelling panel, the table's ticks and
the retrain line.

Everything here follows row *keys*, never positions: the open row is a key kept in the session, ticks are
read only against the exact table that was displayed (its widget key carries a digest of the row order),
and every save goes through :mod:`hitl_core.actions` carrying the label the person saw.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
from collections.abc import Collection, Sequence
from datetime import datetime

import pandas as pd
import streamlit as st

from hitl_core import actions, charts, complaints, consensus, loop, users
from hitl_core.data import Schema
from hitl_core.records import DecisionRequest, ModelVersion, Project
from hitl_ui import explain_panel, state
from hitl_ui.text import md_escape

OPEN = "review_open"              # project id → the row key in the decision panel, whatever the table shows
ROW_PICKER = "review_row"         # prefix of the "Row to decide on" selectbox's key (one per open row)
SAVES = "review_saves"            # grows with each save: the table gets a new widget key, so ticks clear
SELECTED = "review_selected"      # {"widget", "rows", "version"}: ticked rows as displayed (label seen)
CONFLICTS = "review_conflicts"    # (project id, row key) → (request, conflict) until "apply mine" / "keep theirs"
FLASH = "review_flash"            # [(where, kind, text)] shown once, where the person acted
RERUN_APP = "review_rerun_app"    # a save inside the panel fragment: counts and table must redraw too
VIEW_CHANGED = "review_view_changed"
MAX_PICKER_ROWS = 1000
SHORTCUTS = {"accept": "a", "save": "s", "next": "n"}
DASH = "—"
PII_MASK = "•••"


# --------------------------------------------------------------------------- pure helpers
def human_value(value: object) -> str:
    """A cell as a person reads it: 45,800 not 45800.0, 0.363, "—" for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return f"{int(number):,}"
        if abs(number) >= 100:
            return f"{number:,.1f}"
        return f"{number:.3g}"
    return str(value)


def label_text(label: object) -> str:
    return "unlabeled" if label is None or (not isinstance(label, str) and pd.isna(label)) else str(label)


def next_key(keys: Sequence[str], current: str | None, *, skip: Collection[str] = ()) -> str | None:
    """The row after ``current`` in the view's order (the first row when ``current`` is not in the view)."""
    start = keys.index(current) + 1 if current in keys else 0
    return next((k for k in keys[start:] if k not in skip and k != current), None)


def table_widget_key(project_id: int, keys: pd.Index, saves: int, version: int) -> str:
    """A widget key that changes whenever the displayed rows, their order, the model or the saves change.

    Streamlit keeps a table's ticks as *positions*; a new key for every different table means a tick can
    only ever be read against the rows it was made on.
    """
    digest = hashlib.sha1(pd.util.hash_pandas_object(pd.Series(keys.astype(str)), index=False)
                          .to_numpy().tobytes()).hexdigest()[:16]
    return f"review_table_{project_id}_{version}_{saves}_{digest}"


def visible_extra_columns(schema: Schema, role: str | None = None) -> list[str]:
    """Columns the reviewer sees beside the features: sensitive attributes, and personal data (PII) for an
    admin only; everyone else never receives a PII value."""
    shown = [c for c in schema.sensitive if c not in schema.pii and c not in schema.features]
    return shown + ([c for c in schema.pii if c not in schema.features] if role == "admin" else [])


def index_name(schema: Schema) -> str:
    """The row key's header: the ID column's name when the dataset has one that is not PII."""
    return schema.id_column if schema.id_column and schema.id_column not in schema.pii else "row"


def history_frame(history: pd.DataFrame) -> pd.DataFrame:
    """A row's decisions, newest first, as plain text: when, who, old → new, what, model, note."""
    if history.empty:
        return pd.DataFrame(columns=["when", "who", "change", "action", "reason", "model", "note"])
    rows = history.sort_values("id", ascending=False)
    return pd.DataFrame({
        "when": [_when(t) for t in rows["created_at"]],
        "who": rows["user"].astype(str).to_numpy(),
        "change": [f"{label_text(o)} → {label_text(n)}" for o, n in zip(rows["old_label"], rows["new_label"])],
        "action": [a if k == "decision" else f"{k} ({a})" for a, k in
                   zip(rows["action"].astype(str), rows.get("kind", pd.Series("decision", index=rows.index)))],
        "reason": rows.get("reason", pd.Series(None, index=rows.index)).fillna("").astype(str).to_numpy(),
        "model": [DASH if pd.isna(v) else f"v{int(v)}" for v in rows["model_version"]],
        "note": rows["note"].fillna("").astype(str).to_numpy(),
    })


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return DASH if value is None or pd.isna(value) else str(value)


def row_values(row: pd.Series, schema: Schema, key: str, role: str | None = None) -> pd.DataFrame:
    """The open row's columns as text with their role: ID, sensitive attributes and features; PII values for
    an admin, masked for everyone else."""
    entries = []
    if schema.id_column and schema.id_column not in schema.pii:
        entries.append((schema.id_column, key, "ID"))
    for column in visible_extra_columns(schema, role):
        kind = "personal data (admin view)" if column in schema.pii else "sensitive, not a feature"
        entries.append((column, human_value(row.get(column)), kind))
    if role != "admin":
        entries += [(column, PII_MASK, "personal data, masked") for column in schema.pii]
    for column in schema.features:
        role = "sensitive + feature" if column in schema.sensitive else "feature"
        entries.append((column, human_value(row.get(column)), role))
    return pd.DataFrame(entries, columns=["column", "value", "role"])


def open_row(project_id: int) -> str | None:
    """The row key open in the project's decision panel (kept per project: keys repeat across datasets)."""
    return st.session_state.get(OPEN, {}).get(project_id)


def set_open_row(project_id: int, row_key: str | None) -> None:
    st.session_state.setdefault(OPEN, {})[project_id] = row_key


# --------------------------------------------------------------------------- messages
def flash(where: str, kind: str, text: str) -> None:
    st.session_state.setdefault(FLASH, []).append((where, kind, text))


def show_flash(where: str) -> None:
    """Say once, where the person acted, what the last action did (text escaped: it holds names and keys)."""
    waiting = st.session_state.get(FLASH, [])
    for item in [m for m in waiting if m[0] == where]:
        waiting.remove(item)
        _, kind, text = item
        icon = {"success": ":material/check_circle:", "error": ":material/error:", "info": ":material/info:"}[kind]
        getattr(st, kind)(md_escape(text), icon=icon)


# --------------------------------------------------------------------------- the write path
def submit(project_id: int, requests: list[DecisionRequest], *, where: str, advance: str | None = None,
           opened: str | None = None) -> None:
    """Record decisions through :mod:`hitl_core.actions`, then say exactly what changed or why not.

    ``opened``: the row the panel showed; when it was saved the panel moves to ``advance``.
    Conflicts wait in the session until the person applies theirs anyway or keeps the other label.
    """
    try:
        outcome = actions.record_decisions(state.store(), project_id, state.user(), requests)
    except actions.ActionError as exc:
        flash(where, "error", f"Nothing was saved: {exc}")
        return
    waiting = st.session_state.setdefault(CONFLICTS, {})
    for request in requests:
        waiting.pop((project_id, request.row_key), None)
    by_key = {r.row_key: r for r in requests}
    for conflict in outcome.conflicts:
        waiting[(project_id, conflict.row_key)] = (by_key[conflict.row_key], conflict)
    if outcome.saved:
        st.session_state[SAVES] = st.session_state.get(SAVES, 0) + 1
        st.session_state.pop(SELECTED, None)
        flash(where, "success", outcome.message() + (" A retrain is queued." if outcome.retrain else ""))
        if opened is not None and any(s.row_key == opened for s in outcome.saved):
            set_open_row(project_id, advance)
    st.session_state[RERUN_APP] = True


def _decide(project_id: int, row: pd.DataFrame, accept: bool, version: int, advance: str | None) -> None:
    """The panel's Accept / Save: the row and the label it showed are bound when the button was drawn."""
    key = str(row.index[0])
    new_label = row.iloc[0]["predicted"] if accept else st.session_state.get(f"decide_label_{key}")
    note = st.session_state.get(f"decide_note_{key}", "") or ""
    requests = loop.decisions_for(row, new_labels=pd.Series({key: new_label}), model_version=version, note=note)
    if reason := st.session_state.get(f"decide_reason_{key}"):
        requests = [dataclasses.replace(request, reason=reason) for request in requests]
    submit(project_id, requests, where="panel", advance=advance, opened=key)


def accept_selected(project_id: int) -> None:
    """Accept the predictions of the ticked rows, as the table displayed them when the button was clicked."""
    selected = st.session_state.get(SELECTED)
    if not selected or selected["rows"].empty or not selected["widget"].startswith(f"review_table_{project_id}_"):
        flash("table", "error", "Nothing was saved: no rows are ticked in the table (ticks clear after each save "
                                "and when the table changes). Tick rows, then accept.")
        return
    requests = loop.decisions_for(selected["rows"], new_labels=None, model_version=selected["version"])
    submit(project_id, requests, where="table")


def _apply_mine(project_id: int, row_key: str, advance: str | None, opened: str | None) -> None:
    waiting = st.session_state.get(CONFLICTS, {})
    if (project_id, row_key) not in waiting:
        return
    request, conflict = waiting.pop((project_id, row_key))
    submit(project_id, [dataclasses.replace(request, expected=conflict.current)], where="panel",
           advance=advance, opened=opened)


def _keep_theirs(project_id: int, row_key: str) -> None:
    waiting = st.session_state.get(CONFLICTS, {})
    if (project_id, row_key) not in waiting:
        return
    request, conflict = waiting.pop((project_id, row_key))
    flash("panel", "info", f"Kept {conflict.changed_by}'s label for row {row_key}: {label_text(conflict.current)}. "
                           f"Your {request.new_label} was not saved.")
    st.session_state[RERUN_APP] = True


def _picked(project_id: int, shown: str) -> None:
    """Open the picked row; a request from a browser that has not drawn the last save yet carries the row the
    picker showed then, which must not reopen the row just saved."""
    picked = st.session_state[f"{ROW_PICKER}_{project_id}_{shown}"]
    if picked != shown:
        set_open_row(project_id, picked)


def view_changed() -> None:
    """The person chose another view or filter: open its first row unless the open row is in it."""
    st.session_state[VIEW_CHANGED] = True


def consume_rerun_request() -> None:
    """A full run redraws everything, so a save's request to redraw the page is met by this run."""
    st.session_state.pop(RERUN_APP, None)


def resolve_open_row(project_id: int, pool_index: pd.Index, keys: Sequence[str]) -> str | None:
    """The row the panel shows: the one the person opened (by key, in any view), else the view's first."""
    current = open_row(project_id)
    if st.session_state.pop(VIEW_CHANGED, False) and current not in keys:
        current = None
    if current is None or current not in pool_index:
        current = keys[0] if keys else None
    set_open_row(project_id, current)
    return current


# --------------------------------------------------------------------------- the table
def pool_table(project_id: int, display: pd.DataFrame, seen: pd.DataFrame, version: int,
               **dataframe_options) -> pd.DataFrame:
    """The view as a table with ticks; returns the ticked rows of ``seen`` (what the person saw).

    ``display`` is what is drawn, ``seen`` the same rows with the raw ``label``, ``predicted`` and
    ``confidence`` that a decision carries. The newest ticked row opens in the decision panel.
    """
    widget = table_widget_key(project_id, display.index, st.session_state.get(SAVES, 0), version)
    event = st.dataframe(display, key=widget, on_select="rerun", selection_mode="multi-row", **dataframe_options)
    positions = [p for p in event.selection.rows if 0 <= p < len(seen)]
    rows = seen.iloc[positions]  # same widget key ⇒ the very rows, in the very order, the ticks were made on
    before = st.session_state.get(SELECTED)
    ticked_before = set(before["rows"].index) if before and before["widget"] == widget else set()
    newly = [k for k in rows.index if k not in ticked_before]
    if newly:
        set_open_row(project_id, newly[-1])
    st.session_state[SELECTED] = {"widget": widget, "rows": rows, "version": version}
    return rows


# --------------------------------------------------------------------------- the decision panel
def _conflicts(project_id: int, open_key: str | None, advance: str | None) -> None:
    waiting = st.session_state.get(CONFLICTS, {})
    for (project, row_key), (request, conflict) in list(waiting.items()):
        if project != project_id:
            continue
        with st.container(border=True):
            st.warning(md_escape(f"Not saved: {conflict.message()} Your decision was {request.new_label}."),
                       icon=":material/sync_problem:")
            mine, theirs = st.columns(2)
            after = advance if row_key == open_key else None
            mine.button("Apply mine anyway", key=f"conflict_mine_{row_key}", icon=":material/done:",
                        on_click=_apply_mine, args=(project_id, row_key, after, open_key),
                        help="Save your label over the one now stored (it stays in the row's history).")
            theirs.button("Keep theirs", key=f"conflict_theirs_{row_key}", icon=":material/undo:",
                          on_click=_keep_theirs, args=(project_id, row_key),
                          help="Drop your decision; nothing is written.")


@st.fragment
def decision_panel(project: Project, version: ModelVersion, pool: pd.DataFrame, keys: list[str],
                   view_name: str) -> None:
    """One row: its values, what the model says and why, its history; accept, correct or move on.

    Runs as a fragment, so moving between rows redraws only this panel; a save redraws the page (the
    counts and the table change) and opens the next row of the view.
    """
    if st.session_state.pop(RERUN_APP, False):
        st.rerun(scope="app")
    store = state.store()
    schema = project.schema
    classes = schema.classes
    show_flash("panel")
    key = open_row(project.id)
    if key not in pool.index:
        key = keys[0] if keys else None
        set_open_row(project.id, key)
    advance = next_key(keys, key, skip={key}) if key is not None else None
    _conflicts(project.id, key, advance)
    if key is None:
        st.info("No row is open: pick a view with rows to review.", icon=":material/info:")
        return
    row = pool.loc[key]

    picker, step = st.columns([4, 1], vertical_alignment="bottom")
    in_view = key in keys
    options = keys[:MAX_PICKER_ROWS]
    if key not in options:
        options = [key, *options]
    picker_key = f"{ROW_PICKER}_{project.id}_{key}"  # one widget per open row: a stale value cannot leak across
    st.session_state[picker_key] = key
    picker.selectbox("Row to decide on", options, key=picker_key, on_change=_picked, args=(project.id, key),
                     format_func=lambda k: k if in_view or k != key else f"{k} (not in this view)",
                     help=f"The first {MAX_PICKER_ROWS:,} rows of the view, in its order; ticking a row in the "
                          "table opens it too.")
    following = next_key(keys, key)
    step.button("Next row", key="review_next", icon=":material/arrow_forward:", on_click=set_open_row,
                args=(project.id, following),
                disabled=following is None, shortcut=SHORTCUTS["next"],
                help=f"Open the next row of the view without deciding (key **{SHORTCUTS['next'].upper()}**).")

    blind = project.blind
    left, right = st.columns([3, 2])
    with left:
        if blind:
            st.markdown(f"**Row {md_escape(key)}** · blind review: the model's answer is hidden so your label is "
                        "your own")
        else:
            st.markdown(f"**Row {md_escape(key)}** · predicted **{md_escape(row['predicted'])}** · "
                        f"confidence **{float(row['confidence']):.2f}**")
        facts = [f"Given label: {md_escape(label_text(row['given']))}",
                 f"current label: {md_escape(label_text(row['label']))}"]
        if row["reviewed"]:
            facts.append("already reviewed by a person")
        if not in_view:
            facts.append(f"not in the current view ({md_escape(view_name)} and filters); Next row opens "
                         "the view's first row")
        st.caption(" · ".join(facts))
        values = row_values(row, schema, key, state.pii_role())
        st.dataframe(values, hide_index=True, key=f"review_values_{key}",
                     height=min(400, 36 * (len(values) + 1)))
    with right:
        if project.guidelines:
            with st.expander("Labelling guidelines", icon=":material/menu_book:"):
                st.markdown(project.guidelines)  # Streamlit renders Markdown without raw HTML
        if not blind:
            st.plotly_chart(charts.class_probabilities(row, classes), width="stretch", key=f"review_probs_{key}")
        one_row = pool.loc[[key], ["label", "predicted", "confidence"]]
        if not users.can(state.role(), "label"):
            st.info(f"You are signed in as a {state.role()}: you can read every row and flag a decision below, "
                    "not label.", icon=":material/visibility:")
        else:
            _decision_form(project, version, key, row, one_row, advance)

    _rest_of_panel(project, version, key, row)


def _decision_form(project: Project, version: ModelVersion, key: str, row: pd.Series, one_row: pd.DataFrame,
                   advance: str | None) -> None:
    """The label choice, reason, note and the Accept / Save buttons (Accept is absent in blind mode)."""
    classes = project.schema.classes
    blind = project.blind
    with st.form(f"decide_{key}", border=True):
        default = None if blind else classes.index(row["predicted"])
        st.radio("Correct label", classes, index=default, horizontal=True,
                 key=f"decide_label_{key}", format_func=md_escape)
        if project.reasons and not blind:
            st.selectbox("Reason (when you change the model's label)", project.reasons, index=None,
                         key=f"decide_reason_{key}", placeholder="Pick a reason for an override",
                         format_func=md_escape)
        st.text_input("Note (optional)", key=f"decide_note_{key}", max_chars=actions.MAX_NOTE,
                      placeholder="Why? Kept in the row's history and the audit trail.")
        accept, save = st.columns(2)
        if not blind:
            accept.form_submit_button(
                "Accept prediction", icon=":material/check:", shortcut=SHORTCUTS["accept"],
                on_click=_decide, args=(project.id, one_row, True, version.version, advance),
                help=f"Store the model's label for this row and open the next one (key "
                     f"**{SHORTCUTS['accept'].upper()}**).")
        save.form_submit_button(
            "Save label", type="primary", icon=":material/edit:", shortcut=SHORTCUTS["save"],
            on_click=_decide, args=(project.id, one_row, False, version.version, advance),
            help=f"Store the label chosen above and open the next row (key **{SHORTCUTS['save'].upper()}**).")
    vote = " Each person's label is kept as a vote; the majority trains the model." if project.overlap > 1 else ""
    st.caption(f"Keys: **{SHORTCUTS['accept'].upper()}** accept · **{SHORTCUTS['save'].upper()}** save · "
               f"**{SHORTCUTS['next'].upper()}** next row (not while typing in a field).{vote}")


def _rest_of_panel(project: Project, version: ModelVersion, key: str, row: pd.Series) -> None:
    """The row's history, complaints, and (unless blind) why the model said what it said."""
    store = state.store()
    st.markdown("**Decision history of this row**")
    decided = store.row_history(project.id, key)
    shown = decided
    others = decided[decided["user"] != state.user()]
    if project.blind and not decided["user"].eq(state.user()).any() and not others.empty:
        st.caption(f"{others['user'].nunique()} other person(s) labelled this row; blind review shows their "
                   "labels after you give yours.")
        shown = decided[decided["user"] == state.user()]
    history = history_frame(shown)
    if history.empty:
        st.caption("No decisions on this row yet: its label is the one it came with.")
    else:
        st.dataframe(history, hide_index=True, key=f"review_history_{key}")

    if project.overlap > 1 and users.can(state.role(), "adjudicate") and not decided.empty:
        _adjudication_form(project, key, decided)
    complaint_panel(project, key)
    if project.blind:
        return

    st.subheader("Why this prediction?")
    explain_panel.explanation(project, version, key, row["predicted"])
    with st.expander("What if? Edit this row's values and compare", icon=":material/science:"):
        explain_panel.what_if(project, version, key)


def _adjudication_form(project: Project, key: str, decided: pd.DataFrame) -> None:
    """The lead's final word on a row people disagree on: every vote stays on record, this label trains."""
    votes = consensus.row_consensus(decided)
    if votes.empty:
        return
    row = votes.iloc[0]
    state_text = ("settled by the lead: " + str(row["adjudicated"]) if row["adjudicated"] is not None else
                  "a tie" if row["tie"] else f"majority {row['majority']} ({row['agreement']:.0%} agree)")
    with st.form(f"adjudicate_{project.id}_{key}", border=True):
        st.markdown(f"**Settle this row** · {int(row['n_votes'])} vote(s), {md_escape(state_text)}")
        label = st.radio("Final label", project.schema.classes, horizontal=True, format_func=md_escape,
                         index=None if row["label"] is None else project.schema.classes.index(row["label"]))
        note = st.text_input("Why (kept with the adjudication)", max_chars=actions.MAX_NOTE)
        if st.form_submit_button("Adjudicate", icon=":material/gavel:") and label is not None:
            try:
                saved = actions.adjudicate(state.store(), project.id, state.user(), row_key=key, label=label,
                                           note=note)
            except (actions.ActionError, users.PermissionDenied) as exc:
                flash("panel", "error", f"Nothing was saved: {exc}")
            else:
                flash("panel", "success", f"Row {key} settled as {saved.new_label}; every vote stays on record.")
            st.session_state[RERUN_APP] = True
            st.rerun(scope="fragment")


def complaint_panel(project: Project, key: str) -> None:
    """The row's complaints (who, why, how they were answered), a form to raise one (anyone with access, viewers
    too) and one to answer it (reviewers): kept, or changed to a new label recorded as a decision."""
    found = state.store().complaints(project.id, row_key=key)
    st.markdown("**Complaints about this row**")
    if found:
        shown = complaints.table(found)[["id", "created_at", "created_by", "reason", "status", "resolution",
                                         "resolved_by", "resolved_at", "resolution_note"]]
        when = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", timezone="UTC")
        st.dataframe(shown, hide_index=True, key=f"review_complaints_{key}", column_config={
            "id": st.column_config.NumberColumn("#", format="%d"), "created_at": when, "created_by": "raised by",
            "resolution": "outcome", "resolved_at": when, "resolution_note": "why"})
    else:
        st.caption("Nobody has complained about this row's decision.")
    waiting = [c for c in found if c.status == "open"]
    if waiting and users.can(state.role(), "resolve complaint"):
        with st.form(f"resolve_{project.id}_{key}", border=True):
            st.markdown("**Answer a complaint**")
            picked = st.selectbox("Complaint", [c.id for c in waiting], format_func=lambda i: f"#{i}")
            outcome = st.radio("Outcome", list(complaints.OUTCOMES), horizontal=True,
                               format_func=lambda o: f"{o}: {complaints.OUTCOMES[o]}")
            new_label = st.radio("New label (for *changed*)", project.schema.classes, horizontal=True,
                                 format_func=md_escape)
            note = st.text_input("Why (required: the person who complained and the audit trail see it)",
                                 max_chars=complaints.MAX_REASON)
            if st.form_submit_button("Resolve complaint", icon=":material/gavel:"):
                _complaint_action(lambda: actions.resolve_complaint(
                    state.store(), project.id, state.user(), picked, outcome=outcome, reason=note,
                    new_label=new_label if outcome == "changed" else None))
    if users.can(state.role(), "complain"):
        with st.expander("Complain about this decision", icon=":material/flag:"):
            with st.form(f"complain_{project.id}_{key}", clear_on_submit=True, border=False):
                reason = st.text_area("What is wrong with it, and why?", max_chars=complaints.MAX_REASON)
                if st.form_submit_button("Send complaint", icon=":material/flag:"):
                    _complaint_action(lambda: actions.complain(state.store(), project.id, state.user(), key, reason))


def _complaint_action(run) -> None:
    """Raise or resolve a complaint, say what happened, and redraw the page (the queue and the counts move)."""
    try:
        done = run()
    except (actions.ActionError, users.PermissionDenied) as exc:
        flash("panel", "error", f"Nothing was saved: {exc}")
        st.rerun(scope="fragment")
    flash("panel", "success", done.message() + (" The row now comes first in the review queue."
                                                  if done.status == "open" else ""))
    st.rerun(scope="app")
