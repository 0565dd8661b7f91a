"""Drift of a new batch against the training pool: PSI, KS / chi-square, the drift rule, the JSON and the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from hitl_core.data import DataError, Schema
from hitl_core.drift import (EPSILON, MISSING_BIN, UNSEEN_BIN, DriftReport, binned_counts, drift_report,
                             feature_drift, numeric_edges, prediction_shift, psi)
from hitl_core.models import fit, predict_with_confidence
from hitl_core.samples import load_sample

REPO = Path(__file__).resolve().parents[2]
SCHEMA = Schema(target="y", classes=("no", "yes"), numeric=("income", "age", "score"),
                categorical=("region", "channel"))
REGIONS, REGION_SHARES = ["north", "south", "east", "west"], [0.4, 0.3, 0.2, 0.1]


def population(n: int, seed: int) -> pd.DataFrame:
    """Rows of one fixed distribution; each seed is a fresh random sample of it."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "income": rng.lognormal(10, 0.5, n), "age": rng.normal(40, 12, n).round(),
        "score": rng.uniform(300, 850, n),
        "region": rng.choice(REGIONS, n, p=REGION_SHARES), "channel": rng.choice(["web", "branch"], n, p=[0.7, 0.3]),
        "y": rng.choice(["no", "yes"], n),
    })


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    return population(4000, seed=1)


def shifted(n: int, seed: int) -> pd.DataFrame:
    """A fresh sample with income moved by +2 sd and the region shares reversed; age, score, channel unchanged."""
    batch = population(n, seed)
    batch["income"] += 2 * batch["income"].std()
    batch["region"] = np.random.default_rng(seed + 100).choice(REGIONS, n, p=REGION_SHARES[::-1])
    return batch


# ---- the drift rule on a shifted and an unchanged batch

def test_a_shifted_batch_is_flagged_on_the_shifted_columns_only(pool) -> None:
    result = feature_drift(pool, shifted(1500, seed=2), SCHEMA)
    assert result.loc[["income", "region"], "drifted"].all()
    assert not result.loc[["age", "score", "channel"], "drifted"].any()
    assert list(result.index) == ["income", "age", "score", "region", "channel"]
    assert list(result["test"]) == ["ks", "ks", "ks", "chi2", "chi2"]


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_a_fresh_sample_of_the_same_distribution_is_not_flagged(pool, seed) -> None:
    result = feature_drift(pool, population(1500, seed=seed), SCHEMA)
    assert not result["drifted"].any()
    assert (result["psi"] < 0.05).all()


def test_drifted_needs_both_a_small_p_value_and_a_large_psi(pool) -> None:
    batch = shifted(1500, seed=2)
    default = feature_drift(pool, batch, SCHEMA)
    assert (default["drifted"] == ((default["p_value"] < 0.01) & (default["psi"] >= 0.1))).all()
    strict_psi = feature_drift(pool, batch, SCHEMA, psi_threshold=100.0)
    assert not strict_psi["drifted"].any()  # significant, but not large enough
    lax = feature_drift(pool, population(1500, seed=2), SCHEMA, alpha=1.0, psi_threshold=0.0)
    assert (lax["drifted"] == (lax["p_value"] < 1.0)).all()


def test_a_small_significant_shift_is_not_drift_when_psi_stays_small() -> None:
    big_pool, big_batch = population(50_000, seed=1), population(50_000, seed=2)
    big_batch["score"] += 8  # ~3 % of the range: KS notices on 50k rows, PSI says it hardly matters
    row = feature_drift(big_pool, big_batch, SCHEMA).loc["score"]
    assert row["p_value"] < 0.01 and row["psi"] < 0.1 and not row["drifted"]


# ---- PSI by hand

def test_psi_equals_a_hand_computation() -> None:
    r, b = np.array([50, 30, 20]), np.array([30, 30, 40])
    expected = (0.3 - 0.5) * np.log(0.3 / 0.5) + 0 + (0.4 - 0.2) * np.log(0.4 / 0.2)
    assert psi(r, b) == pytest.approx(expected, rel=1e-12)
    assert psi(r, r) == 0.0


