"""Simulation page: replay the loop with a simulated annotator, several query strategies side by side."""
import json
import shlex
import time

import pandas as pd
import streamlit as st

from hitl_core import active, charts
from hitl_core.data import DataError, labels_as_text
from hitl_core.models import MODEL_KINDS
from hitl_core.simulate import (
    TARGET_LEVELS, SimulationConfig, compare, label_savings, labelled_only, planned_rounds, reach_text, validate,
)
from hitl_ui import state
from hitl_ui.text import md_code, md_escape

state.through_frame(__file__)

# Work allowed per click, in training rounds (all strategies × repeats); a committee round costs
# several fits. About a minute on a busy 2-core machine with logistic regression.
ROUND_LIMITS = {"logreg": 300, "hgb": 100, "rf": 60}
COMMITTEE_COST = 3
MAX_GROUP_VALUES = 20

st.title("Simulation")
st.caption("Replay the loop on the current project's data with a simulated annotator who reveals true labels, "
           "and compare query strategies: which rows to ask about next. Curves are on the validation split; "
           "the held-out test set is not used here.")
project = state.require_project()

full = state.dataset(project.id, project.dataset_hash)
data = labelled_only(full)
pool_size = len(data.rows("train"))
dropped = len(full.frame) - len(data.frame)
st.markdown(f"**{md_escape(project.name)}** · {pool_size:,} labelled rows in the training pool to reveal · "
            f"{len(data.rows('validation')):,} validation rows"
            + (f" · {dropped:,} unlabeled rows left out (no truth to reveal)" if dropped else ""))


def _group_options() -> list[str | None]:
    """``COLUMN=VALUE`` for each value of the sensitive columns, then of small categorical features."""
    schema = data.schema
    columns = [*schema.sensitive, *[c for c in schema.categorical if c not in schema.sensitive]]
    options: list[str | None] = [None]
    for column in columns:
        values = labels_as_text(data.frame[column]).dropna().unique()
        if len(values) <= MAX_GROUP_VALUES:
            options += [f"{column}={v}" for v in sorted(values)]
    return options


with st.form("simulation_settings"):
    left, right = st.columns([3, 2])
    strategies = left.multiselect("Query strategies", list(active.STRATEGIES), default=["random", "margin"],
                                  format_func=active.STRATEGIES.get, key="sim_strategies",
                                  help="Random is the baseline; keep it in to read the savings against it.")
    model = right.selectbox("Model", list(MODEL_KINDS), format_func=MODEL_KINDS.get, key="sim_model",
                            help="Logistic regression is the quickest; the tree models make each round slower.")
    c1, c2, c3, c4 = st.columns(4)
    seed_size = c1.number_input("Seed labels", min_value=1, max_value=pool_size, value=min(20, pool_size),
                                key="sim_seed_size", help="Random labels before the first model (one per class at least).")
    batch_size = c2.number_input("Batch size", min_value=1, max_value=pool_size, value=min(20, pool_size),
                                 key="sim_batch_size", help="Labels revealed per round.")
    budget = c3.number_input("Budget (labels, seed included)", min_value=1, max_value=pool_size,
                             value=min(200, pool_size), key="sim_budget")
    repeats = c4.number_input("Repeats (seeds)", min_value=1, max_value=10, value=2, key="sim_repeats",
                              help="Each strategy runs this many times with different seeds; curves are averaged.")
    e1, e2, e3 = st.columns(3)
    noise = e1.slider("Annotator error rate", 0.0, 0.5, 0.0, 0.01, key="sim_noise",
                      help="Probability that a revealed label is wrong (another class at random).")
    group = e2.selectbox("More error-prone on (optional)", _group_options(), key="sim_group",
                         format_func=lambda g: "nobody: same error rate everywhere" if g is None else g,
                         help="Make the annotator err more on one group, to see how annotator bias propagates.")
    group_noise = e3.slider("Error rate on that group", 0.0, 1.0, 0.3, 0.01, key="sim_group_noise")
    submitted = st.form_submit_button("Run simulation", type="primary", icon=":material/play_arrow:")

