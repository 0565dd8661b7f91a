"""Monitoring page: each batch of new rows against the training pool (drift), the current model's answers on
it, and how often people overrode the model there; plus the form that adds a batch.

Drift figures are the ones stored with each batch when it arrived (:func:`hitl_core.actions.add_batch`);
predicted-class shares, mean confidence and override rates are the current version's, per batch
(:func:`hitl_core.batches.monitoring_frame`), batch 0 being the rows the project started with.
"""
import streamlit as st

from hitl_core import actions, batches, users
from hitl_core.data import DataError, read_table
from hitl_core.drift import DEFAULT_ALPHA, DEFAULT_PSI_THRESHOLD
from hitl_ui import state
from hitl_ui.text import md_code, md_escape

state.through_frame(__file__)

FLASH = "monitoring_flash"
FILE_TYPES = ["csv", "tsv", "txt", "xlsx", "parquet"]


def add_batch_form(project) -> None:
    """Upload a file of new rows; the action checks it and says what to fix, or stores it with its drift."""
    if not users.can(state.role(), "add data"):
        st.caption("Adding new rows needs the admin role; ask an admin to add the file.")
        return
    with st.form("batch_form", clear_on_submit=True):
        upload = st.file_uploader("New rows: CSV, Excel (.xlsx) or Parquet", type=FILE_TYPES, key="batch_file",
                                  help="The project's columns, the same names; leave the target column out or "
                                       "empty for unlabeled rows. IDs must be new.")
        submitted = st.form_submit_button("Add batch", icon=":material/playlist_add:")
    if not submitted:
        return
    if upload is None:
        st.error("Choose a file first, then press Add batch.", icon=":material/error:")
        return
    try:
        frame = read_table(upload.getvalue(), upload.name, max_bytes=state.settings().max_upload_bytes)
        with st.status(f"Checking {upload.name}, measuring its drift and storing it…", expanded=False) as status:
            batch = actions.add_batch(state.store(), project.id, state.user(), frame, source=upload.name)
            status.update(label=f"Batch {batch.number} stored", state="complete")
    except (DataError, actions.ActionError, users.PermissionDenied) as exc:
        st.error(md_escape(exc), icon=":material/error:")
        return
    st.session_state[FLASH] = f"Added batch {batch.number}: {batch.n_rows:,} rows. {batches.drift_sentence(batch)}"
    st.rerun()


st.title("Monitoring")
project = state.require_project()
current = state.current_version(project)
store = state.store()
project_batches = store.batches(project.id)

if done := st.session_state.pop(FLASH, None):
    st.success(md_escape(done), icon=":material/check_circle:")
st.caption(f"Project {md_escape(project.name)} · current model **v{current.version}**. New rows arrive in batches; "
           "each is compared with the training pool when it arrives (PSI and a KS or chi-square test per feature; "
           f"drifted = p < {DEFAULT_ALPHA:g} and PSI ≥ {DEFAULT_PSI_THRESHOLD:g}), then scored by the current model "
           "and queued for review like every other unlabeled row.")

with st.expander("Add a batch of new rows", expanded=not project_batches, icon=":material/upload_file:"):
    add_batch_form(project)

if not project_batches:
    st.info("No batch yet: add a file of new rows above (the project's columns; an empty target means unlabeled), "
            f"or from a shell: {md_code(f'python -m hitl_core batch add --project {project.id} FILE')}. "
            "Drift, the model's answers and the override rate per batch then appear here.",
            icon=":material/info:")
    st.stop()

latest = project_batches[-1]
sentence = md_escape(batches.drift_sentence(latest))
(st.warning if latest.drifted else st.success)(sentence, icon=":material/query_stats:")
with st.spinner("Scoring every batch with the current model…"):
    batch_of = store.batch_rows(project.id)
    scored = state.scored_pool(project.id, current.version)
    frame = batches.monitoring_frame(project_batches, batch_of, scored, store.decisions(project.id),
                                     project.schema.classes)
row = frame.loc[latest.number]
original = frame.loc[batches.INITIAL]
cols = st.columns(4)
cols[0].metric(f"Rows in batch {latest.number}", f"{latest.n_rows:,}", help=f"From {latest.source}, added by "
               f"{latest.created_by} on {latest.created_at:%Y-%m-%d %H:%M} UTC.")
cols[1].metric("Drifted features", f"{len(latest.drifted)} of {len(project.schema.features)}")
cols[2].metric("Mean confidence", f"{row['mean_confidence']:.3f}",
               delta=f"{row['mean_confidence'] - original['mean_confidence']:+.3f} vs original data",
               help=f"The current model (v{current.version}) on this batch's rows.")
cols[3].metric("Override rate", "no review yet" if row["reviewed"] == 0 else f"{row['override_rate']:.0%}",
               help="Share of this batch's reviewed rows where the person changed the model's prediction "
                    f"({int(row['overridden'])} of {int(row['reviewed'])}).")

st.subheader("Drift per feature and batch")
drift = batches.drift_table(project_batches)
st.plotly_chart(batches.psi_heatmap(drift, threshold=DEFAULT_PSI_THRESHOLD), width="stretch")
for batch in reversed(project_batches):
    st.caption(md_escape(batches.drift_sentence(batch)))
chosen = st.selectbox("Feature figures of batch", [b.number for b in reversed(project_batches)],
                      format_func=lambda n: f"batch {n}", key=f"monitoring_batch_{project.id}")
st.dataframe(drift[drift["batch"] == chosen].drop(columns="batch").sort_values("psi", ascending=False),
             hide_index=True, key="monitoring_drift",
             column_config={"psi": st.column_config.NumberColumn("PSI", format="%.3f"),
                            "p_value": st.column_config.NumberColumn("p-value", format="%.2g",
                                                                     help="KS (numbers) or chi-square (categories)."),
                            "drifted": st.column_config.CheckboxColumn("drifted")})

st.subheader("The model's answers and people's overrides per batch")
st.plotly_chart(batches.batch_lines(frame, project.schema.classes), width="stretch")
arrival = {b.number: (b.drift or {}).get("prediction_shift") or {} for b in project_batches}
table = frame.assign(
    confidence_at_arrival=[None, *[a.get("mean_confidence", {}).get("batch") for a in arrival.values()]],
    version_at_arrival=[None, *[a.get("version") for a in arrival.values()]],
).reset_index()
st.dataframe(table, hide_index=True, key="monitoring_batches", column_config={
    "batch": st.column_config.NumberColumn("batch", help="0: the rows the project was created with."),
    "mean_confidence": st.column_config.NumberColumn("mean confidence", format="%.3f",
                                                     help=f"The current model (v{current.version})."),
    "override_rate": st.column_config.NumberColumn("override rate", format="percent",
                                                   help="Reviewed rows where the person changed the prediction."),
    "confidence_at_arrival": st.column_config.NumberColumn("confidence at arrival", format="%.3f",
                                                           help="Mean confidence of the model current then."),
    "version_at_arrival": st.column_config.NumberColumn("model at arrival", format="v%d"),
    **{f"share({c})": st.column_config.NumberColumn(f"predicted {c}", format="percent")
       for c in project.schema.classes},
})
