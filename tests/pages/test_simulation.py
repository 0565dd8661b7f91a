"""Simulation page: runs strategies side by side on the current project's data, bounded and with clear messages."""
from __future__ import annotations

PAGE = "pages/simulation.py"


def _set_small(at, *, strategies=("random", "margin"), seed=10, batch=10, budget=30, repeats=1):
    at.multiselect(key="sim_strategies").set_value(list(strategies))
    at.number_input(key="sim_seed_size").set_value(seed)
    at.number_input(key="sim_batch_size").set_value(batch)
    at.number_input(key="sim_budget").set_value(budget)
    at.number_input(key="sim_repeats").set_value(repeats)


def _run(at):
    next(b for b in at.button if b.label == "Run simulation").click()
    at.run()


def test_simulation_page_opens_without_running(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("Run simulation" in i.value for i in at.info)
    assert "352 unlabeled rows left out" in at.markdown[0].value  # the loan demo's pending applications


def test_simulation_runs_to_completion_with_small_settings(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    _set_small(at)
    _run(at)
    assert not at.exception, at.exception
    assert not at.error
    sentences = [m.value for m in at.markdown if "full-label accuracy" in m.value]
    assert sentences and "margin" in sentences[0].lower() and "random" in sentences[0]  # savings in words
    table = next(d.value for d in at.dataframe if "AULC (mean accuracy)" in d.value.columns)
    assert list(table["strategy"]) == ["Random", "Margin"]
    assert table["AULC (mean accuracy)"].between(0.4, 1.0).all()
    assert len(at.get("plotly_chart")) == 1
    # the result survives a rerun of the page (e.g. a widget change elsewhere)
    at.run()
    assert any("AULC (mean accuracy)" in d.value.columns for d in at.dataframe)


def test_noisy_group_shows_the_annotator_bias(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    _set_small(at, strategies=("random",), budget=60)
    at.selectbox(key="sim_group").set_value("group=group_b")
    at.slider(key="sim_group_noise").set_value(0.5)
    _run(at)
    assert not at.exception, at.exception
    groups = next(d.value for d in at.dataframe if "label error: group_b" in d.value.columns)
    assert groups["label error: group_b"].iloc[0] > 0.2
    assert groups["label error: others"].iloc[0] == 0.0
    assert any("Annotator bias" in h.value for h in at.subheader)


def test_budget_below_the_seed_gets_a_message(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    _set_small(at, seed=50, budget=30)
    _run(at)
    assert not at.exception
    assert any("smaller than the seed set" in e.value for e in at.error)


def test_too_much_work_is_refused_with_the_cli_command(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    _set_small(at, strategies=("random", "margin", "qbc"), seed=1, batch=1, budget=400, repeats=5)
    _run(at)
    assert not at.exception
    message = next(e.value for e in at.error if "training rounds" in e.value)
    assert "python -m hitl_core simulate sample:loan" in message
    assert not any("AULC (mean accuracy)" in d.value.columns for d in at.dataframe)


def test_no_strategy_gets_a_message(start_app):
    at = start_app()
    at.switch_page(PAGE).run()
    _set_small(at, strategies=())
    _run(at)
    assert not at.exception
    assert any("at least one query strategy" in e.value for e in at.error)


def test_repeats_show_ranges_and_an_honest_savings_sentence(start_app):
    from hitl_core.simulate import _overlap

    at = start_app()
    at.switch_page(PAGE).run()
    _set_small(at, budget=50, repeats=3)
    _run(at)
    assert not at.exception, at.exception
    result = at.session_state["simulation"]["result"]
    table = next(d.value for d in at.dataframe if "AULC (mean accuracy)" in d.value.columns)
    for key in ("labels_to_95", "labels_to_99"):
        trivial = result["targets"][key]["trivial"]
        column = f"labels to {key[-2:]} %" + (" (trivial)" if trivial else "")
        assert column in table.columns
        for shown, summary in zip(table[column], result["strategies"].values()):
            interval = summary[f"{key}_interval"]
            if interval is not None:
                assert f"({interval[0]}–{interval[1] if interval[1] is not None else 'beyond'})" in shown
                assert all(r is None or interval[0] <= r <= (interval[1] or 10**9) for r in summary[f"{key}_runs"])
    margin, random = (result["strategies"][s] for s in ("margin", "random"))
    sentence = next(m.value for m in at.markdown if "margin" in m.value and "random" in m.value)
    reached = margin["labels_to_99"] is not None or random["labels_to_99"] is not None
    if reached and _overlap(margin["labels_to_99_interval"], random["labels_to_99_interval"]):
        assert "No clear difference between margin and random" in sentence
    else:
        assert "No clear difference" not in sentence
    trivial_note = any("is trivial here" in m.value for m in at.markdown)
    assert trivial_note == result["targets"]["labels_to_99"]["trivial"]