def test_an_empty_bin_counts_as_epsilon_and_a_bin_empty_on_both_sides_adds_nothing() -> None:
    r, b = np.array([10, 10, 0, 0]), np.array([5, 10, 5, 0])
    expected = ((0.25 - 0.5) * np.log(0.25 / 0.5) + (0.5 - 0.5) * 0 + (0.25 - EPSILON) * np.log(0.25 / EPSILON))
    assert psi(r, b) == pytest.approx(expected, rel=1e-12)
    assert EPSILON == 1e-4


def test_numeric_psi_on_the_pool_quantiles_equals_a_hand_computation() -> None:
    reference = pd.Series([1.0, 2, 3, 4], name="x")
    batch = pd.Series([1.0, 1, 4, 9, np.nan], name="x")
    edges = numeric_edges(reference, bins=2)
    assert list(edges) == [2.5]
    counts = binned_counts(reference, batch, "numeric", bins=2)
    assert list(counts["bin"]) == ["(-inf, 2.5]", "(2.5, inf]", MISSING_BIN]
    assert list(counts["reference"]) == [2, 2, 0] and list(counts["batch"]) == [2, 2, 1]
    expected = 2 * (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.2 - EPSILON) * np.log(0.2 / EPSILON)
    schema = Schema(target="y", classes=("a", "b"), numeric=("x",), categorical=())
    result = feature_drift(reference.to_frame(), batch.to_frame(), schema, bins=2)
    assert result.loc["x", "psi"] == pytest.approx(expected, rel=1e-12)
    assert result.loc["x", "missing_batch"] == pytest.approx(0.2)


def test_a_value_on_an_edge_falls_in_the_bin_below_like_pd_cut() -> None:
    reference = pd.Series(np.arange(1.0, 101.0))
    batch = pd.Series(np.arange(1.0, 101.0))
    counts = binned_counts(reference, batch, "numeric")
    edges = np.concatenate([[-np.inf], numeric_edges(reference), [np.inf]])
    by_cut = pd.cut(batch, edges).value_counts(sort=False).to_numpy()
    assert list(counts["batch"][:-1]) == list(by_cut)


# ---- the tests are scipy's own

def test_p_values_are_scipys_own(pool) -> None:
    batch = shifted(700, seed=5)
    batch.loc[batch.index[:30], "age"] = np.nan
    result = feature_drift(pool, batch, SCHEMA)
    for column in SCHEMA.numeric:
        own = ks_2samp(pool[column].dropna(), batch[column].dropna())
        assert result.loc[column, "statistic"] == own.statistic and result.loc[column, "p_value"] == own.pvalue
    for column in SCHEMA.categorical:
        table = pd.concat([pool[column].value_counts(), batch[column].value_counts()], axis=1).fillna(0)
        own = chi2_contingency(table.to_numpy().T)
        assert result.loc[column, "statistic"] == pytest.approx(own.statistic, rel=1e-12)
        assert result.loc[column, "p_value"] == pytest.approx(own.pvalue, rel=1e-12, abs=1e-300)


# ---- missing values and unseen categories

def test_missing_and_unseen_categories_are_bins_of_their_own() -> None:
    reference = pd.Series(["a"] * 6 + ["b"] * 3 + [None], name="c")
    batch = pd.Series(["a", "a", "b", "z", "y", None, None, "  "], name="c")  # blank = missing
    counts = binned_counts(reference, batch, "categorical")
    assert list(counts["bin"]) == ["a", "b", UNSEEN_BIN, MISSING_BIN]
    assert list(counts["reference"]) == [6, 3, 0, 1] and list(counts["batch"]) == [2, 1, 2, 3]
    schema = Schema(target="y", classes=("p", "q"), numeric=(), categorical=("c",))
    row = feature_drift(reference.to_frame(), batch.to_frame(), schema).loc["c"]
    assert row["unseen_batch"] == pytest.approx(2 / 8) and row["missing_batch"] == pytest.approx(3 / 8)
    assert row["psi"] == pytest.approx(psi(np.array([6, 3, 0, 1]), np.array([2, 1, 2, 3])), rel=1e-12)
    own = chi2_contingency(np.array([[6, 3, 0, 1], [2, 1, 2, 3]]))
    assert row["statistic"] == pytest.approx(own.statistic) and row["p_value"] == pytest.approx(own.pvalue)


