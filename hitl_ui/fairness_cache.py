"""Cached fairness computations for the Fairness page, keyed by content (project, model version, choices).

A stored model version never changes, so its report is computed once per choice of attribute,
class and minimum group size; the history re-reads the versions only when a new number appears.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from hitl_core import fairness, loop
from hitl_core.fairness import FairnessReport, HumanFairness, Mitigation
from hitl_core.records import ModelVersion
from hitl_ui import state


@st.cache_data(show_spinner=False, max_entries=8)
def versions(project_id: int, current_number: int | None) -> list[ModelVersion]:
    """Every version of the project; ``current_number`` is the cache key that changes when a new one lands."""
    return state.store().model_versions(project_id)


@st.cache_data(show_spinner="Breaking the predictions down by group…", max_entries=64)
def report(project_id: int, version: int, columns: tuple[str, ...], positive: str, min_group_size: int,
           part: str) -> FairnessReport:
    """The report of one stored model version on validation or the held-out test set (original labels:
    people only decide on training-pool rows)."""
    project = state.store().project(project_id)
    data = state.dataset(project_id, project.dataset_hash)
    return fairness.breakdown(state.model(project_id, version), data, columns, part=part, positive=positive,
                              min_group_size=min_group_size, threads=state.settings().threads)


@st.cache_data(show_spinner=False, max_entries=8)
def decisions(project_id: int, n_decisions: int) -> pd.DataFrame:
    return state.store().decisions(project_id)


@st.cache_data(show_spinner=False, max_entries=32)
def human(project_id: int, n_decisions: int, columns: tuple[str, ...], positive: str, min_group_size: int,
          user: str | None) -> HumanFairness | None:
    """The reviewers' rates per group (one reviewer's when ``user`` is given), after ``n_decisions`` decisions."""
    project = state.store().project(project_id)
    data = state.dataset(project_id, project.dataset_hash)
    made = decisions(project_id, n_decisions)
    if user is not None:
        made = made[made["user"] == user]
    groups = fairness.sensitive_groups(data.frame, columns)
    return fairness.human_fairness(made, groups, classes=project.schema.classes, positive=positive,
                                   min_group_size=min_group_size)


@st.cache_data(show_spinner="Fitting group thresholds (fairlearn ThresholdOptimizer)…", max_entries=16)
def mitigation(project_id: int, version: int, last_decision_id: int, columns: tuple[str, ...], positive: str,
               constraint: str, min_group_size: int) -> Mitigation:
    """A version beside its post-processed twin; thresholds learnt on the labels that version was trained on
    (decisions up to ``last_decision_id``)."""
    project = state.store().project(project_id)
    data = state.dataset(project_id, project.dataset_hash)
    labels = loop.effective_labels(data.labels, state.store().decisions(project_id, up_to=last_decision_id))
    return fairness.mitigate(state.model(project_id, version), data, columns, constraint=constraint, labels=labels,
                             positive=positive, min_group_size=min_group_size, seed=project.seed,
                             threads=state.settings().threads)
