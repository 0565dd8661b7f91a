"""Group metrics and disparities: fairlearn's own numbers, readable groups, small groups flagged, loan bias caught."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame, count, demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference,
    equalized_odds_ratio, false_positive_rate, selection_rate, true_positive_rate,
)
from sklearn import metrics as skm

from hitl_core import actions, cli, fairness, jobs, loop
from hitl_core.data import Dataset, DataError, Schema, check
from hitl_core.fairness import DISPARITIES, GROUP_METRICS, fairness_report
from hitl_core.models import fit, predict_with_confidence
from hitl_core.samples import Sample
from hitl_core.simulate import SimulationConfig, simulate
from hitl_core.store import Store

# ten rows per group; positive class "yes"
Y_TRUE = ["yes", "yes", "yes", "no", "no", "no", "no", "yes", "no", "yes",
          "yes", "no", "no", "no", "yes", "no", "no", "no", "yes", "no"]
Y_PRED = ["yes", "yes", "no", "no", "yes", "no", "no", "yes", "yes", "yes",
          "no", "no", "no", "yes", "yes", "no", "no", "no", "no", "no"]
GROUPS = ["a"] * 10 + ["b"] * 10


def _bare_metric_frame(y_true, y_pred, groups) -> MetricFrame:
    """What a person would write by hand with fairlearn on the raw rows (positive class = 1)."""
    t = (np.asarray(y_true) == "yes").astype(int)
    p = (np.asarray(y_pred) == "yes").astype(int)
    return MetricFrame(
        metrics={"count": count, "selection_rate": selection_rate, "tpr": true_positive_rate,
                 "fpr": false_positive_rate, "precision": lambda a, b: skm.precision_score(a, b, zero_division=np.nan),
                 "base_rate": lambda a, b: float(np.mean(a))},
        y_true=t, y_pred=p, sensitive_features=np.asarray(groups, dtype=object))


def _fairlearn_disparities(y_true, y_pred, groups) -> dict[str, float]:
    t = (np.asarray(y_true) == "yes").astype(int)
    p = (np.asarray(y_pred) == "yes").astype(int)
    g = np.asarray(groups, dtype=object)
    return {"demographic_parity_difference": demographic_parity_difference(t, p, sensitive_features=g),
            "demographic_parity_ratio": demographic_parity_ratio(t, p, sensitive_features=g),
            "equalized_odds_difference": equalized_odds_difference(t, p, sensitive_features=g),
            "equalized_odds_ratio": equalized_odds_ratio(t, p, sensitive_features=g)}


def test_numbers_equal_fairlearns_own_on_a_fixed_example() -> None:
    report = fairness_report(Y_TRUE, Y_PRED, sensitive_features=pd.Series(GROUPS, name="g"), classes=("no", "yes"),
                             min_group_size=5)
    bare = _bare_metric_frame(Y_TRUE, Y_PRED, GROUPS).by_group
    for metric in ("count", "selection_rate", "tpr", "fpr", "precision", "base_rate"):
        np.testing.assert_allclose(report.by_group[metric].to_numpy(dtype=float), bare[metric].to_numpy(dtype=float),
                                   rtol=0, atol=1e-12, err_msg=metric)
    for name, expected in _fairlearn_disparities(Y_TRUE, Y_PRED, GROUPS).items():
        assert getattr(report, name) == pytest.approx(expected, abs=1e-12), name
    # and by hand: group a predicts yes 6 times in 10, group b 2 times in 10
    assert report.by_group.loc["a", "selection_rate"] == pytest.approx(0.6)
    assert report.by_group.loc["b", "selection_rate"] == pytest.approx(0.2)
    assert report.demographic_parity_ratio == pytest.approx(0.2 / 0.6)
    assert report.by_group.loc["a", "accuracy"] == pytest.approx(skm.accuracy_score(Y_TRUE[:10], Y_PRED[:10]))
    assert report.by_group.loc["b", "balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(Y_TRUE[10:], Y_PRED[10:]))
    assert report.positive_class == "yes"
    assert report.four_fifths_violated is True and report.below_four_fifths() == ("b",)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counting_cells_first_gives_metricframes_numbers_on_random_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2_000
    y_true = rng.choice(["no", "yes"], n, p=[0.6, 0.4])
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.choice(["no", "yes"], n))
    groups = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    confidence = rng.uniform(0.5, 1.0, n)
    report = fairness_report(y_true, y_pred, sensitive_features=groups, classes=("no", "yes"), confidence=confidence)
    bare = _bare_metric_frame(y_true, y_pred, groups).by_group
    for metric in ("count", "selection_rate", "tpr", "fpr", "precision", "base_rate"):
        np.testing.assert_allclose(report.by_group[metric].to_numpy(dtype=float),
                                   bare.loc[report.by_group.index, metric].to_numpy(dtype=float), atol=1e-12)
    means = pd.Series(confidence).groupby(groups).mean()
    np.testing.assert_allclose(report.by_group["mean_confidence"], means.loc[report.by_group.index], atol=1e-12)
    for name, expected in _fairlearn_disparities(y_true, y_pred, groups).items():
        assert getattr(report, name) == pytest.approx(expected, abs=1e-12), name
    assert report.overall["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))


def test_small_groups_are_flagged_and_left_out_of_the_disparities() -> None:
    rng = np.random.default_rng(3)
    groups = np.array(["a"] * 60 + ["b"] * 60 + ["tiny"] * 4, dtype=object)
    y_true = rng.choice(["no", "yes"], len(groups))
    y_pred = np.where(groups == "tiny", "no", rng.choice(["no", "yes"], len(groups)))  # tiny: never selected
    report = fairness_report(y_true, y_pred, sensitive_features=groups, classes=("no", "yes"), min_group_size=30)
    assert report.too_small == ("tiny",)
    assert report.by_group.loc["tiny", "count"] == 4  # still shown, not merged into another group
    assert report.by_group.loc["tiny", "selection_rate"] == 0.0
    big = groups != "tiny"
    expected = _fairlearn_disparities(y_true[big], y_pred[big], groups[big])
    assert report.demographic_parity_ratio == pytest.approx(expected["demographic_parity_ratio"])
    assert report.demographic_parity_ratio > 0  # the never-selected tiny group would have made it 0
    assert report.to_dict()["too_small"] == ["tiny"]


def test_without_two_judgeable_groups_there_is_no_verdict() -> None:
    report = fairness_report(Y_TRUE, Y_PRED, sensitive_features=GROUPS, classes=("no", "yes"), min_group_size=11)
    assert report.too_small == ("a", "b")
    assert all(v is None for v in report.disparities().values())
    assert report.four_fifths_violated is None
    assert report.to_dict()["four_fifths_violated"] is None


def test_missing_values_form_their_own_group() -> None:
    values = pd.Series(["x", None, "y", np.nan, "x", "y"], dtype="str")  # pandas 3 string dtype keeps NaN
    labels = fairness.group_labels(values)
    assert list(labels.astype(str)) == ["x", "missing", "y", "missing", "x", "y"]
    assert list(labels.cat.categories) == ["x", "y", "missing"]
    report = fairness_report(["yes", "no"] * 3, ["yes", "no"] * 3, sensitive_features=labels, classes=("no", "yes"),
                             min_group_size=1)
    assert list(report.by_group.index) == ["x", "y", "missing"]


def test_numeric_attributes_are_cut_into_readable_ranges(loan: Sample) -> None:
    ages = fairness.group_labels(loan.frame["age"])
    assert list(ages.cat.categories) == ["21–32", "33–44", "45–57", "58–69"]
    assert ages.value_counts().min() > 500  # quantile ranges: groups of similar size
    flags = fairness.group_labels(pd.Series([0.0, 1.0, 1.0, np.nan]))
    assert list(flags.astype(str)) == ["0", "1", "1", "missing"]  # few values: used as they are, no "1.0"
    shares = fairness.group_labels(pd.Series(np.linspace(0.0, 1.0, 101)), bins=2)
    assert list(shares.cat.categories) == ["0–0.5", "0.51–1"]


def test_two_attributes_give_their_intersection(loan: Sample) -> None:
    groups = fairness.sensitive_groups(loan.frame, ["group", "gender"])
    assert groups.name == "group × gender"
    assert list(groups.cat.categories) == ["group_a × female", "group_a × male",
                                           "group_b × female", "group_b × male"]
    with pytest.raises(DataError, match="two for their intersection"):
        fairness.sensitive_groups(loan.frame, ["group", "gender", "age"])
    with pytest.raises(DataError, match="not in the table"):
        fairness.sensitive_groups(loan.frame, ["colour"])


def test_the_positive_class_is_the_last_one_unless_chosen() -> None:
    assert fairness.positive_class(("no", "yes")) == "yes"
    assert fairness.positive_class(("class_0", "class_1", "class_2"), "class_0") == "class_0"
    with pytest.raises(DataError, match="not a class"):
        fairness.positive_class(("no", "yes"), "maybe")


def test_multiclass_rates_are_one_against_the_rest_and_accuracy_is_over_all_classes() -> None:
    y_true = ["a", "b", "c", "a", "b", "c", "a", "a"]
    y_pred = ["a", "c", "c", "b", "b", "c", "a", "c"]
    groups = ["g1"] * 4 + ["g2"] * 4
    report = fairness_report(y_true, y_pred, sensitive_features=groups, classes=("a", "b", "c"), positive="a",
                             min_group_size=1)
    assert report.positive_class == "a"
    assert report.by_group.loc["g1", "selection_rate"] == pytest.approx(1 / 4)  # predicted "a" once in g1
    assert report.by_group.loc["g1", "tpr"] == pytest.approx(1 / 2)  # two true "a" in g1, one found
    assert report.by_group.loc["g1", "accuracy"] == pytest.approx(skm.accuracy_score(y_true[:4], y_pred[:4]))
    assert report.by_group.loc["g2", "accuracy"] == pytest.approx(3 / 4)


def test_undefined_rates_are_not_reported_as_zero() -> None:
    report = fairness_report(["no", "no", "yes", "no"], ["no", "no", "yes", "yes"],
                             sensitive_features=["a", "a", "b", "b"], classes=("no", "yes"), min_group_size=1)
    assert np.isnan(report.by_group.loc["a", "tpr"])  # group a has no true positive to find
    assert np.isnan(report.by_group.loc["a", "precision"])  # and predicted nobody positive
    assert report.to_dict()["by_group"]["a"]["tpr"] is None


def test_the_json_object_has_the_documented_keys() -> None:
    report = fairness_report(Y_TRUE, Y_PRED, sensitive_features=pd.Series(GROUPS, name="afam"), classes=("no", "yes"),
                             confidence=np.linspace(0.5, 1, 20), min_group_size=5)
    data = json.loads(report.to_json())
    assert set(data) == {"sensitive", "split", "positive_class", "min_group_size", "by_group", *DISPARITIES,
                         "four_fifths_violated", "too_small"}
    assert data["sensitive"] == "afam" and data["split"] == "validation" and data["positive_class"] == "yes"
    assert set(data["by_group"]) == {"a", "b"}
    assert set(data["by_group"]["a"]) == set(GROUP_METRICS)
    assert data["by_group"]["a"]["count"] == 10 and isinstance(data["by_group"]["a"]["count"], int)
    assert data["four_fifths_violated"] is True and data["too_small"] == []
    again = fairness.FairnessReport.from_dict(data)
    assert again.disparities() == report.disparities()
    assert again.to_dict() == data


# --------------------------------------------------------------------------- the grouped engine, held to MetricFrame
TOLERANCE = 1e-12


def _assert_same(got, expected, where: str = "report") -> None:
    """Equal JSON-ready objects: same keys in the same order, same types, floats within ``TOLERANCE``."""
    if isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            _assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(got, float) and abs(got - expected) <= TOLERANCE, f"{where}: {got!r} != {expected!r}"
    else:
        assert type(got) is type(expected) and got == expected, f"{where}: {got!r} != {expected!r}"


def _assert_same_reports(got: fairness.FairnessReport, expected: fairness.FairnessReport) -> None:
    _assert_same(got.to_dict(), expected.to_dict())
    _assert_same(got.overall, expected.overall, "overall")
    pd.testing.assert_frame_equal(got.by_group, expected.by_group, check_exact=False, rtol=0, atol=TOLERANCE)


def _awkward_rows(seed: int, classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random rows with every awkward group at once: missing values (None and NaN), two tiny groups, a
    group without positives, one with only positives and one the model never selects."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(400, 1200))
    seen = classes[:3]  # multiclass: the fourth class never occurs
    positive = classes[-1] if len(classes) == 2 else classes[0]
    others = [c for c in seen if c != positive]
    groups = rng.choice(np.array(["north", "south", "east", "west", None, np.nan], dtype=object), n,
                        p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    y_true = rng.choice(seen, n).astype(object)
    y_pred = np.where(rng.random(n) < 0.65, y_true, rng.choice(seen, n)).astype(object)
    groups[:2], groups[2:5] = "tiny", "few"
    groups[5:45], y_true[5:45] = "no positives", rng.choice(others, 40)
    groups[45:80], y_true[45:80] = "only positives", positive
    groups[80:115], y_pred[80:115] = "never selected", rng.choice(others, 35)
    return y_true, y_pred, groups, rng.uniform(0.3, 1.0, n)


@pytest.mark.parametrize("classes", [("no", "yes"), ("a", "b", "c", "d")], ids=["binary", "multiclass"])
@pytest.mark.parametrize("seed", range(5))
def test_the_grouped_engine_gives_the_metricframe_report_on_awkward_random_rows(seed: int,
                                                                                classes: tuple[str, ...]) -> None:
    y_true, y_pred, groups, confidence = _awkward_rows(seed, classes)
    features = fairness.group_labels(pd.Series(groups, name="region")) if seed % 2 else groups  # categorical or raw
    common = dict(sensitive_features=features, classes=classes, min_group_size=20,
                  confidence=confidence if seed != 3 else None)
    for positive in classes:  # multiclass: "d" never occurs, "a" is the positive class of the awkward groups
        grouped = fairness_report(y_true, y_pred, positive=positive, engine="grouped", **common)
        reference = fairness_report(y_true, y_pred, positive=positive, engine="metricframe", **common)
        _assert_same_reports(grouped, reference)
    report = fairness_report(y_true, y_pred, positive=classes[-1] if len(classes) == 2 else "a", engine="grouped",
                             **common)
    assert set(report.too_small) == {"tiny", "few"} and "missing" in report.judged
    assert np.isnan(report.by_group.loc["no positives", "tpr"]) and np.isnan(report.by_group.loc["only positives", "fpr"])
    assert np.isnan(report.by_group.loc["never selected", "precision"])


def _summaries_both_ways(dataset: Dataset, kind: str = "logreg") -> tuple[list[dict], list[dict]]:
    model = loop.fit_on_pool(dataset, dataset.labels, kind)
    truth = dataset.labels.loc[dataset.rows("validation")].dropna()
    preds = predict_with_confidence(model, dataset.features.loc[truth.index], dataset.schema.classes)
    return (fairness.summaries(dataset, truth, preds),
            fairness.summaries(dataset, truth, preds, engine="metricframe"))


def test_summaries_of_a_loan_retrain_equal_the_metricframe_reference(loan: Sample, loan_schema: Schema) -> None:
    dataset = Dataset.create("loan", loan.frame, loan_schema, seed=0)
    grouped, reference = _summaries_both_ways(dataset)
    assert [r["sensitive"] for r in grouped] == ["group", "gender", "group × gender"]
    _assert_same(grouped, reference, "summaries")


def test_summaries_with_binned_and_missing_attributes_equal_the_reference(loan: Sample) -> None:
    frame = loan.frame.copy()
    frame.loc[frame.index[::7], "gender"] = None  # a "missing" group in every set with gender
    schema = check(frame, loan.target, id_column=loan.id_column, sensitive=["group", "gender", "age"], pii=loan.pii)[0]
    grouped, reference = _summaries_both_ways(Dataset.create("loan", frame, schema, seed=1))
    assert len(grouped) == 6 and any("missing" in name for name in grouped[-1]["by_group"])  # gender × age
    _assert_same(grouped, reference, "summaries")


def test_multiclass_summaries_equal_the_reference_for_every_class(wine: Sample) -> None:
    schema = check(wine.frame, wine.target, sensitive=["alcohol", "magnesium"])[0]
    grouped, reference = _summaries_both_ways(Dataset.create("wine", wine.frame, schema, seed=0))
    assert len(grouped) == 3 * 3  # (alcohol, magnesium, both) × three classes
    _assert_same(grouped, reference, "summaries")


def test_summaries_build_no_metricframe(loan: Sample, loan_schema: Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retrain pays for counting, not for fairlearn: the per-retrain path never builds a ``MetricFrame``."""
    dataset = Dataset.create("loan", loan.frame, loan_schema, seed=0)
    model = loop.fit_on_pool(dataset, dataset.labels, "logreg")
    truth = dataset.labels.loc[dataset.rows("validation")].dropna()
    preds = predict_with_confidence(model, dataset.features.loc[truth.index], dataset.schema.classes)

    def refuse(*args, **kwargs):
        raise AssertionError("MetricFrame built on the per-retrain path")

    for name in ("MetricFrame", *DISPARITIES):
        monkeypatch.setattr(fairness, name, refuse)
    assert len(fairness.summaries(dataset, truth, preds)) == 3
    with pytest.raises(AssertionError, match="per-retrain path"):
        fairness.summaries(dataset, truth, preds, engine="metricframe")


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown engine 'fast'"):
        fairness_report(Y_TRUE, Y_PRED, sensitive_features=GROUPS, classes=("no", "yes"), engine="fast")


