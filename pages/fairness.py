"""Fairness page: how the current model treats each group, how that moved with each correction, the reviewers' rates.

Every figure is for a named class: the project's favourable outcome (the class people want, such as an
approved loan), which a person chooses; a binary project without one is asked first, never guessed for.
"""
import pandas as pd
import streamlit as st

from hitl_core import actions, charts, fairness
from hitl_core.data import DataError
from hitl_core.fairness import CONSTRAINTS, DEFAULT_MIN_GROUP_SIZE, DISPARITIES, GROUP_METRICS, HUMAN_METRICS
from hitl_core.models import MODEL_KINDS
from hitl_ui import fairness_cache as cache
from hitl_ui import state
from hitl_ui.text import md_escape

REFRESH_SECONDS = 5
RATES = [m for m in GROUP_METRICS if m != "count"]
GROUP_COLUMN = {"_index": st.column_config.TextColumn("group", width="medium")}  # intersections are long
QUESTION = "Which outcome is favourable for the people in this data?"

state.through_frame(__file__)


def _outcome_form(project, current: str | None) -> None:
    """Ask for the favourable outcome and save it through the write path (the audit trail records who and when)."""
    classes = list(project.schema.classes)
    with st.form(f"favourable_form_{project.id}"):
        choice = st.radio(QUESTION, classes, index=classes.index(current) if current in classes else None,
                          horizontal=True, format_func=md_escape, key=f"favourable_choice_{project.id}",
                          help="The class people want: an approved loan, not a default. Selection rates, the "
                               "four-fifths rule, the disparities and their history are all for this class.")
        saved = st.form_submit_button("Save the favourable outcome", icon=":material/save:")
    if not saved:
        return
    if choice is None:
        st.error("Pick one of the outcomes first.", icon=":material/error:")
    elif choice != current:
        try:
            actions.set_favourable_outcome(state.store(), project.id, state.user(), choice)
        except actions.ActionError as exc:
            st.error(md_escape(exc), icon=":material/error:")  # names classes
        else:
            st.rerun()  # the page reads the project again, now with the outcome named


st.title("Fairness")
project = state.require_project()

schema = project.schema
if not schema.sensitive:
    st.info(
        "This project has no **sensitive attribute**, so there is nothing to break down by group. To choose one, "
        "start a project on the **Data** page and pick columns under *Sensitive attributes* (for example gender, "
        "age or group membership); numeric ones are grouped into ranges. They stay out of the model's features "
        "unless you tick *Use sensitive attributes as model features*, and are still used for these breakdowns.",
        icon=":material/balance:")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/table_chart:")
    st.stop()

if schema.is_binary and schema.favourable is None:
    first, second = (f"'{md_escape(c)}'" for c in schema.classes)
    st.warning(
        "**No favourable outcome chosen yet**, so nothing is shown here. Selection rates, the four-fifths rule, "
        "the disparities and their history all compare how often each group gets the *favourable* outcome (an "
        f"approved loan, not a default), and the data cannot say whether {first} or {second} is that outcome: "
        "'yes' may mean approved or defaulted. Choose it below; it is stored with the project and recorded in "
        "the audit trail.", icon=":material/balance:")
    _outcome_form(project, None)
    st.stop()

pick, klass, size = st.columns([3, 2, 2])
columns = tuple(pick.multiselect(
    "Sensitive attribute (pick two for their intersection)", list(schema.sensitive), default=[schema.sensitive[0]],
    max_selections=fairness.MAX_ATTRIBUTES, key=f"fairness_attributes_{project.id}",
    help="Groups are the attribute's values; numeric attributes are cut into four ranges of equal size; "
         "missing values form their own group, 'missing'."))
favourable = schema.favourable
if schema.is_binary:
    positive = favourable
    klass.markdown(f"Favourable outcome: **{md_escape(positive)}**")
    klass.caption(f"Selection rate = share predicted '{md_escape(positive)}' (favourable).")
    with klass.expander("Change the favourable outcome"):
        _outcome_form(project, favourable)
else:
    options = list(schema.classes)
    positive = klass.selectbox(
        "Outcome compared (one against the rest)", options,
        index=options.index(favourable) if favourable in options else len(options) - 1,
        format_func=lambda c: f"{c} (favourable)" if c == favourable else c, key=f"fairness_class_{project.id}",
        help="Share labelled, share predicted (selection rate), TPR, FPR and precision are for this class against "
             "all others; accuracy is over all classes.")
