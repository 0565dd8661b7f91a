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

from hitl_core import cli, fairness, loop
from hitl_core.data import Dataset, DataError, Schema, check
from hitl_core.fairness import DISPARITIES, GROUP_METRICS, fairness_report
from hitl_core.models import fit
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
    project, first = loop.start_project(store, name="loan", source="sample:loan", frame=loan.frame,
                                        schema=loan_schema, model_kind="logreg")
    assert {r["sensitive"] for r in first.fairness} == {"group", "gender", "group × gender"}
    assert {r["split"] for r in first.fairness} == {"validation"}
    pool = loop.pool_predictions(store.load_model(project.id, 1), store.load_dataset(project),
                                 store.decisions(project.id))
    rows = pool.head(5)
    loop.record(store, project, loop.decisions_for(rows, new_labels=None, user="ana", model_version=1))
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
    _, version = loop.start_project(store, name="wine", source="sample:wine", frame=wine.frame, schema=wine_schema,
                                    model_kind="logreg")
    assert version.fairness == []
    assert fairness.history_frame([version], ["alcohol"], "class_2").empty


def test_multiclass_versions_store_every_class_one_against_the_rest(store: Store, wine: Sample) -> None:
    schema = check(wine.frame, wine.target, sensitive=["alcohol"])[0]
    _, version = loop.start_project(store, name="wine", source="sample:wine", frame=wine.frame, schema=schema,
                                    model_kind="logreg")
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