if submitted:
    config = SimulationConfig(model=model, seed_size=int(seed_size), batch_size=int(batch_size), budget=int(budget),
                              annotator_noise=float(noise), seed=project.seed, threads=state.settings().threads,
                              strategy=(strategies or ["random"])[0], noisy_group=group,
                              group_noise=float(group_noise) if group else 0.0)
    try:
        validate(data, config, strategies, int(repeats))
    except DataError as exc:
        st.error(md_escape(exc), icon=":material/error:")
        st.stop()
    rounds = planned_rounds(data, config)
    cost = int(repeats) * rounds * sum(COMMITTEE_COST if s in active.COMMITTEE else 1 for s in strategies)
    if cost > ROUND_LIMITS[model]:
        source = project.source if project.source.startswith("sample:") else "FILE"
        command = (f"python -m hitl_core simulate {shlex.quote(source)} "
                   f"--target {shlex.quote(data.schema.target)} --model {model} --strategy {' '.join(strategies)} "
                   f"--seed-size {seed_size} --batch-size {batch_size} --budget {budget} --repeats {repeats}")
        st.error(f"These settings need about {cost:,} training rounds ({rounds} per run × {len(strategies)} "
                 f"strategies × {repeats} repeats, committees count {COMMITTEE_COST}×); this page runs at most "
                 f"{ROUND_LIMITS[model]:,} with {MODEL_KINDS[model].lower()} so it stays responsive. Raise the batch "
                 f"size, lower the budget, the repeats or the number of strategies, or run it from the command line: "
                 f"{md_code(command)}", icon=":material/timer:")
        st.stop()
    started = time.perf_counter()
    with st.status(f"Simulating {len(strategies)} strateg{'y' if len(strategies) == 1 else 'ies'} × {repeats} "
                   f"repeat(s)…", expanded=True) as status:
        bar = st.progress(0.0, text="Training the full-label reference model…")

        def show(progress) -> None:
            bar.progress(progress.fraction, text=(
                f"{active.STRATEGIES[progress.strategy]} · run {progress.repeat}/{progress.repeats} · "
                f"{progress.entry['n_labels']} labels · validation accuracy "
                f"{progress.entry['validation']['accuracy']:.3f}"))

        try:
            result = compare(data, config, strategies, repeats=int(repeats), on_progress=show)
        except DataError as exc:  # e.g. a training pool whose labels hold a single class
            status.update(label="Simulation stopped", state="error", expanded=False)
            st.error(md_escape(exc), icon=":material/error:")
            st.stop()
        status.update(label=f"Simulated {len(strategies) * int(repeats)} run(s) in "
                            f"{time.perf_counter() - started:.0f} s", state="complete", expanded=False)
    st.session_state["simulation"] = {"project": project.id, "result": result}

saved = st.session_state.get("simulation")
if not saved or saved["project"] != project.id:
    st.info("Pick strategies and settings, then **Run simulation**. The defaults finish in well under a minute.",
            icon=":material/science:")
    st.stop()

result = saved["result"]
summaries = result["strategies"]
reference = result["full_label_reference"]["validation"]["accuracy"]
majority = result["baselines"]["majority"]["validation"]["accuracy"]
settings = result["config"]
st.subheader("Label savings")
st.caption(f"Full-label reference: {MODEL_KINDS[settings['model']].lower()} trained on all {result['split']['train']:,} "
           f"pool labels scores **{reference:.3f}** validation accuracy (majority class: {majority:.3f}). "
           f"Averaged over {settings['repeats']} repeat(s); seed {settings['seed_size']}, batch "
           f"{settings['batch_size']}, budget {settings['budget']} labels.")
for sentence in label_savings(result):
    st.markdown(f"- {sentence[0].upper()}{sentence[1:]}")
if "random" not in summaries:
    st.caption("Add *Random* to the strategies to read the savings against it.")

st.plotly_chart(charts.learning_curves(summaries, reference=reference, baseline=majority, names=active.STRATEGIES),
                width="stretch")
targets = result.get("targets", {})


level_names = {key: f"labels to {level * 100:.0f} %" + (" (trivial)" if targets.get(key, {}).get("trivial") else "")
               for key, level in TARGET_LEVELS.items()}
table = pd.DataFrame([{
    "strategy": active.STRATEGIES[name],
    **{level_names[key]: reach_text(summary, key) for key in TARGET_LEVELS},
    "AULC (mean accuracy)": summary["aulc"],
    "final accuracy": summary["curve"][-1][1],
} for name, summary in summaries.items()])
st.dataframe(table, hide_index=True, key="simulation_table", column_config={
    "AULC (mean accuracy)": st.column_config.NumberColumn(format="%.3f"),
    "final accuracy": st.column_config.NumberColumn(format="%.3f"),
})
st.caption("*never*: the strategy did not get there within the budget. In brackets: the range of the labels each "
           "repeat needed (95 % percentile interval of the repeats; with under 40 repeats that is lowest to highest; "
           "*beyond*: some repeat did not get there). *trivial*: always answering the majority class already reaches "
           "that level. AULC is the mean validation accuracy over the labels spent, comparable across strategies run "
           "with the same settings.")
for name, summary in summaries.items():
    for note in summary["notes"]:
        st.info(f"{active.STRATEGIES[name]}: {note}", icon=":material/ac_unit:")

if settings.get("noisy_group"):
    st.subheader("Annotator bias")
    full_groups = result["full_label_reference"]["groups"]["validation_accuracy"]
    rows = []
    for name, summary in summaries.items():
        groups = summary["groups"]
        rows.append({"strategy": active.STRATEGIES[name],
                     f"label error: {groups['value']}": groups["label_error"]["in_group"],
                     "label error: others": groups["label_error"]["rest"],
                     f"accuracy: {groups['value']}": groups["validation_accuracy"]["in_group"],
                     "accuracy: others": groups["validation_accuracy"]["rest"]})
    first = next(iter(summaries.values()))["groups"]
    st.markdown(
        f"The annotator was wrong on **{100 * (first['label_error']['in_group'] or 0):.0f} %** of the labels it gave "
        f"for {md_code(settings['noisy_group'])} and **{100 * (first['label_error']['rest'] or 0):.0f} %** elsewhere "
        f"({active.STRATEGIES[next(iter(summaries))].lower()}). Validation accuracy of the last model, inside the group "
        f"vs elsewhere, beside the full-label model trained on true labels "
        f"({full_groups['in_group'] or 0:.3f} vs {full_groups['rest'] or 0:.3f}):")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="simulation_groups",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in rows[0] if c != "strategy"})

st.download_button("Download the result (JSON, same schema as the CLI)", json.dumps(result, indent=2),
                   file_name="simulation.json", mime="application/json", icon=":material/download:")