def test_categories_read_back_as_numbers_match_the_pool() -> None:
    schema = Schema(target="y", classes=("p", "q"), numeric=(), categorical=("code",))
    reference = pd.DataFrame({"code": pd.Series([1, 2, 2, 3] * 25)})
    batch = pd.DataFrame({"code": pd.Series([1.0, 2.0, 2.0, 3.0, np.nan] * 20)})  # a CSV with a gap: floats
    row = feature_drift(reference, batch, schema).loc["code"]
    assert row["unseen_batch"] == 0 and row["missing_batch"] == pytest.approx(0.2)


def test_a_numeric_column_that_goes_all_missing_has_no_test_and_is_not_flagged() -> None:
    schema = Schema(target="y", classes=("p", "q"), numeric=("x",), categorical=())
    row = feature_drift(pd.DataFrame({"x": np.arange(50.0)}), pd.DataFrame({"x": [np.nan] * 10}), schema).loc["x"]
    assert np.isnan(row["p_value"]) and not row["drifted"] and row["psi"] > 1


# ---- bad input

@pytest.mark.parametrize("batch, options, message", [
    (pd.DataFrame({"income": [1.0]}), {}, "lacks the model's feature column(s)"),
    (population(0, seed=1), {}, "has no rows"),
    (population(10, seed=1).assign(age="old"), {}, "Column 'age' of the batch should hold numbers"),
    (population(10, seed=1), {"alpha": 0.0}, "significance level"),
    (population(10, seed=1), {"psi_threshold": -1.0}, "PSI threshold"),
])
def test_bad_input_is_refused_with_a_message(pool, batch, options, message) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        feature_drift(pool, batch, SCHEMA, **options)


# ---- predictions

def test_prediction_shift_reports_class_shares_and_mean_confidence() -> None:
    ref = pd.DataFrame({"predicted": ["a", "a", "b", "b"], "confidence": [0.9, 0.8, 0.7, 0.6],
                        "p(a)": [0.9, 0.8, 0.3, 0.4], "p(b)": [0.1, 0.2, 0.7, 0.6], "p(c)": 0.0})
    new = pd.DataFrame({"predicted": ["a", "b", "b", "b", "b"], "confidence": [0.5] * 5})
    shift = prediction_shift(ref, new)
    assert shift["classes"] == {"a": {"reference": 0.5, "batch": 0.2, "change": pytest.approx(-0.3)},
                                "b": {"reference": 0.5, "batch": 0.8, "change": pytest.approx(0.3)},
                                "c": {"reference": 0.0, "batch": 0.0, "change": 0.0}}
    assert shift["mean_confidence"] == {"reference": pytest.approx(0.75), "batch": 0.5,
                                        "change": pytest.approx(-0.25)}
    assert shift["n_reference"] == 4 and shift["n_batch"] == 5
    assert shift["psi"] == pytest.approx(psi(np.array([2, 2, 0]), np.array([1, 4, 0])))
    json.dumps(shift)


def test_prediction_shift_takes_a_real_models_predictions(pool) -> None:
    model = fit("logreg", SCHEMA, pool[list(SCHEMA.features)], pool["y"])
    ref = predict_with_confidence(model, pool[list(SCHEMA.features)], SCHEMA.classes)
    new = predict_with_confidence(model, shifted(500, seed=9)[list(SCHEMA.features)], SCHEMA.classes)
    shift = prediction_shift(ref, new)
    assert set(shift["classes"]) == {"no", "yes"}
    assert sum(c["batch"] for c in shift["classes"].values()) == pytest.approx(1)
    assert shift["mean_confidence"]["batch"] == pytest.approx(new.confidence.mean())


# ---- the report

def test_the_json_has_exactly_the_documented_shape(pool) -> None:
    batch = shifted(1500, seed=2)
    preds = pd.DataFrame({"predicted": ["no", "yes"], "confidence": [0.6, 0.8]})
    report = drift_report(pool, batch, SCHEMA, reference_preds=preds, batch_preds=preds)
    out = json.loads(json.dumps(report.to_json()))
    assert set(out) == {"features", "drifted", "prediction_shift"}
    assert list(out["features"]) == list(SCHEMA.features)
    for column, entry in out["features"].items():
        assert {"psi", "p_value", "drifted"} <= set(entry)
        assert isinstance(entry["drifted"], bool) and isinstance(entry["psi"], float)
        assert entry["test"] == ("ks" if column in SCHEMA.numeric else "chi2")
    assert sorted(out["drifted"]) == ["income", "region"]
    assert out["drifted"][0] == max(out["drifted"], key=lambda c: out["features"][c]["psi"])
    assert out["prediction_shift"] == prediction_shift(preds, preds)
    assert drift_report(pool, batch, SCHEMA).to_json()["prediction_shift"] is None