min_size = int(size.number_input(
    "Minimum group size", min_value=1, max_value=100_000, value=DEFAULT_MIN_GROUP_SIZE, step=5,
    key=f"fairness_min_size_{project.id}",
    help="Smaller groups are still listed, flagged as too small to judge, and left out of the disparities."))
if not columns:
    st.info("Pick a sensitive attribute above (one, or two for their intersection).", icon=":material/balance:")
    st.stop()
name = fairness.attribute_name(columns)


def _named(positive: str) -> str:
    """The class compared, in words: the favourable outcome, or one class against the rest (Markdown-escaped)."""
    if positive == favourable:
        return f"the favourable outcome '{md_escape(positive)}'"
    return f"'{md_escape(positive)}' against the rest"


def _labels(positive: str) -> dict[str, str]:
    """Column names that say which class a rate is about (tables show them as plain text)."""
    return {**GROUP_METRICS, "base_rate": f"Share labelled '{positive}'",
            "selection_rate": f"Share predicted '{positive}'"}


def _verdict(report: fairness.FairnessReport) -> None:
    """The four-fifths rule in one plain sentence (group and class names are data: escaped)."""
    rates = report.by_group["selection_rate"]
    positive = md_escape(report.positive_class)
    named = _named(report.positive_class)
    if report.four_fifths_violated is None:
        st.warning(f"**Four-fifths rule not judged**: fewer than two groups have {report.min_group_size} rows or more "
                   f"on {report.split}. Lower the minimum group size, or pick an attribute with larger groups.",
                   icon=":material/help:")
    elif report.four_fifths_violated:
        top = rates.loc[list(report.judged)].idxmax()
        low = ", ".join(f"**{md_escape(g)}** ({rates[g]:.0%})" for g in report.below_four_fifths())
        st.error(f"**Four-fifths rule violated** on {report.split} for {named}: {low} predicted '{positive}' at under "
                 f"80 % of the rate of **{md_escape(top)}** ({rates[top]:.0%}); demographic parity ratio "
                 f"{report.demographic_parity_ratio:.2f} < 0.80.", icon=":material/gavel:")
    else:
        st.success(f"**Four-fifths rule met** on {report.split} for {named}: every group is predicted '{positive}' at "
                   f"80 % or more of the highest group's rate (demographic parity ratio "
                   f"{report.demographic_parity_ratio:.2f}).", icon=":material/check_circle:")
    if report.too_small:
        st.warning(f"Too small to judge (fewer than {report.min_group_size} rows on {report.split}): "
                   f"{', '.join(md_escape(g) for g in report.too_small)}. Shown below, left out of the disparities.",
                   icon=":material/group_off:")


def _group_table(report: fairness.FairnessReport, key: str) -> None:
    below = set(report.below_four_fifths())
    table = report.by_group.copy()
    table.insert(0, "flag", ["too small to judge" if small else "below 4/5 of the highest" if g in below else ""
                             for g, small in zip(table.index, table["too_small"])])
    labels = _labels(report.positive_class)
    table = table.drop(columns="too_small").rename(columns=labels)
    shades = {"too small to judge": "color: #888888", "below 4/5 of the highest": "background-color: #fde2e2"}
    styled = (table.style.format({labels[m]: "{:.1%}" for m in RATES} | {"Rows": "{:,}"}, na_rep="n/a")
              .apply(lambda row: [shades.get(row["flag"], "")] * len(row), axis=1))
    st.dataframe(styled, key=key, column_config=GROUP_COLUMN)


def _disparity_metrics(report: fairness.FairnessReport, previous: fairness.FairnessReport | None) -> None:
    cells = st.columns(len(DISPARITIES))
    for cell, (metric, label) in zip(cells, DISPARITIES.items()):
        value = getattr(report, metric)
        before = getattr(previous, metric) if previous is not None else None
        better = "inverse" if "difference" in metric else "normal"  # a difference falls as things get fairer
        cell.metric(label, "n/a" if value is None else f"{value:.3f}", delta_color=better,
                    delta=None if value is None or before is None else f"{value - before:+.3f} vs previous version",
                    help="Between the groups large enough to judge (fairlearn). Ratios: 1 = equal, below 0.8 fails "
                         "the four-fifths rule; differences: 0 = equal.")


