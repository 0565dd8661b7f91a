"""How long fairness takes: a breakdown beside the bare fairlearn ``MetricFrame`` call it wraps, and the
summaries stored with every model version (grouped engine) beside their ``MetricFrame`` reference.

Breakdown: ``hitl_core.fairness.sensitive_groups`` (readable groups, a numeric attribute cut into
quartile ranges, the intersection of two attributes) + ``fairness_report`` (the per-group table:
count, base rate, selection rate, accuracy, balanced accuracy, TPR, FPR, precision, mean
confidence; fairlearn's four disparities; too-small groups; the four-fifths rule).
Bare: ``MetricFrame(metrics=<the same nine>, y_true, y_pred, sensitive_features=<the two
attributes, already binned>)`` on the raw rows, as one would write it by hand; it computes no
disparity, so it is the generous side of the comparison. The "+ disparities" column adds fairlearn's
``demographic_parity_*`` and ``equalized_odds_*`` to the bare call: everything the breakdown gives;
the "grouped" column is the same breakdown on ``engine="grouped"`` (one table of counts).
Target: breakdown / bare <= 1.2 at 50k and 500k rows, 2 attributes x 4 groups (16 intersections),
with the per-group numbers equal to the bare call's.

Summaries per retrain: ``hitl_core.fairness.summaries`` as ``loop.train_and_evaluate`` calls it on
the demo (loan sample, logistic regression, validation split: 3 attribute sets, 3 reports), on the
grouped engine (the default) and on ``engine="metricframe"`` (the reference: 5 ``MetricFrame`` per
report), beside the whole ``train_and_evaluate``. Target: the summaries cost at most a fifth of the
retrain, and equal the reference to 1e-12.

    .venv/bin/python -m bench.fairness                       # 50k and 500k rows, then the summaries row
    .venv/bin/python -m bench.fairness --rows 50000 --repeats 3 --json bench/results/fairness.json
    .venv/bin/python -m bench.fairness --rows                # the summaries row only
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/fairness.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame, demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference,
    equalized_odds_ratio, false_positive_rate, selection_rate, true_positive_rate,
)
from sklearn import metrics as skm

from hitl_core import loop
from hitl_core.data import Dataset, check
from hitl_core.fairness import GROUP_METRICS, fairness_report, sensitive_groups, summaries
from hitl_core.models import predict_with_confidence
from hitl_core.samples import load_sample

RATIO_TARGET = 1.2
SHARE_TARGET = 0.2  # summaries / retrain
CLASSES = ("no", "yes")


def make_rows(rows: int, seed: int = 0) -> pd.DataFrame:
    """Two sensitive attributes of four groups each (a category, and ages cut into quartiles), labels,
    predictions that favour one region, and a confidence per row."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2, 0.1])
    age = rng.integers(18, 80, rows)
    truth = rng.random(rows) < 0.45
    favour = np.where(region == "north", 0.15, 0.0)
    predicted = np.where(rng.random(rows) < 0.75, truth, rng.random(rows) < 0.45 + favour)
    return pd.DataFrame({"region": region, "age": age, "y_true": np.where(truth, "yes", "no"),
                         "y_pred": np.where(predicted, "yes", "no"), "confidence": rng.uniform(0.5, 1.0, rows)})


def breakdown(frame: pd.DataFrame, engine: str = "metricframe"):
    groups = sensitive_groups(frame, ["region", "age"])
    return fairness_report(frame["y_true"].to_numpy(), frame["y_pred"].to_numpy(), sensitive_features=groups,
                           classes=CLASSES, confidence=frame["confidence"].to_numpy(), min_group_size=30,
                           engine=engine)


def _bare_metrics():
    return {
        "count": lambda t, p: len(t),
        "base_rate": lambda t, p: float(np.mean(t)),
        "selection_rate": selection_rate,
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "precision": lambda t, p: skm.precision_score(t, p, zero_division=np.nan),
        "mean_confidence": lambda t, p, confidence: float(np.mean(confidence)),
    }


def bare(frame: pd.DataFrame, binned: pd.DataFrame) -> MetricFrame:
    return MetricFrame(metrics=_bare_metrics(), y_true=(frame["y_true"] == "yes").to_numpy(dtype=int),
                       y_pred=(frame["y_pred"] == "yes").to_numpy(dtype=int), sensitive_features=binned,
                       sample_params={"mean_confidence": {"confidence": frame["confidence"].to_numpy()}})


def bare_with_disparities(frame: pd.DataFrame, binned: pd.DataFrame) -> tuple[MetricFrame, dict]:
    frame_ = bare(frame, binned)
    t = (frame["y_true"] == "yes").to_numpy(dtype=int)
    p = (frame["y_pred"] == "yes").to_numpy(dtype=int)
    return frame_, {f.__name__: f(t, p, sensitive_features=binned) for f in (
        demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference, equalized_odds_ratio)}


