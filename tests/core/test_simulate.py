"""The simulated annotator and the headless loop behind ``python -m hitl_core simulate``."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hitl_core.data import Dataset, DataError, Schema
from hitl_core.evaluate import METRIC_NAMES
from hitl_core.samples import Sample
from hitl_core.simulate import SimulationConfig, annotate, seed_rows, simulate


@pytest.fixture(scope="module")
def wine_dataset(wine: Sample, wine_schema: Schema) -> Dataset:
    return Dataset.create("wine", wine.frame, wine_schema, seed=0)


def _without_timings(result: dict) -> dict:
    return {**result, "history": [{k: v for k, v in e.items() if k != "fit_seconds"} for e in result["history"]]}


def test_history_grows_by_batch_size_up_to_the_budget(wine_dataset: Dataset) -> None:
    seen: list[dict] = []
    result = simulate(wine_dataset, SimulationConfig(seed_size=10, batch_size=10, budget=40), on_round=seen.append)
    assert [e["n_labels"] for e in result["history"]] == [10, 20, 30, 40]
    assert [e["version"] for e in result["history"]] == [1, 2, 3, 4]
    assert seen == result["history"], "on_round reports every round as it happens"


def test_last_batch_is_cut_to_the_budget(wine_dataset: Dataset) -> None:
    result = simulate(wine_dataset, SimulationConfig(seed_size=10, batch_size=25, budget=40))
    assert [e["n_labels"] for e in result["history"]] == [10, 35, 40]


def test_loop_stops_when_the_pool_is_exhausted(wine_dataset: Dataset) -> None:
    pool_size = len(wine_dataset.rows("train"))
    result = simulate(wine_dataset, SimulationConfig(seed_size=60, batch_size=40, budget=10_000))
    assert [e["n_labels"] for e in result["history"]] == [60, 100, pool_size]


README_METRICS = {"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc",
                  "log_loss", "brier"}  # README, "simulate JSON (stable; later versions only add keys)"


def test_result_follows_the_documented_json_schema(wine_dataset: Dataset) -> None:
    result = simulate(wine_dataset, SimulationConfig(seed_size=10, batch_size=10, budget=20))
    result = json.loads(json.dumps(result))  # JSON-ready: nothing numpy or pandas left inside
    assert {"dataset", "split", "config", "baselines", "history"} <= set(result)
    assert result["dataset"] == {"rows": 178, "classes": ["class_0", "class_1", "class_2"], "target": "target"}
    assert result["split"] == {"train": 106, "validation": 36, "test": 36}
    assert {"model", "seed_size", "batch_size", "budget", "annotator_noise", "seed", "threads"} <= set(result["config"])
    assert result["config"]["budget"] == 20
    assert set(result["baselines"]) == {"majority", "random"}
    for kind in ("majority", "random"):
        assert set(result["baselines"][kind]) == {"validation", "test"}
        assert README_METRICS <= set(result["baselines"][kind]["test"])
    for entry in result["history"]:
        assert {"version", "n_labels", "fit_seconds", "validation", "test"} <= set(entry)
        assert README_METRICS <= set(entry["validation"]) and README_METRICS <= set(entry["test"])
        assert entry["test"]["brier"] is None  # undefined for three classes: null in JSON
    assert set(METRIC_NAMES) == README_METRICS


def test_same_seed_gives_the_same_result(wine_dataset: Dataset) -> None:
    config = SimulationConfig(seed_size=10, batch_size=15, budget=25, annotator_noise=0.2, seed=3)
    first, again = simulate(wine_dataset, config), simulate(wine_dataset, config)
    assert _without_timings(first) == _without_timings(again)
    other = simulate(wine_dataset, SimulationConfig(seed_size=10, batch_size=15, budget=25, annotator_noise=0.2, seed=4))
    assert _without_timings(other)["history"] != _without_timings(first)["history"]


def test_more_labels_beat_the_majority_baseline(wine_dataset: Dataset) -> None:
    result = simulate(wine_dataset, SimulationConfig(seed_size=10, batch_size=30, budget=70))
    last = result["history"][-1]
    assert last["validation"]["accuracy"] > result["baselines"]["majority"]["validation"]["accuracy"] + 0.3


def test_a_lying_annotator_wrecks_the_model(wine_dataset: Dataset) -> None:
    honest = simulate(wine_dataset, SimulationConfig(seed_size=30, batch_size=30, budget=30, annotator_noise=0.0))
    liar = simulate(wine_dataset, SimulationConfig(seed_size=30, batch_size=30, budget=30, annotator_noise=1.0))
    assert honest["history"][-1]["test"]["accuracy"] > 0.8
    assert liar["history"][-1]["test"]["accuracy"] < 0.4


def _truth(n: int = 300) -> pd.Series:
    rng = np.random.default_rng(0)
    return pd.Series(rng.choice(["a", "b", "c"], size=n), index=[f"r{i}" for i in range(n)], dtype=object)


def test_annotator_with_noise_one_is_always_wrong() -> None:
    truth = _truth()
    answers = annotate(truth, ("a", "b", "c"), 1.0, np.random.default_rng(1))
    assert (answers != truth).all()
    assert set(answers) == {"a", "b", "c"}


def test_annotator_without_noise_is_always_right() -> None:
    truth = _truth()
    pd.testing.assert_series_equal(annotate(truth, ("a", "b", "c"), 0.0, np.random.default_rng(1)), truth)


def test_annotator_noise_is_the_share_of_wrong_answers() -> None:
    truth = _truth(4000)
    wrong = (annotate(truth, ("a", "b", "c"), 0.3, np.random.default_rng(2)) != truth).mean()
    assert wrong == pytest.approx(0.3, abs=0.03)


def test_seed_rows_hold_every_class_even_a_rare_one() -> None:
    truth = pd.Series(["a"] * 200 + ["b"], index=[f"r{i}" for i in range(201)], dtype=object)
    rows = seed_rows(truth, 5, np.random.default_rng(0))
    assert len(rows) == 5 and rows.is_unique
    assert set(truth.loc[rows]) == {"a", "b"}


def test_simulation_refuses_unlabeled_rows(wine: Sample, wine_schema: Schema) -> None:
    frame = wine.frame.copy()
    frame.loc[:4, "target"] = None
    with pytest.raises(DataError, match="true label on every row"):
        simulate(Dataset.create("wine", frame, wine_schema), SimulationConfig(budget=20))


# --------------------------------------------------------------------------- honest summaries
def _history(*points: tuple[int, float]) -> list[dict]:
    return [{"n_labels": n, "validation": {"accuracy": a}} for n, a in points]


def test_labels_to_level_intervals_contain_every_repeat() -> None:
    from hitl_core.simulate import repeat_interval, summarize

    histories = [_history((10, 0.5), (20, 0.96), (30, 1.0)), _history((10, 0.5), (20, 0.7), (30, 0.99)),
                 _history((10, 0.95), (20, 0.97), (30, 0.99))]
    summary = summarize(histories, reference_accuracy=1.0)
    assert summary["labels_to_95_runs"] == [20, 30, 10]
    assert summary["labels_to_95_interval"] == [10, 30]  # percentile interval of 3 repeats: the range
    low, high = summary["labels_to_95_interval"]
    assert all(low <= v <= high for v in summary["labels_to_95_runs"])
    assert summary["labels_to_99_runs"] == [30, 30, 30] and summary["labels_to_99_interval"] == [30, 30]
    assert repeat_interval([40, None, 60]) == [40, None]  # one repeat never got there: no upper bound
    assert repeat_interval([None, None]) is None
    values = list(range(100, 1100, 10))  # 100 repeats: the 95 % interval drops the extreme 2.5 % on each side
    low, high = repeat_interval(values)
    assert (low, high) == (120, 1070) and sum(low <= v <= high for v in values) == 96


def _result(margin: list[int | None], random: list[int | None], *, majority: float = 0.4) -> dict:
    from hitl_core.simulate import repeat_interval, target_levels

    def summary(runs):
        known = [r for r in runs if r is not None]
        return {"curve": [[20, 0.5], [200, 0.9]], "repeats": len(runs), "labels_to_99": max(known) if known else None,
                "labels_to_99_runs": runs, "labels_to_99_interval": repeat_interval(runs)}

    return {"strategies": {"random": summary(random), "margin": summary(margin)},
            "baselines": {"majority": {"validation": {"accuracy": majority}}},
            "targets": target_levels(0.9, majority)}


def test_overlapping_intervals_say_there_is_no_clear_difference() -> None:
    from hitl_core.simulate import label_savings

    [sentence] = label_savings(_result([60, 100, 140], [120, 160, 180]))
    assert sentence.startswith("No clear difference between margin and random")
    assert "margin needed 140 (60–140)" in sentence and "random needed 180 (120–180)" in sentence
    [sentence] = label_savings(_result([60, 80, 100], [120, 160, 180]))
    assert sentence.startswith("margin reached 99 % of full-label accuracy with 56 % of the labels random needed")
    assert "the ranges do not overlap (60–100 vs 120–180)" in sentence
    [sentence] = label_savings(_result([60, 80], [120, None]))
    assert sentence.startswith("margin reached") and "120–beyond the budget" in sentence
    neither = _result([None, 100, None], [None, None, 120])
    for summary in neither["strategies"].values():
        summary["labels_to_99"] = None  # the averaged curves never got there; single repeats did
    [sentence] = label_savings(neither)
    assert sentence.startswith("Neither margin nor random reached 99 %")
    assert sentence.endswith("the ranges overlap (100–beyond the budget vs 120–beyond the budget).")
    [sentence] = label_savings(_result([60], [120]))
    assert sentence.endswith("(one run each: add repeats to see whether the difference holds).")


def test_a_level_the_majority_class_reaches_is_called_trivial() -> None:
    from hitl_core.simulate import label_savings, target_levels

    assert target_levels(0.9, 0.86) == {"labels_to_95": {"accuracy": 0.855, "trivial": True},
                                        "labels_to_99": {"accuracy": 0.891, "trivial": False}}
    sentences = label_savings(_result([60, 80], [120, 160], majority=0.895))
    assert sentences[0].startswith("Reaching 99 % of full-label accuracy is trivial here: always answering the "
                                   "majority class already scores 0.895")
    assert not label_savings(_result([60, 80], [120, 160]))[0].startswith("Reaching")


def test_compare_reports_intervals_and_trivial_levels_in_its_json(wine_dataset: Dataset) -> None:
    from hitl_core.simulate import compare

    config = SimulationConfig(seed_size=10, batch_size=20, budget=70, metrics="accuracy")
    result = compare(wine_dataset, config, ["random", "margin"], repeats=3)
    json.dumps(result)
    majority = result["baselines"]["majority"]["validation"]["accuracy"]
    reference = result["full_label_reference"]["validation"]["accuracy"]
    assert result["targets"]["labels_to_95"]["trivial"] == (majority >= 0.95 * reference)
    for summary in result["strategies"].values():
        for key in ("labels_to_95", "labels_to_99"):
            runs, interval = summary[f"{key}_runs"], summary[f"{key}_interval"]
            assert len(runs) == 3
            if interval is None:
                assert runs == [None] * 3
            else:
                assert all(v is None or interval[0] <= v <= (interval[1] or np.inf) for v in runs)


def test_cli_simulate_json_carries_the_intervals(tmp_path, capsys) -> None:
    from hitl_core import cli

    out = tmp_path / "sim.json"
    assert cli.main(["simulate", "sample:wine", "--target", "target", "--strategy", "margin", "random", "--repeats",
                     "2", "--seed-size", "10", "--batch-size", "10", "--budget", "40", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["targets"]) == {"labels_to_95", "labels_to_99"}
    for summary in data["strategies"].values():
        for key in ("labels_to_95", "labels_to_99"):
            interval = summary[f"{key}_interval"]
            assert interval is None or (len(interval) == 2 and interval[0] <= (interval[1] or 40))
            assert len(summary[f"{key}_runs"]) == 2
    assert "(range across repeats)" in capsys.readouterr().out