def _same_number(got: float, expected: float) -> bool:
    return (np.isnan(got) and np.isnan(expected)) or abs(got - expected) <= TOLERANCE


@pytest.mark.parametrize("case", ["random", "a group without positives", "a group without negatives",
                                  "nobody selected", "no true positive anywhere"])
@pytest.mark.parametrize("seed", range(4))
def test_disparities_from_the_per_group_table_equal_fairlearns_own_functions(seed: int, case: str) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 800))
    groups = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    t = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
    p = np.where(rng.random(n) < 0.6, t, (rng.random(n) < 0.5).astype(int))
    if case == "a group without positives":
        t[groups == "c"] = 0
    elif case == "a group without negatives":
        t[groups == "b"] = 1
    elif case == "nobody selected":
        p[:] = 0  # every ratio 0/0: NaN, as in fairlearn
    elif case == "no true positive anywhere":
        p = np.where(t == 1, 0, p)  # TPR ratio NaN, FPR ratio defined: fairlearn's min() keeps the NaN
    codes, names = fairness._group_codes(groups)
    counts = fairness.GroupCounts.of(codes, names, t.astype(str), p.astype(str), None)
    table = counts.rates("1")
    ours = fairness.disparities_from_rates(table["selection_rate"], table["tpr_fairlearn"], table["fpr_fairlearn"])
    theirs = {"demographic_parity_difference": demographic_parity_difference(t, p, sensitive_features=groups),
              "demographic_parity_ratio": demographic_parity_ratio(t, p, sensitive_features=groups),
              "equalized_odds_difference": equalized_odds_difference(t, p, sensitive_features=groups),
              "equalized_odds_ratio": equalized_odds_ratio(t, p, sensitive_features=groups)}
    for name, expected in theirs.items():
        assert _same_number(ours[name], float(expected)), (name, ours[name], expected)
    bare = _bare_metric_frame(np.where(t == 1, "yes", "no"), np.where(p == 1, "yes", "no"), groups).by_group
    for ours_name, theirs_name in (("selection_rate", "selection_rate"), ("tpr_fairlearn", "tpr"),
                                   ("fpr_fairlearn", "fpr"), ("count", "count"), ("base_rate", "base_rate")):
        np.testing.assert_allclose(table[ours_name].to_numpy(dtype=float), bare[theirs_name].to_numpy(dtype=float),
                                   rtol=0, atol=TOLERANCE, err_msg=ours_name)