def _median_seconds(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _gap(report, expected: pd.DataFrame, disparities: dict) -> float:
    got = report.by_group.loc[expected.index, list(GROUP_METRICS)].astype(float)
    gap = float(np.nanmax(np.abs(got.to_numpy() - expected[list(GROUP_METRICS)].to_numpy(dtype=float))))
    return max(gap, *(abs(getattr(report, k) - v) for k, v in disparities.items()))


def run(rows: int, repeats: int) -> dict:
    frame = make_rows(rows)
    binned = pd.DataFrame({"region": frame["region"],
                           "age": sensitive_groups(frame, ["age"]).astype(str)})  # the bare call gets groups ready-made
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_s, report = _median_seconds(lambda: breakdown(frame), repeats)
        grouped_s, grouped = _median_seconds(lambda: breakdown(frame, "grouped"), repeats)
        bare_s, reference = _median_seconds(lambda: bare(frame, binned), repeats)
        full_s, (_, disparities) = _median_seconds(lambda: bare_with_disparities(frame, binned), 1)
    expected = reference.by_group.copy()
    expected.index = [f"{r} × {a}" for r, a in expected.index]
    gap = max(_gap(report, expected, disparities), _gap(grouped, expected, disparities))
    return {"rows": rows, "groups": len(report.by_group), "breakdown_s": round(ours_s, 4), "bare_s": round(bare_s, 4),
            "ratio": round(ours_s / bare_s, 4), "bare_with_disparities_s": round(full_s, 4),
            "grouped_s": round(grouped_s, 4), "max_abs_gap": gap,
            "repeats": repeats, "ok": ours_s / bare_s <= RATIO_TARGET and gap < 1e-9}


def _max_gap(got, expected) -> float:
    """Largest difference between two JSON-ready objects; inf when their shape, keys or None-ness differ."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or list(got) != list(expected):
            return float("inf")
        return max((_max_gap(got[k], expected[k]) for k in expected), default=0.0)
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return float("inf")
        return max((_max_gap(a, b) for a, b in zip(got, expected)), default=0.0)
    if isinstance(expected, float) and isinstance(got, float):
        return abs(got - expected)
    return 0.0 if got == expected and type(got) is type(expected) else float("inf")


def run_summaries(repeats: int) -> dict:
    """The fairness summaries of one demo retrain: grouped engine vs the MetricFrame reference."""
    sample = load_sample("loan")
    schema, _ = check(sample.frame, sample.target, id_column=sample.id_column, sensitive=sample.sensitive,
                      pii=sample.pii)
    dataset = Dataset.create(sample.title, sample.frame, schema)
    model = loop.fit_on_pool(dataset, dataset.labels, "logreg")
    truth = dataset.labels.loc[dataset.rows("validation")].dropna()
    preds = predict_with_confidence(model, dataset.features.loc[truth.index], schema.classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summaries(dataset, truth, preds)  # warm-up (imports, caches) for both sides
        reference_s, reference = _median_seconds(lambda: summaries(dataset, truth, preds, engine="metricframe"),
                                                 repeats)
        grouped_s, grouped = _median_seconds(lambda: summaries(dataset, truth, preds), repeats)
        retrain_s, _ = _median_seconds(lambda: loop.train_and_evaluate(dataset, dataset.labels, "logreg"), repeats)
    gap = _max_gap(grouped, reference)
    share = grouped_s / retrain_s
    return {"workload": "loan, logreg, validation", "reports": len(grouped), "rows": len(truth),
            "metricframe_s": round(reference_s, 4), "grouped_s": round(grouped_s, 5),
            "speedup": round(reference_s / grouped_s, 1), "retrain_s": round(retrain_s, 4),
            "share_of_retrain": round(share, 4), "max_abs_gap": gap, "repeats": repeats,
            "ok": share <= SHARE_TARGET and gap <= 1e-12}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[50_000, 500_000],
                        help="breakdown sizes; none: only the summaries row")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median); 1 above 200k rows")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    print(f"# bench.fairness — python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load {tuple(round(x, 2) for x in os.getloadavg())}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    results = []
    if args.rows:
        print("# 2 sensitive attributes x 4 groups (region; age in quartile ranges), intersection = 16 groups\n")
        print("| rows | groups | bare MetricFrame s | breakdown s | ratio | + fairlearn disparities s | grouped s "
              "| max gap | target | result |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for rows in args.rows:
        result = run(rows, args.repeats if rows <= 200_000 else 1)
        results.append(result)
        print(f"| {rows:,} | {result['groups']} | {result['bare_s']:.3f} | {result['breakdown_s']:.3f} | "
              f"{result['ratio']:.3f} | {result['bare_with_disparities_s']:.3f} | {result['grouped_s']:.4f} | "
              f"{result['max_abs_gap']:.1e} | ratio<={RATIO_TARGET} | {'PASS' if result['ok'] else 'FAIL'} |",
              flush=True)
    per_retrain = run_summaries(max(args.repeats, 5))
    print("\n# summaries per retrain: what loop.train_and_evaluate stores with every model version\n")
    print("| workload | reports | MetricFrame reference s | grouped s | speed-up | retrain s | share of retrain "
          "| max gap | target | result |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    print(f"| summaries per retrain ({per_retrain['workload']}, {per_retrain['rows']} rows) | "
          f"{per_retrain['reports']} | {per_retrain['metricframe_s']:.3f} | {per_retrain['grouped_s']:.4f} | "
          f"{per_retrain['speedup']:.0f}× | {per_retrain['retrain_s']:.3f} | {per_retrain['share_of_retrain']:.1%} | "
          f"{per_retrain['max_abs_gap']:.1e} | share<={SHARE_TARGET:.0%}, gap<=1e-12 | "
          f"{'PASS' if per_retrain['ok'] else 'FAIL'} |", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"breakdown": results, "summaries_per_retrain": per_retrain}, indent=2))
        print(f"\nwrote {args.json}")
    return 0 if all(r["ok"] for r in results) and per_retrain["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
