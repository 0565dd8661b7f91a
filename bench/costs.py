"""Costs: the expected-cost interval and the triage cost curve, against the plain library calls.

(a) Interval. ``hitl_core.costs.cost_interval`` (a percentile bootstrap of the cost per row as
multinomial draws of the (true, decided) cells, 4,000 resamples) beside ``scipy.stats.bootstrap``
on the per-row costs (percentile, 4,000 resamples, vectorised in batches of 100 resamples), for a
binary target at 10k, 100k and 1M validation rows. Both intervals are printed: they must agree
to within a tenth of their width. Target: <= 150 ms at 1M rows, most of it turning a million text
labels into class positions (the pages price a stored confusion matrix instead: microseconds).

(b) Triage curve. ``hitl_core.costs.triage_costs`` (101 thresholds, cost columns included) beside
``hitl_core.active.triage`` (the same thresholds, accuracy only): the ratio is what pricing adds.
Target: <= 3 × at 1M rows.

    .venv/bin/python -m bench.costs
    .venv/bin/python -m bench.costs --rows 10000 100000 --json bench/results/costs.json

Times are CPU time (median of 3): on a busy shared machine wall time mostly measures the neighbours.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/costs.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from scipy import stats

from hitl_core import active, costs

COSTS = costs.CostModel.binary(("no", "yes"), favourable="yes", wrongly_favourable=10.0, wrongly_unfavourable=2.0,
                               review=1.0, unit="€")
SCIPY_MAX_ROWS = 100_000  # scipy's bootstrap holds resamples × rows values: 1M rows would take minutes


def _cpu(function, repeats: int = 3) -> tuple[float, object]:
    """Median CPU seconds of ``function()`` and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.process_time()
        result = function()
        times.append(time.process_time() - start)
    return statistics.median(times), result


def _data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded labels and probabilities of a so-so binary model (about 80 % right)."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(np.array(["no", "yes"], dtype=object), size=rows, p=[0.7, 0.3])
    p_yes = np.clip(np.where(y_true == "yes", 0.62, 0.38) + rng.normal(0, 0.2, rows), 0, 1)
    return y_true, np.column_stack([1 - p_yes, p_yes])


def bench(rows: int) -> dict:
    y_true, proba = _data(rows)
    y_pred = np.array(COSTS.classes, dtype=object)[proba.argmax(axis=1)]
    ours_s, ours = _cpu(lambda: costs.cost_interval(y_true, y_pred, COSTS, seed=0))
    result = {"rows": rows, "interval_s": ours_s, "interval": [ours.low, ours.high]}
    if rows <= SCIPY_MAX_ROWS:
        per_row = COSTS.array[(y_true == "yes").astype(int), (y_pred == "yes").astype(int)]
        scipy_s, reference = _cpu(lambda: stats.bootstrap(
            (per_row,), np.mean, n_resamples=costs.RESAMPLES, method="percentile", batch=100,
            random_state=np.random.default_rng(0)).confidence_interval, repeats=1)
        width = reference.high - reference.low
        result.update(scipy_s=scipy_s, scipy_interval=[reference.low, reference.high],
                      agree=bool(abs(ours.low - reference.low) < 0.1 * width
                                 and abs(ours.high - reference.high) < 0.1 * width))
    triage_s, _ = _cpu(lambda: active.triage(y_true, proba, COSTS.classes, human_accuracy=0.95))
    priced_s, _ = _cpu(lambda: costs.triage_costs(y_true, proba, COSTS.classes, COSTS, human_accuracy=0.95))
    result.update(triage_s=triage_s, triage_costs_s=priced_s)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = [bench(n) for n in args.rows]
    print("| rows | cost_interval | scipy.stats.bootstrap | ratio | intervals agree | triage_costs | active.triage "
          "| ratio |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|")
    ok = True
    for r in results:
        scipy = f"{r['scipy_s'] * 1000:,.0f} ms" if "scipy_s" in r else "(skipped)"
        ratio = f"{r['interval_s'] / r['scipy_s']:.4f} ×" if r.get("scipy_s") else ""
        priced = r["triage_costs_s"] / max(r["triage_s"], 1e-9)
        print(f"| {r['rows']:,} | {r['interval_s'] * 1000:,.1f} ms | {scipy} | {ratio} | {r.get('agree', '')} | "
              f"{r['triage_costs_s'] * 1000:,.0f} ms | {r['triage_s'] * 1000:,.0f} ms | {priced:.2f} × |")
        if r["rows"] >= 1_000_000:
            ok &= r["interval_s"] <= 0.15 and priced <= 3.0
        ok &= r.get("agree", True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