def _loan_dataset(loan: Sample, *, as_features: bool) -> Dataset:
    schema = check(loan.frame, loan.target, id_column=loan.id_column, sensitive=loan.sensitive, pii=loan.pii,
                   sensitive_as_features=as_features)[0]
    return Dataset.create("loan", loan.frame, schema, seed=0)


@pytest.fixture(scope="module")
def loan_learns_bias(loan: Sample):
    """The loan sample with its sensitive attributes as features: the model can learn the past bias."""
    dataset = _loan_dataset(loan, as_features=True)
    train = dataset.labels.loc[dataset.rows("train")].dropna()
    return dataset, fit("logreg", dataset.schema, dataset.features.loc[train.index], train)


@pytest.mark.parametrize("part", ["validation", "test"])
def test_the_loan_samples_injected_bias_shows_up_as_a_four_fifths_violation(loan_learns_bias, part: str) -> None:
    dataset, model = loan_learns_bias
    report = fairness.breakdown(model, dataset, ["group"], part=part)
    assert report.four_fifths_violated is True
    assert report.below_four_fifths() == ("group_b",)
    assert report.demographic_parity_ratio < 0.6
    rates = report.by_group["selection_rate"]
    assert rates["group_b"] < 0.5 * rates["group_a"]
    assert report.to_dict()["four_fifths_violated"] is True