@st.fragment(run_every=REFRESH_SECONDS)
def live(project_id: int, columns: tuple[str, ...], positive: str, min_size: int) -> None:
    """Everything that changes when a new model version lands; reruns by itself, so no reload is needed."""
    store = state.store()
    versions = cache.versions(project_id, store.current_version_number(project_id))
    latest = next(v for v in versions if v.status == "current")
    st.caption(f"Model **v{latest.version}** · {MODEL_KINDS[latest.model_kind]} · {latest.n_human_labels:,} human "
               f"labels · validation unless marked *held-out test* · this part refreshes by itself when a new "
               f"version lands (checked every {REFRESH_SECONDS} s)")
    report = cache.report(project_id, latest.version, columns, positive, min_size, "validation")
    previous = None
    if len(versions) > 1:
        previous = cache.report(project_id, versions[-2].version, columns, positive, min_size, "validation")
    _verdict(report)
    _disparity_metrics(report, previous)
    left, right = st.columns(2)
    left.plotly_chart(charts.selection_rates(report), width="stretch", key="fairness_selection_chart")
    right.plotly_chart(charts.group_rates(report), width="stretch", key="fairness_rates_chart")
    _group_table(report, "fairness_groups")
    p = f"'{md_escape(positive)}'"
    others = " or ".join(f"'{md_escape(c)}'" for c in schema.classes if c != positive) if schema.is_binary \
        else "otherwise"
    st.caption(f"For {_named(positive)}. Share labelled {p}: rows whose label is {p} (a gap here is in the data, "
               f"e.g. past decisions). Share predicted {p}: the selection rate, which the four-fifths rule compares. "
               f"Accuracy and balanced accuracy over all classes; TPR = share of rows labelled {p} that the model "
               f"predicts {p}; FPR = share of rows labelled {others} predicted {p}; precision = share of rows "
               f"predicted {p} that are labelled {p}; n/a where undefined.")

    st.subheader("History")
    history = fairness.history_frame(versions, columns, positive, classes=schema.classes)
    if history.empty:
        st.info(f"No stored fairness for *{md_escape(name)}* yet: it is recorded when a model version is trained. "
                "The next retrain (a correction on the Review page, or Retrain now) adds the first point.",
                icon=":material/timeline:")
    else:
        st.plotly_chart(charts.fairness_history(history), width="stretch", key="fairness_history_chart")
        if len(history) < 2:
            st.info("Only one model version so far. Correct or accept predictions on the Review page: each retrain "
                    "adds a point here, and this page picks it up by itself.", icon=":material/timeline:")
        shown = history.rename(columns={**DISPARITIES, "four_fifths_violated": "four-fifths violated",
                                        "too_small": "too small"})
        st.dataframe(shown.iloc[::-1], hide_index=True, key="fairness_history")
        st.caption(f"For {_named(positive)}; computed when each version was trained, on validation, with groups of "
                   f"at least {DEFAULT_MIN_GROUP_SIZE} rows"
                   + (" (a version stored for the other outcome is converted exactly: every figure follows from its "
                      "counts)." if schema.is_binary else "."))

    _humans(project_id, columns, positive, min_size)

    st.subheader("Held-out test set")
    st.caption("Split off before anything was trained or tuned and never used for either: the honest estimate. "
               "Do not tune on it, or it stops being honest.")
    test = cache.report(project_id, latest.version, columns, positive, min_size, "test")
    _verdict(test)
    _disparity_metrics(test, None)
    _group_table(test, "fairness_groups_test")

    _mitigation(project_id, latest, columns, positive, min_size)