def test_an_undefined_number_is_null_in_the_json() -> None:
    schema = Schema(target="y", classes=("p", "q"), numeric=("x",), categorical=())
    report = drift_report(pd.DataFrame({"x": np.arange(50.0)}), pd.DataFrame({"x": [np.nan] * 10}), schema)
    entry = json.loads(json.dumps(report.to_json(), allow_nan=False))["features"]["x"]
    assert entry["p_value"] is None and entry["statistic"] is None and entry["drifted"] is False


def _report(psis: dict[str, float], drifted: set[str]) -> DriftReport:
    frame = pd.DataFrame({"psi": psis, "drifted": {c: c in drifted for c in psis}})
    return DriftReport(features=frame, prediction_shift=None)


@pytest.mark.parametrize("psis, drifted, sentence", [
    ({"age": 0.18, "income": 0.42, **{f"f{i}": 0.01 for i in range(11)}}, {"age", "income"},
     "income and age drifted (PSI 0.42, 0.18); 11 other features did not."),
    ({"income": 0.42, "age": 0.02}, {"income"}, "income drifted (PSI 0.42); 1 other feature did not."),
    ({"a": 0.3, "b": 0.2, "c": 0.5}, {"a", "b", "c"}, "c, a and b drifted (PSI 0.50, 0.30, 0.20)."),
    ({"a": 0.03, "b": 0.01}, set(), "No feature drifted (2 compared; largest PSI 0.03 (a))."),
])
def test_the_sentence_names_the_drifted_features_in_plain_words(psis, drifted, sentence) -> None:
    assert _report(psis, drifted).sentence() == sentence


# ---- the CLI, as a user runs it

def cli(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hitl_core", *args, "--db", db], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin"})


@pytest.fixture(scope="module")
def loan_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int, Path]:
    folder = tmp_path_factory.mktemp("drift")
    db = f"sqlite:///{folder / 'hitl.db'}"
    done = cli("project", "create", "sample:loan", "--target", "approved", "--id", "application_id",
               "--sensitive", "group", "--pii", "email", "--favourable", "yes", db=db)
    assert done.returncode == 0, done.stderr
    return db, json.loads(done.stdout)["project"], folder


def test_cli_flags_the_shifted_column_of_a_new_table(loan_project) -> None:
    db, project_id, folder = loan_project
    frame = load_sample("loan").frame.sample(800, random_state=5)
    frame["income"] += 2 * frame["income"].std()
    table = folder / "shifted.csv"
    frame.drop(columns="approved").to_csv(table, index=False)
    done = cli("drift", "--project", str(project_id), str(table), "--json", db=db)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"features", "drifted", "prediction_shift"}
    assert out["drifted"] == ["income"]
    assert "group" not in out["features"] and "email" not in out["features"]  # sensitive and PII are no features
    assert out["prediction_shift"]["version"] == 1 and set(out["prediction_shift"]["classes"]) == {"no", "yes"}

    text = cli("drift", "--project", str(project_id), str(table), "--alpha", "0.001", "--psi", "0.2", db=db)
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip().splitlines()[-1] == "income drifted (PSI " + \
        f"{out['features']['income']['psi']:.2f}); 7 other features did not."
    assert "p < 0.001 and PSI >= 0.2" in text.stdout and "mean confidence" in text.stdout


def test_cli_refuses_a_table_without_the_features_with_one_line(loan_project) -> None:
    db, project_id, folder = loan_project
    table = folder / "other.csv"
    table.write_text("a,b\n1,2\n")
    done = cli("drift", "--project", str(project_id), str(table), "--json", db=db)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "lacks the model's feature column(s)" in lines[0] and "Traceback" not in done.stderr