def test_the_past_decisions_themselves_fail_the_four_fifths_rule(loan: Sample) -> None:
    """Even a model that never sees the group is trained on labels whose base rates differ this much."""
    dataset = _loan_dataset(loan, as_features=False)
    truth = dataset.labels.dropna()
    groups = fairness.sensitive_groups(dataset.frame, ["group"]).loc[truth.index]
    labels = fairness_report(truth, truth, sensitive_features=groups, classes=dataset.schema.classes)
    assert labels.four_fifths_violated is True and labels.below_four_fifths() == ("group_b",)


def test_threshold_optimizer_narrows_the_loan_disparity(loan_learns_bias) -> None:
    dataset, model = loan_learns_bias
    result = fairness.mitigate(model, dataset, ["group"], constraint="demographic_parity", seed=0)
    assert result.unmitigated.four_fifths_violated is True
    assert result.mitigated.demographic_parity_ratio > 0.8 > result.unmitigated.demographic_parity_ratio
    table = result.comparison()
    assert list(table.index) == ["model", "mitigated (demographic parity)"]
    assert abs(table.loc["model", "accuracy"] - table.iloc[1]["accuracy"]) < 0.1  # a modest price in accuracy
    assert np.isnan(result.mitigated.by_group["mean_confidence"]).all()  # no confidence for thresholded labels
    odds = fairness.mitigate(model, dataset, ["group"], constraint="equalized_odds", seed=0)
    assert odds.mitigated.equalized_odds_difference < odds.unmitigated.equalized_odds_difference