def _humans(project_id: int, columns: tuple[str, ...], positive: str, min_size: int) -> None:
    st.subheader("Fairness of the reviewers")
    n_decisions = state.store().count_decisions(project_id)
    if n_decisions == 0:
        st.info("No decisions yet. Accept or correct predictions on the Review page: this section then shows, per "
                "group, how often people overrode the model and which label they gave, so a reviewer's own bias "
                "is visible too.", icon=":material/groups:")
        return
    users = sorted(cache.decisions(project_id, n_decisions)["user"].unique())
    who = st.selectbox("Reviewer", [None, *users], format_func=lambda u: "everyone" if u is None else u,
                       key="fairness_reviewer")
    human = cache.human(project_id, n_decisions, columns, positive, min_size, who)
    if human is None:
        st.info("No decision with a recorded model prediction for this reviewer yet.", icon=":material/groups:")
        return
    st.plotly_chart(charts.human_rates(human), width="stretch", key="fairness_human_chart")
    labels = {**HUMAN_METRICS, "human_positive_rate": f"Labelled '{human.positive_class}'",
              "model_positive_rate": f"Predicted '{human.positive_class}'"}
    table = human.by_group.rename(columns={**labels, "too_small": "too small"})
    rates = [labels[m] for m in HUMAN_METRICS if m.endswith("_rate")]
    st.dataframe(table.style.format({r: "{:.1%}" for r in rates}, na_rep="n/a"), key="fairness_human_table",
                 column_config=GROUP_COLUMN)
    if human.human_parity_ratio is None:
        st.caption(f"{human.n_decisions:,} decisions; the labels people gave are compared between groups once at "
                   f"least two groups have {human.min_group_size} decisions or more.")
    else:
        flag = ""
        if human.human_parity_ratio < fairness.FOUR_FIFTHS:
            flag = " (below 0.8: fails the four-fifths rule)"
            lowest = human.by_group.loc[~human.by_group["too_small"], "human_positive_rate"].idxmin()
            st.warning(f"**Reviewers' labels fail the four-fifths rule**: people labelled **{md_escape(lowest)}** rows "
                       f"'{md_escape(human.positive_class)}' least often, under 80 % of the most favoured group's rate "
                       f"(ratio {human.human_parity_ratio:.2f}). Check whether that reflects the rows or the "
                       "reviewers.",
                       icon=":material/person_alert:")
        st.caption(f"Over {human.n_decisions:,} decisions: people labelled '{md_escape(human.positive_class)}' with a "
                   f"demographic parity ratio of **{human.human_parity_ratio:.2f}**{flag} between groups; the "
                   f"model's predictions on the same rows had **{human.model_parity_ratio:.2f}**. Override: the "
                   "person chose another label than the model predicted. Correction: the person changed the label "
                   "the row already had.")


def _cell(value) -> str:
    """A comparison cell as text: 3 decimals, yes/no, or n/a."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    return f"{value:.3f}"


def _mitigation(project_id: int, latest, columns: tuple[str, ...], positive: str, min_size: int) -> None:
    st.subheader("Mitigation to compare")
    if not st.toggle("Compare with a mitigated model (fairlearn ThresholdOptimizer)", value=False,
                     key=f"fairness_mitigate_{project_id}",
                     help="Off by default. The review loop always keeps using the unmitigated model."):
        st.caption("Off. Turn it on to see this version beside a post-processed twin that picks a threshold per "
                   "group to equalise selection rates (demographic parity) or error rates (equalized odds).")
        return
    constraint = st.radio("Constraint", list(CONSTRAINTS), format_func=CONSTRAINTS.get, horizontal=True,
                          key=f"fairness_constraint_{project_id}")
    try:
        result = cache.mitigation(project_id, latest.version, latest.last_decision_id, columns, positive, constraint,
                                  min_size)
    except DataError as exc:
        st.warning(md_escape(exc), icon=":material/warning:")  # may name groups
        return
    comparison = result.comparison()
    left, right = st.columns(2)
    left.plotly_chart(charts.mitigation_tradeoff(comparison), width="stretch", key="fairness_mitigation_chart")
    shown = comparison.rename(columns={**DISPARITIES, "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy",
                                       "selection_rate": f"Share predicted '{positive}'",
                                       "four_fifths_violated": "four-fifths violated"})
    right.dataframe(shown.T.map(_cell), key="fairness_mitigation_table")
    st.caption(f"Validation, v{latest.version}, for {_named(positive)}. Thresholds per group were fitted by "
               "fairlearn's ThresholdOptimizer on the labelled training pool (never on validation or test); its "
               "predictions are randomised between two thresholds (seeded). Not stored as a model version.")


live(project.id, columns, positive, min_size)
