"""Audit trail page: who changed what in the current project and when, and the tables to take away.

Every change goes through ``hitl_core.actions``, which writes an event in the same transaction;
this page only reads them. Names, notes and row keys are user text: they are shown in table cells
(plain text) or through ``md_escape``, never as HTML.
"""
import pandas as pd
import streamlit as st

from hitl_core import complaints, export
from hitl_ui import state
from hitl_ui.text import md_escape

state.through_frame(__file__)

st.title("Audit trail")
project = state.require_project()
store = state.store()

events = export.events_table(store.events(project.id))
raw_decisions = store.decisions(project.id)
decisions = export.decisions_table(raw_decisions)
st.caption(f"Project {md_escape(project.name)} · every decision, settings change, retrain request and model version, "
           "with who made it, when (UTC) and the value before → after. Written in the same transaction as the "
           "change itself, so nothing is left out.")

if events.empty and decisions.empty:
    st.info("Nothing recorded for this project yet. Accept or correct predictions on the Review page, change a "
            "setting or retrain: each change then appears here with who made it, when, and what it was before.",
            icon=":material/history:")
    st.page_link("pages/review.py", label="Go to Review", icon=":material/rate_review:")
else:
    people = sorted({*events["actor"].dropna(), *decisions["user"].dropna()})
    kinds = sorted({*events["action"].dropna(), *decisions["action"].dropna()})
    stamps = [*events["created_at"].dropna(), *decisions["created_at"].dropna()]
    first, last = min(stamps).date(), max(stamps).date()

    who, what, row, when = st.columns([3, 3, 2, 3])
    chosen_people = who.multiselect("People", people, placeholder="everyone", key=f"audit_people_{project.id}")
    chosen_actions = what.multiselect("Actions", kinds, placeholder="all actions", key=f"audit_actions_{project.id}",
                                      help="accept / override: a decision on a row; complaint / complaint_resolved: "
                                           "a flagged decision and its answer; settings, retrain_requested, version, "
                                           "project_created, withdrawal: changes to the project.")
    row_key = row.text_input("Row", placeholder="all rows", key=f"audit_row_{project.id}",
                             help="A row key exactly as on the Review page.")
    # no key: when the trail grows onto a new day, the widget starts again on the whole range
    days = when.date_input("Days (UTC)", value=(first, last), format="YYYY-MM-DD")
    start, end = (days[0], days[-1]) if isinstance(days, (tuple, list)) and days else (None, None)
    filters = dict(people=chosen_people, actions=chosen_actions, row_key=row_key, start=start, end=end)
    shown_events = export.filter_trail(events, person_column="actor", **filters).iloc[::-1]
    shown_decisions = export.filter_trail(decisions, person_column="user", **filters).iloc[::-1]

    when_column = st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm:ss", timezone="UTC")
    events_tab, decisions_tab = st.tabs([f"Events ({len(shown_events):,} of {len(events):,})",
                                         f"Decisions ({len(shown_decisions):,} of {len(decisions):,})"])
    with events_tab:
        if shown_events.empty:
            st.info("No event matches these filters; clear a filter to see more.", icon=":material/filter_alt_off:")
        else:
            st.dataframe(
                shown_events[["created_at", "actor", "action", "object", "change", "note"]], hide_index=True,
                key="audit_events", column_config={
                    "created_at": when_column, "actor": "who",
                    "object": st.column_config.TextColumn("on", help="The row or project the change is about."),
                    "change": st.column_config.TextColumn("before → after", width="large"),
                    "note": st.column_config.TextColumn("note", width="medium"),
                })
    with decisions_tab:
        if decisions.empty:
            st.info("No decisions yet. Accept or correct predictions on the Review page; each one appears here with "
                    "the prediction and confidence the person saw.", icon=":material/rate_review:")
        elif shown_decisions.empty:
            st.info("No decision matches these filters; clear a filter to see more.", icon=":material/filter_alt_off:")
        else:
            view = shown_decisions.assign(label=[
                f"{'unlabeled' if pd.isna(old) else old} → {new}"
                for old, new in zip(shown_decisions["old_label"], shown_decisions["new_label"])])
            st.dataframe(
                view[["created_at", "user", "row_key", "action", "label", "predicted_label", "confidence",
                      "model_version", "note"]], hide_index=True, key="audit_decisions", column_config={
                    "created_at": when_column, "user": "who", "row_key": "row",
                    "label": st.column_config.TextColumn("label before → after"),
                    "predicted_label": "model predicted",
                    "confidence": st.column_config.ProgressColumn("confidence shown", min_value=0.0, max_value=1.0,
                                                                  format="%.2f"),
                    "model_version": st.column_config.NumberColumn("model version", format="v%d"),
                    "note": st.column_config.TextColumn("note", width="medium"),
                })
    st.caption("Each decision is also an event (accept or override). The Decisions tab adds what the person saw: the "
               "model's prediction, its confidence and the model version.")

st.subheader("Export")
st.caption("The whole project, not only the rows filtered above. Text that a spreadsheet would run as a formula "
           "(starting with =, +, -, @) is written with a leading ' so it shows as text. The same files come from "
           f"the command line: `python -m hitl_core export --project {project.id} --what labels --format csv "
           "--out labels.csv`.")
version = store.current_version(project.id)
dataset = state.dataset(project.id, project.dataset_hash)
model = state.model(project.id, version.version) if version is not None else None
threads = state.settings().threads


def _labels() -> pd.DataFrame:
    """Labels with the current version's predictions, built only when a download is clicked (off the script thread)."""
    return export.labels_table(dataset, raw_decisions, model, project.schema.classes,
                               model_version=version.version if version is not None else None, threads=threads,
                               complained=store.complaints(project.id))


tables = {"labels": _labels, "decisions": lambda: decisions, "events": lambda: events,
          "complaints": lambda: complaints.table(store.complaints(project.id))}
for name, build in tables.items():
    label, csv, parquet = st.columns([4, 1, 1], vertical_alignment="center")
    label.markdown(f"**{name.capitalize()}**: {export.TABLES[name]}")
    for column, fmt, text in ((csv, "csv", "CSV"), (parquet, "parquet", "Parquet")):
        column.download_button(text, data=lambda build=build, fmt=fmt: export.write_table(build(), fmt),
                               file_name=f"project-{project.id}-{name}.{fmt}", mime=export.FORMATS[fmt],
                               on_click="ignore", icon=":material/download:", key=f"download_{name}_{fmt}")