def test_mitigation_refuses_an_unknown_constraint(loan_learns_bias) -> None:
    dataset, model = loan_learns_bias
    with pytest.raises(DataError, match="Unknown constraint"):
        fairness.mitigate(model, dataset, ["group"], constraint="luck")


def _decisions(rows: list[tuple[str, str, str, str | None, str]]) -> pd.DataFrame:
    """(row_key, predicted, new_label, old_label, action) → a frame shaped like ``Store.decisions``."""
    frame = pd.DataFrame(rows, columns=["row_key", "predicted_label", "new_label", "old_label", "action"])
    frame.insert(0, "id", range(1, len(frame) + 1))
    frame["user"] = "ana"
    return frame


def test_a_reviewers_bias_shows_in_the_fairness_of_the_humans() -> None:
    keys = [str(i) for i in range(80)]
    groups = pd.Series(["a"] * 40 + ["b"] * 40, index=keys, name="group")
    rows = [(k, "yes", "yes", None, "accept") for k in keys[:40]]  # group a: the person agrees
    rows += [(k, "yes", "no", "yes", "override") for k in keys[40:70]]  # group b: says no to most
    rows += [(k, "yes", "yes", "yes", "accept") for k in keys[70:]]
    human = fairness.human_fairness(_decisions(rows), groups, classes=("no", "yes"), min_group_size=30)
    table = human.by_group
    assert table.loc["a", "override_rate"] == 0 and table.loc["b", "override_rate"] == pytest.approx(30 / 40)
    assert table.loc["b", "agreement_rate"] == pytest.approx(10 / 40)
    assert table.loc["b", "correction_rate"] == pytest.approx(30 / 40)
    assert np.isnan(table.loc["a", "correction_rate"])  # no row of group a had a label to correct
    assert table.loc["b", "human_positive_rate"] == pytest.approx(10 / 40)
    assert table.loc["b", "model_positive_rate"] == 1.0
    assert list(table["decisions"]) == [40, 40]
    new_labels = (_decisions(rows)["new_label"] == "yes").astype(int).to_numpy()
    expected = demographic_parity_ratio(new_labels, new_labels, sensitive_features=groups.to_numpy(dtype=object))
    assert human.human_parity_ratio == pytest.approx(expected) == pytest.approx(0.25)
    assert human.model_parity_ratio == pytest.approx(1.0)


