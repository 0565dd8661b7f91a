"""How long a fairness breakdown takes, beside the bare fairlearn ``MetricFrame`` call it wraps.

Breakdown: ``hitl_core.fairness.sensitive_groups`` (readable groups, a numeric attribute cut into
quartile ranges, the intersection of two attributes) + ``fairness_report`` (the per-group table:
count, base rate, selection rate, accuracy, balanced accuracy, TPR, FPR, precision, mean
confidence; fairlearn's four disparities; too-small groups; the four-fifths rule).
Bare: ``MetricFrame(metrics=<the same nine>, y_true, y_pred, sensitive_features=<the two
attributes, already binned>)`` on the raw rows, as one would write it by hand; it computes no
disparity, so it is the generous side of the comparison. The last column adds fairlearn's
``demographic_parity_*`` and ``equalized_odds_*`` to the bare call: everything the breakdown gives.

Target: breakdown / bare <= 1.2 at 50k and 500k rows, 2 attributes x 4 groups (16 intersections),
with the per-group numbers equal to the bare call's.

    .venv/bin/python -m bench.fairness                       # 50k and 500k rows
    .venv/bin/python -m bench.fairness --rows 50000 --repeats 3 --json bench/results/fairness.json
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

from hitl_core.fairness import GROUP_METRICS, fairness_report, sensitive_groups

RATIO_TARGET = 1.2
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


def breakdown(frame: pd.DataFrame):
    groups = sensitive_groups(frame, ["region", "age"])
    return fairness_report(frame["y_true"].to_numpy(), frame["y_pred"].to_numpy(), sensitive_features=groups,
                           classes=CLASSES, confidence=frame["confidence"].to_numpy(), min_group_size=30)


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


def run(rows: int, repeats: int) -> dict:
    frame = make_rows(rows)
    binned = pd.DataFrame({"region": frame["region"],
                           "age": sensitive_groups(frame, ["age"]).astype(str)})  # the bare call gets groups ready-made
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_s, report = _median_seconds(lambda: breakdown(frame), repeats)
        bare_s, reference = _median_seconds(lambda: bare(frame, binned), repeats)
        full_s, (_, disparities) = _median_seconds(lambda: bare_with_disparities(frame, binned), 1)
    expected = reference.by_group.copy()
    expected.index = [f"{r} × {a}" for r, a in expected.index]
    got = report.by_group.loc[expected.index, list(GROUP_METRICS)].astype(float)
    gap = float(np.nanmax(np.abs(got.to_numpy() - expected[list(GROUP_METRICS)].to_numpy(dtype=float))))
    gap = max(gap, *(abs(getattr(report, k) - v) for k, v in disparities.items()))
    return {"rows": rows, "groups": len(report.by_group), "breakdown_s": round(ours_s, 4), "bare_s": round(bare_s, 4),
            "ratio": round(ours_s / bare_s, 4), "bare_with_disparities_s": round(full_s, 4), "max_abs_gap": gap,
            "repeats": repeats, "ok": ours_s / bare_s <= RATIO_TARGET and gap < 1e-9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 500_000])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median); 1 above 200k rows")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    print(f"# bench.fairness — python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load {tuple(round(x, 2) for x in os.getloadavg())}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("# 2 sensitive attributes x 4 groups (region; age in quartile ranges), intersection = 16 groups\n")
    print("| rows | groups | bare MetricFrame s | breakdown s | ratio | + fairlearn disparities s | max gap | target "
          "| result |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|---|")
    results = []
    for rows in args.rows:
        result = run(rows, args.repeats if rows <= 200_000 else 1)
        results.append(result)
        print(f"| {rows:,} | {result['groups']} | {result['bare_s']:.3f} | {result['breakdown_s']:.3f} | "
              f"{result['ratio']:.3f} | {result['bare_with_disparities_s']:.3f} | {result['max_abs_gap']:.1e} | "
              f"ratio<={RATIO_TARGET} | {'PASS' if result['ok'] else 'FAIL'} |", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
