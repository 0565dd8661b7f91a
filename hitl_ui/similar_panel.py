"""Similar past cases beside a prediction on the Review page: reasoning by precedent.

The pool encoded by a model version is cached per version; the neighbour search over the rows
labelled now is cached per (version, newest decision), so a decision saved a moment ago is already
a precedent and nothing is refitted on a plain rerun.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from hitl_core import loop
from hitl_core.records import ModelVersion, Project
from hitl_core.similar import DEFAULT_K, CaseIndex, CaseSpace, sentence, with_decisions
from hitl_ui import state
from hitl_ui.text import md_escape


@st.cache_resource(show_spinner="Placing the pool in the model's feature space…", max_entries=4)
def case_space(project_id: int, version: int) -> CaseSpace:
    """The review pool as one model version sees it: transformed once, shared read-only."""
    project = state.store().project(project_id)
    data = state.dataset(project_id, project.dataset_hash)
    return CaseSpace(state.model(project_id, version), data.features.loc[data.rows("train")])


@st.cache_resource(show_spinner=False, max_entries=8)
def case_index(project_id: int, version: int, last_decision_id: int) -> CaseIndex:
    """The neighbour search over the pool rows labelled up to decision ``last_decision_id``."""
    project = state.store().project(project_id)
    given = state.store().pool_rows(project)[1]
    space = case_space(project_id, version)
    labels = loop.effective_labels(given.loc[space.keys], state.store().decisions(project_id, up_to=last_decision_id))
    return CaseIndex(space, labels)


@st.cache_data(show_spinner=False, max_entries=256)
def cases(project_id: int, version: int, last_decision_id: int, row_key: str, k: int = DEFAULT_K) -> pd.DataFrame:
    """The ``k`` nearest labelled pool rows to ``row_key`` with who decided them and their notes."""
    found = case_index(project_id, version, last_decision_id).similar_to(row_key, k)
    return with_decisions(found, state.store().decisions(project_id, up_to=last_decision_id))


def similar_cases(project: Project, version: ModelVersion, row_key: str, predicted: str) -> None:
    """A sentence ("7 of 10 similar past cases were labelled yes") and the cases as a small table."""
    st.markdown("**Similar past cases**")
    found = cases(project.id, version.version, state.store().last_decision_id(project.id), row_key)
    st.caption(f"{md_escape(sentence(found, predicted))} The nearest labelled rows of the review pool as model "
               f"v{version.version} sees them (after its preprocessing: scaled, one-hot encoded); a smaller distance "
               "is a closer case. Labels are people's latest decisions, else the given label.")
    if found.empty:
        return
    when = found["decided_at"].dt.strftime("%Y-%m-%d %H:%M UTC").fillna("")  # a given label has no date
    st.dataframe(found[["row", "label", "distance", "decided_by", "note"]].assign(when=when), hide_index=True,
                 key=f"similar_{row_key}_v{version.version}", column_order=(
                     "row", "label", "distance", "decided_by", "when", "note"), column_config={
                     "row": st.column_config.TextColumn("row"),
                     "distance": st.column_config.NumberColumn("distance", format="%.3f"),
                     "decided_by": st.column_config.TextColumn("decided by"),
                 })