def test_the_humans_fairness_needs_decisions() -> None:
    empty = _decisions([])
    assert fairness.human_fairness(empty, pd.Series(dtype=object, name="g"), classes=("no", "yes")) is None
    few = fairness.human_fairness(_decisions([("1", "no", "yes", None, "override")]),
                                  pd.Series({"1": "a"}, name="g"), classes=("no", "yes"))
    assert few.too_small == ("a",) and few.human_parity_ratio is None


def test_every_model_version_stores_fairness_for_each_attribute_and_pair(store: Store, loan: Sample,
                                                                         loan_schema: Schema) -> None:
    project, first = actions.create_project(store, "ana", name="loan", source="sample:loan", frame=loan.frame,
                                            schema=loan_schema, model_kind="logreg")
    assert {r["sensitive"] for r in first.fairness} == {"group", "gender", "group × gender"}
    assert {r["split"] for r in first.fairness} == {"validation"}
    pool = loop.pool_predictions(store.load_model(project.id, 1), store.load_dataset(project),
                                 store.decisions(project.id))
    rows = pool.head(5)
    actions.record_decisions(store, project.id, "ana", loop.decisions_for(rows, new_labels=None, model_version=1))
    jobs.run_now(store, project.id, "ana")
    versions = store.model_versions(project.id)  # read back from SQL
    assert len(versions) == 2
    history = fairness.history_frame(versions, ["group"], "yes")
    assert list(history["version"]) == [1, 2]
    assert list(history["human labels"]) == [0, 5]
    assert history["demographic_parity_ratio"].between(0, 1).all()
    stored = fairness.find_summary(versions[-1].fairness, ["group", "gender"], "yes")
    assert stored is not None and stored.sensitive == "group × gender"


