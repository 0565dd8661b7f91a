"""The retrain line every model page shows: where retraining stands, and a new version picked up by itself."""
from __future__ import annotations

import streamlit as st

from hitl_core import actions, jobs
from hitl_core.records import Project
from hitl_ui import state

POLL_SECONDS = 2
NO_WORKER = ("No retrain worker is running: start one with `python -m hitl_core worker`, or use Retrain now "
             "to train here.")


@st.cache_data(show_spinner=False, max_entries=16)
def _next_version(project_id: int, current: int | None, running_job: int | None) -> int:
    """The number the next stored version gets; re-read when the current version or the running job changes."""
    versions = state.store().model_versions(project_id)
    return max((v.version for v in versions), default=0) + 1


@st.fragment(run_every=POLL_SECONDS)
def retrain_status(project: Project, shown_version: int) -> None:
    """Where retraining stands, refreshed every few seconds; a new version redraws the whole page by itself."""
    store = state.store()
    current = store.current_version_number(project.id)
    if current != shown_version:
        st.rerun(scope="app")
    status = jobs.retrain_state(store, project.id)
    line, action = st.columns([4, 1], vertical_alignment="center")
    upcoming = _next_version(project.id, current, status.running.id if status.running else None)
    line.caption(f":material/model_training: {status.sentence(upcoming)}")
    if not status.workers:
        if status.queued is not None or status.pending_decisions:
            line.warning(NO_WORKER, icon=":material/warning:")
        else:
            line.caption(NO_WORKER)
    nothing_to_do = status.running is not None or (status.queued is None and not status.pending_decisions)
    clicked = action.button(
        "Retrain now", key="retrain_now", icon=":material/refresh:", disabled=nothing_to_do,
        help="Train a new version on the current effective labels: here when no worker runs, else by a worker.")
    if clicked:
        if status.workers:
            job = actions.request_retrain(store, project.id, state.user())
            line.info(f"Retrain requested (job {job.id}): a worker will store v{upcoming}; this page shows it "
                      "when it lands.", icon=":material/schedule:")
        else:
            state.retrain_here_with_status(project)
            st.rerun(scope="app")


