"""Simulating query strategies side by side: curves over repeats, the full-label reference, annotator bias."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from hitl_core.data import Dataset, DataError, Schema
from hitl_core.evaluate import METRIC_NAMES
from hitl_core.samples import Sample
from hitl_core.simulate import (
    SimulationConfig, compare, label_savings, labelled_only, noise_per_row, planned_rounds, run, simulate, summarize,
    validate,
)

SMALL = SimulationConfig(seed_size=10, batch_size=10, budget=30)


@pytest.fixture(scope="module")
def wine_dataset(wine: Sample, wine_schema: Schema) -> Dataset:
    return Dataset.create("wine", wine.frame, wine_schema, seed=0)


@pytest.fixture(scope="module")
def loan_dataset(loan: Sample, loan_schema: Schema) -> Dataset:
    return labelled_only(Dataset.create("loan", loan.frame, loan_schema, seed=0))


def _without_timings(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "fit_seconds"} for e in history]


def test_compare_adds_the_reference_and_one_summary_per_strategy(wine_dataset: Dataset) -> None:
    result = json.loads(json.dumps(compare(wine_dataset, SMALL, ["margin", "random"], repeats=2)))
    assert {"dataset", "split", "config", "baselines", "history", "full_label_reference", "strategies"} <= set(result)
    assert set(result["full_label_reference"]) == {"validation", "test"}
    assert set(result["full_label_reference"]["test"]) == set(METRIC_NAMES)
    assert list(result["strategies"]) == ["margin", "random"]
    for summary in result["strategies"].values():
        assert {"curve", "labels_to_95", "labels_to_99", "aulc"} <= set(summary)
        assert [n for n, _ in summary["curve"]] == [10, 20, 30]
        assert summary["repeats"] == 2
    assert result["config"]["strategies"] == ["margin", "random"] and result["config"]["repeats"] == 2


def test_history_is_the_first_strategys_first_run(wine_dataset: Dataset) -> None:
    result = compare(wine_dataset, SMALL, ["margin", "random"], repeats=2)
    alone = simulate(wine_dataset, replace(SMALL, strategy="margin"))
    assert _without_timings(result["history"]) == _without_timings(alone["history"])
    assert result["config"]["strategy"] == "margin"


def test_curves_are_averaged_over_the_repeats(wine_dataset: Dataset) -> None:
    result = compare(wine_dataset, replace(SMALL, seed=4), ["entropy"], repeats=2)
    runs = [run(wine_dataset, replace(SMALL, strategy="entropy", seed=seed)) for seed in (4, 5)]
    expected = np.mean([[e["validation"]["accuracy"] for e in r.history] for r in runs], axis=0)
    assert [a for _, a in result["strategies"]["entropy"]["curve"]] == pytest.approx(expected, abs=1e-6)


def test_summary_by_hand() -> None:
    histories = [
        [{"n_labels": 10, "validation": {"accuracy": 0.6}}, {"n_labels": 20, "validation": {"accuracy": 0.9}},
         {"n_labels": 30, "validation": {"accuracy": 1.0}}],
        [{"n_labels": 10, "validation": {"accuracy": 0.8}}, {"n_labels": 20, "validation": {"accuracy": 0.9}},
         {"n_labels": 30, "validation": {"accuracy": 0.96}}],
    ]
    summary = summarize(histories, reference_accuracy=1.0)
    assert summary["curve"] == [[10, 0.7], [20, 0.9], [30, 0.98]]
    assert summary["labels_to_95"] == 30 and summary["labels_to_99"] is None
    assert summary["aulc"] == pytest.approx(((0.7 + 0.9) / 2 + (0.9 + 0.98) / 2) / 2)
    assert summarize(histories[:1], reference_accuracy=0.9)["labels_to_99"] == 20


def test_savings_in_words() -> None:
    result = {"strategies": {
        "random": {"labels_to_99": 200, "curve": [[20, 0.5], [300, 0.9]]},
        "margin": {"labels_to_99": 76, "curve": [[20, 0.5], [300, 0.9]]},
        "qbc": {"labels_to_99": None, "curve": [[20, 0.5], [300, 0.9]]},
    }}
    assert label_savings(result) == [
        "margin reached 99 % of full-label accuracy with 38 % of the labels random needed (76 vs 200).",
        "qbc did not reach 99 % of full-label accuracy within 300 labels; random needed 200.",
    ]
    result["strategies"]["random"]["labels_to_99"] = None
    assert label_savings(result)[0] == ("margin reached 99 % of full-label accuracy with 76 labels; "
                                        "random did not within 300.")
    assert label_savings({"strategies": {"margin": result["strategies"]["margin"]}}) == [
        "margin reached 99 % of full-label accuracy with 76 labels."]


@pytest.mark.parametrize("settings", [
    dict(seed_size=10, batch_size=10, budget=30), dict(seed_size=10, batch_size=25, budget=40),
    dict(seed_size=60, batch_size=40, budget=10_000), dict(seed_size=1, batch_size=7, budget=20),
])
def test_planned_rounds_match_the_run(wine_dataset: Dataset, settings: dict) -> None:
    config = SimulationConfig(metrics="accuracy", **settings)
    assert planned_rounds(wine_dataset, config) == len(run(wine_dataset, config).history)


def test_accuracy_only_rounds_score_the_same_accuracy(wine_dataset: Dataset) -> None:
    full = run(wine_dataset, replace(SMALL, strategy="margin"))
    lean = run(wine_dataset, replace(SMALL, strategy="margin", metrics="accuracy"))
    assert [set(e["validation"]) for e in lean.history] == [{"accuracy"}] * 3
    assert [e["validation"]["accuracy"] for e in lean.history] == [e["validation"]["accuracy"] for e in full.history]


def test_a_tiny_seed_starts_cold_and_says_so(wine_dataset: Dataset) -> None:
    result = compare(wine_dataset, SimulationConfig(seed_size=4, batch_size=4, budget=16, metrics="accuracy"),
                     ["margin"])
    notes = result["strategies"]["margin"]["notes"]
    assert notes and notes[0].startswith("round 1 (4 labels): Cold start: only 4 rows are labelled")
    assert "diversity (k-means) picks rows spread over the data instead of margin" in notes[0]
    assert len(notes) == 2  # rounds 1 and 2 (8 labels); from 12 labels on, margin decides


def test_revealed_rows_all_come_from_the_training_pool(wine_dataset: Dataset) -> None:
    for strategy in ("margin", "coreset", "hybrid", "qbc"):
        one = run(wine_dataset, replace(SMALL, strategy=strategy))
        assert set(one.answers.index) <= set(wine_dataset.rows("train"))
        assert len(one.answers) == 30


def test_the_annotator_errs_only_on_the_noisy_group(loan_dataset: Dataset) -> None:
    config = SimulationConfig(seed_size=20, batch_size=20, budget=100, noisy_group="group=group_b", group_noise=1.0)
    noise = noise_per_row(loan_dataset, loan_dataset.rows("train"), config)
    member = (loan_dataset.frame.loc[loan_dataset.rows("train"), "group"] == "group_b").to_numpy()
    assert (noise[member] == 1.0).all() and (noise[~member] == 0.0).all()
    one = run(loan_dataset, config)
    wrong = one.answers != loan_dataset.labels.loc[one.answers.index]
    in_group = loan_dataset.frame.loc[one.answers.index, "group"] == "group_b"
    assert wrong[in_group].all() and not wrong[~in_group].any()


def test_group_report_shows_the_bias_and_its_effect(loan_dataset: Dataset) -> None:
    config = SimulationConfig(seed_size=20, batch_size=40, budget=100, noisy_group="group=group_b", group_noise=0.5,
                              metrics="accuracy")
    result = compare(loan_dataset, config, ["random"], repeats=2)
    groups = result["strategies"]["random"]["groups"]
    assert groups["column"] == "group" and groups["value"] == "group_b"
    assert groups["label_error"]["rest"] == 0.0
    assert groups["label_error"]["in_group"] == pytest.approx(0.5, abs=0.2)
    assert set(groups["validation_accuracy"]) == {"in_group", "rest"}
    assert set(result["full_label_reference"]["groups"]["validation_accuracy"]) == {"in_group", "rest"}


@pytest.mark.parametrize("change, message", [
    (dict(budget=5), "smaller than the seed set"),
    (dict(strategy="smart"), "Unknown strategy 'smart'"),
    (dict(annotator_noise=1.5), "between 0 and 1"),
    (dict(group_noise=0.3), "needs a group"),
    (dict(noisy_group="group", group_noise=0.3), "not of the form COLUMN=VALUE"),
    (dict(noisy_group="colour=red", group_noise=0.3), "column 'colour' is not in the table"),
    (dict(noisy_group="group=group_z", group_noise=0.3), "has no value 'group_z'; its values include group_a, group_b"),
    (dict(committee="crowd"), "Unknown committee 'crowd'"),
])
def test_impossible_settings_are_refused_with_a_message(loan_dataset: Dataset, change: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        validate(loan_dataset, replace(SimulationConfig(), **change))


def test_no_strategy_or_no_repeat_is_refused(wine_dataset: Dataset) -> None:
    with pytest.raises(DataError, match="at least one query strategy"):
        validate(wine_dataset, SimulationConfig(), [])
    with pytest.raises(DataError, match="Repeats must be at least 1"):
        validate(wine_dataset, SimulationConfig(), ["random"], repeats=0)


def test_labelled_only_keeps_the_stored_split(loan: Sample, loan_schema: Schema) -> None:
    full = Dataset.create("loan", loan.frame, loan_schema, seed=0)
    kept = labelled_only(full)
    assert len(kept.frame) == 2048 and kept.labels.notna().all()
    assert (kept.split == full.split.loc[kept.frame.index]).all()
    assert list(kept.rows("test")) == list(full.rows("test"))