def test_a_project_without_sensitive_attributes_stores_no_fairness(store: Store, wine: Sample,
                                                                   wine_schema: Schema) -> None:
    _, version = actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                        schema=wine_schema, model_kind="logreg")
    assert version.fairness == []
    assert fairness.history_frame([version], ["alcohol"], "class_2").empty


def test_multiclass_versions_store_every_class_one_against_the_rest(store: Store, wine: Sample) -> None:
    schema = check(wine.frame, wine.target, sensitive=["alcohol"])[0]
    _, version = actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                        schema=schema, model_kind="logreg")
    assert sorted(r["positive_class"] for r in version.fairness) == ["class_0", "class_1", "class_2"]
    report = fairness.find_summary(version.fairness, ["alcohol"], "class_0")
    assert len(report.by_group) == 4 and "–" in report.by_group.index[0]


def test_simulate_history_entries_gain_the_fairness_object(loan: Sample) -> None:
    frame = loan.frame[loan.frame[loan.target].notna()].reset_index(drop=True)
    schema = check(frame, loan.target, id_column=loan.id_column, sensitive=loan.sensitive, pii=loan.pii)[0]
    dataset = Dataset.create("loan", frame, schema, seed=0)
    result = simulate(dataset, SimulationConfig(seed_size=20, batch_size=20, budget=40, sensitive=("group",)))
    result = json.loads(json.dumps(result))
    assert result["config"]["sensitive"] == ["group"]
    assert [e["fairness"]["sensitive"] for e in result["history"]] == ["group", "group"]
    assert all(set(e["fairness"]["by_group"]) == {"group_a", "group_b"} for e in result["history"])
    plain = simulate(dataset, SimulationConfig(seed_size=20, batch_size=20, budget=20))
    assert "fairness" not in plain["history"][0]


