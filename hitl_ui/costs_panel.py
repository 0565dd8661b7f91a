"""The costs part of the Metrics and Versions pages: expected cost beside the baselines, the triage cost
curve, and the form a lead sets the costs with (through :func:`hitl_core.actions.set_costs`)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from hitl_core import actions, charts, costs, loop, users
from hitl_core.costs import CostModel
from hitl_core.models import BASELINE_KINDS
from hitl_core.records import ModelVersion, Project
from hitl_ui import state
from hitl_ui.text import md_escape

FLASH = "costs_flash"
NAMES = {"model": "model", **{k: v.lower() for k, v in BASELINE_KINDS.items()}}


@st.cache_data(show_spinner=False, max_entries=32)
def majority_class(project_id: int, last_decision_id: int, dataset_hash: str) -> str:
    """The class the majority baseline decides: the most frequent training label at a version's snapshot."""
    data = state.dataset(project_id, dataset_hash)
    labels = loop.effective_labels(data.labels, state.store().decisions(project_id, up_to=last_decision_id))
    return costs.majority_class(labels.loc[data.rows("train")])




@st.cache_data(show_spinner="Costing each review threshold…", max_entries=16)
def triage_costs(project_id: int, version: int, human_accuracy: float, costs_json: str) -> pd.DataFrame:
    """The triage cost curve of one version on validation, per assumed reviewer accuracy and cost model."""
    project = state.store().project(project_id)
    return costs.validation_triage_costs(state.model(project_id, version), state.dataset(project_id,
                                                                                         project.dataset_hash),
                                         CostModel.from_json(costs_json), human_accuracy=human_accuracy,
                                         threads=state.settings().threads)


def section(project: Project, version: ModelVersion) -> None:
    """Expected cost beside the baselines and the cheapest review threshold, or what to do when no costs are set."""
    st.subheader("Costs")
    if done := st.session_state.pop(FLASH, None):
        st.success(md_escape(done), icon=":material/check_circle:")
    model = costs.project_costs(project)
    if model is None:
        who = "Set them below" if users.can(state.role(), "set costs") else "A lead or admin sets them on this page"
        st.info(f"No costs set yet, so errors are only counted, not priced. {who}: what each kind of wrong decision "
                "costs and what one human review costs. This section then shows the expected cost beside the "
                "baselines and the review threshold that costs least.", icon=":material/payments:")
    else:
        majority = majority_class(project.id, version.last_decision_id, project.dataset_hash)
        estimates = costs.version_costs(version, model, majority=majority, seed=project.seed)
        columns = st.columns(len(estimates))
        for column, (name, estimate) in zip(columns, estimates.items()):
            value = estimate.per(100)
            column.metric(f"Expected cost: {NAMES[name]}", costs.format_amount(value, model.unit),
                          help=f"Per 100 decisions on validation; {estimate.costly_errors:,.0f} costly errors in "
                               f"{estimate.n_rows:,} validation rows.")
            low, high = (costs.format_number(x * 100, like=value) for x in (estimate.low, estimate.high))
            spread = costs.format_number((estimate.high - estimate.low) * 50, like=value)
            column.caption(md_escape(f"per 100 decisions, ± {spread} ({estimate.confidence:.0%} bootstrap interval "
                                     f"{low}–{high})"))
        verdict = costs.baseline_sentence(estimates, majority)
        (st.warning if verdict.startswith("The model costs more") else st.markdown)(md_escape(verdict))
        left, right = st.columns([2, 3])
        left.plotly_chart(charts.expected_costs(estimates, NAMES), width="stretch")
        human = right.slider("Reviewer accuracy (assumed)", 0.5, 1.0, 0.95, 0.01, key="costs_human",
                             help="How often a person decides a routed row right; when wrong, they pick another "
                                  "class at random, and that error costs too.")
        curve = triage_costs(project.id, version.version, human, model.to_json())
        right.plotly_chart(charts.triage_cost_curve(curve, model.unit, threshold=project.threshold), width="stretch")
        st.markdown(md_escape(costs.triage_sentence(curve, model)))
        review = md_escape(costs.format_amount(model.review, model.unit))
        st.caption(f"On the validation split (whiskers: 95 % intervals); a review costs {review}. "
                   "Costly errors: wrong decisions that cost more than the right one. The majority baseline always "
                   "decides the most frequent training label; the random one picks each class with equal chance.")
    if users.can(state.role(), "set costs"):
        form(project, model)


def form(project: Project, current: CostModel | None) -> None:
    """The lead's form: binary targets price the two errors by name, others get the full matrix."""
    schema = project.schema
    classes = schema.classes
    value = (lambda t, p: current.cost(t, p)) if current else (lambda t, p: 0.0)  # noqa: E731
    with st.expander("Set costs" if current is None else "Change costs", expanded=current is None), \
            st.form(f"costs_{project.id}"):
        unit_col, review_col = st.columns(2)
        unit = unit_col.text_input("Unit", value=current.unit if current else costs.DEFAULT_UNIT,
                                   max_chars=costs.MAX_UNIT, key=f"costs_unit_{project.id}",
                                   help="What the numbers count: €, USD, hours…")
        review = review_col.number_input("Cost of one human review", min_value=0.0,
                                         value=current.review if current else 0.0, key=f"costs_review_{project.id}")
        cells = {}
        if schema.is_binary:
            for true, decided in costs.binary_errors(classes, schema.favourable):
                cells[(true, decided)] = st.number_input(
                    md_escape("Cost of " + costs.error_name(true, decided, target=schema.target,
                                                            favourable=schema.favourable)),
                    min_value=0.0, value=value(true, decided), key=f"costs_{project.id}_{true}_{decided}")
            if schema.favourable is None:
                st.caption(f"No favourable outcome is named, so {md_escape(classes[-1])} counts as the positive "
                           "class; name it on the Data page to read these as approvals and refusals.")
        else:
            st.caption("Cost of deciding the column's class when the truth is the row's class; right decisions "
                       "cost 0.")
            for true in classes:
                row = st.columns(len(classes))
                for column, decided in zip(row, classes):
                    if decided != true:
                        cells[(true, decided)] = column.number_input(
                            md_escape(f"truth {true} → decided {decided}"), min_value=0.0, value=value(true, decided),
                            key=f"costs_{project.id}_{true}_{decided}")
        submitted = st.form_submit_button("Save costs", type="primary", icon=":material/save:")
    if submitted:
        try:
            model = CostModel(classes, tuple(tuple(float(cells.get((t, p), 0.0)) for p in classes) for t in classes),
                              review=review, unit=unit)
            actions.set_costs(state.store(), project.id, state.user(), model)
        except ValueError as exc:  # an impossible cost, a refused action or a role that may not set costs
            st.error(md_escape(str(exc)), icon=":material/error:")
        else:
            st.session_state[FLASH] = f"Costs saved ({model.unit}); recorded as {state.user()} in the audit trail."
            st.rerun()