REPO_ROOT = Path(__file__).resolve().parents[2]


def test_cli_fairness_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "fairness.json"
    result = subprocess.run(
        [sys.executable, "-m", "hitl_core", "fairness", "sample:loan", "--target", "approved", "--id", "application_id",
         "--pii", "email", "--sensitive", "group", "--sensitive-as-features", "--json", str(out)],
        cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "four-fifths rule: VIOLATED: group_b" in result.stdout
    assert f"wrote {out}" in result.stdout
    data = json.loads(out.read_text())
    assert set(data) == {"sensitive", "split", "positive_class", "min_group_size", "by_group", *DISPARITIES,
                         "four_fifths_violated", "too_small"}
    assert (data["sensitive"], data["split"], data["positive_class"]) == ("group", "validation", "yes")
    assert set(data["by_group"]) == {"group_a", "group_b"}
    for group in data["by_group"].values():
        assert set(group) == set(GROUP_METRICS)
        assert isinstance(group["count"], int)
        assert all(isinstance(group[m], float) for m in GROUP_METRICS if m != "count")
    assert all(isinstance(data[name], float) for name in DISPARITIES)
    assert data["four_fifths_violated"] is True and data["too_small"] == []
    assert sum(g["count"] for g in data["by_group"].values()) == 410  # the labelled validation rows


def test_cli_fairness_of_an_intersection_on_the_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.json"
    code = cli.main(["fairness", "sample:loan", "--target", "approved", "--sensitive", "group", "--sensitive", "gender",
                     "--split", "test", "--min-group-size", "100", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["sensitive"] == "group × gender" and data["split"] == "test"
    assert set(data["too_small"]) == {"group_b × female", "group_b × male"}  # about 65 test rows each
    assert "too small to judge (< 100 rows): group_b × female, group_b × male" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    ([], "needs one sensitive attribute"),
    (["--sensitive", "group", "--sensitive", "gender", "--sensitive", "age"], "got 3"),
    (["--sensitive", "group", "--positive", "maybe"], "Class 'maybe' is not a class"),
    (["--sensitive", "colour"], "not in the table"),
])
def test_cli_fairness_bad_options_exit_2_with_one_line(options: list[str], message: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fairness", "sample:loan", "--target", "approved", *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_an_attribute_named_like_fairlearns_own_columns_is_safe() -> None:
    named = pd.Series(GROUPS, name="y_true")  # MetricFrame keeps y_true, y_pred and sample params as columns
    report = fairness_report(Y_TRUE, Y_PRED, sensitive_features=named, classes=("no", "yes"), min_group_size=5)
    assert report.sensitive == "y_true"
    assert report.by_group.loc["b", "selection_rate"] == pytest.approx(0.2)


def test_large_numbers_get_thousands_separators(loan: Sample) -> None:
    incomes = fairness.group_labels(loan.frame["income"])
    assert all("," in name and "–" in name for name in incomes.cat.categories[1:])
    assert incomes.cat.categories[0].startswith("4,100–")
