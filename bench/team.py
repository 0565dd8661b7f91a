"""How long the Team page's figures take, beside the plain library calls they wrap.

* **agreement**: ``hitl_core.agreement.agreement`` on a vote frame (people × rows, 30 % of ratings
  missing) against the bare calls on arrays prepared by hand: ``cohen_kappa_score`` per pair on the
  rows both rated, ``krippendorff.alpha`` on the coded matrix and statsmodels' ``fleiss_kappa`` on the
  rows with the most common rater count. Target: ratio <= 3 (the engine also pivots the votes, counts
  percent agreement and the class confusion between people).
* **quality**: ``hitl_core.quality.person_quality`` on every decision (no library equivalent: time only).
  Target: under 1 s at 50k decisions.
* **label issues**: ``hitl_core.label_issues.find_label_issues`` against the bare
  ``cross_val_predict(..., method="predict_proba")`` + cleanlab's ``get_label_quality_scores`` and
  ``find_label_issues`` on the same rows, selected beforehand. Target: ratio <= 1.3 (the engine also
  selects the labelled pool rows and their features, and sorts the result).
* **gold in the queue**: ``hitl_core.active.mix_gold`` on a ranked pool, beside the ``rank_pool`` that
  made it (cached per decision; the mixing runs on every page run). Target: under 0.1 s.

    .venv/bin/python -m bench.team                  # 10k rows × 5 people; 50k decisions; 10k-row label check
    .venv/bin/python -m bench.team --rows 2000 --json bench/results/team.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/team.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OMP_NUM_THREADS", "1")

import krippendorff  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from cleanlab.filter import find_label_issues  # noqa: E402
from cleanlab.rank import get_label_quality_scores  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.metrics import cohen_kappa_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa  # noqa: E402

from hitl_core import active, agreement, label_issues, quality  # noqa: E402
from hitl_core.data import Dataset, check  # noqa: E402
from hitl_core.models import build_pipeline, threads_limited  # noqa: E402

CLASSES = ("a", "b", "c")


def _timed(call, repeats: int) -> float:
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_votes(rows: int, people: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A vote frame and the same ratings as a people × rows code matrix (NaN = missing)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, rows)
    codes = np.where(rng.random((people, rows)) < 0.8, truth, rng.integers(0, 3, (people, rows))).astype(float)
    codes[rng.random((people, rows)) < 0.3] = np.nan
    p, r = np.nonzero(~np.isnan(codes))
    votes = pd.DataFrame({"row_key": r.astype(str), "user": [f"p{i}" for i in p],
                          "label": np.asarray(CLASSES, dtype=object)[codes[p, r].astype(int)],
                          "created_at": pd.Timestamp("2026-11-02", tz="UTC") + pd.to_timedelta(r * 20, unit="s"),
                          "predicted_label": "a", "confidence": rng.uniform(0.4, 1.0, len(p))})
    return votes, codes


def bare_agreement(codes: np.ndarray) -> None:
    """The three statistics straight from the libraries on arrays already in their shape."""
    multi = codes[:, (~np.isnan(codes)).sum(axis=0) >= 2]
    for i, j in itertools.combinations(range(len(multi)), 2):
        both = ~np.isnan(multi[i]) & ~np.isnan(multi[j])
        cohen_kappa_score(multi[i, both], multi[j, both])
    krippendorff.alpha(reliability_data=multi, level_of_measurement="nominal")
    counts = (~np.isnan(multi)).sum(axis=0)
    k = np.bincount(counts).argmax()
    rows = multi[:, counts == k].T
    fleiss_kappa(aggregate_raters(np.array([r[~np.isnan(r)] for r in rows]).astype(int))[0])


def bench_agreement(rows: int, people: int, repeats: int) -> dict:
    votes, codes = make_votes(rows, people)
    engine = _timed(lambda: agreement.agreement(votes), repeats)
    bare = _timed(lambda: bare_agreement(codes), repeats)
    return {"what": f"agreement, {rows:,} rows × {people} people", "engine_s": engine, "bare_s": bare,
            "ratio": engine / bare, "target": "ratio <= 3", "ok": engine / bare <= 3}


def bench_quality(decisions: int, repeats: int) -> dict:
    votes, _ = make_votes(decisions // 4, 5, seed=1)
    votes = votes.iloc[:decisions]
    gold = pd.Series("a", index=[str(i) for i in range(0, decisions // 4, 10)])
    engine = _timed(lambda: quality.person_quality(votes, gold), repeats)
    return {"what": f"quality, {len(votes):,} decisions", "engine_s": engine, "bare_s": None, "ratio": None,
            "target": "< 1 s", "ok": engine < 1.0}


def bench_label_issues(rows: int, repeats: int) -> dict:
    X, y = make_classification(rows, n_features=10, n_informative=6, n_classes=3, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)]).assign(
        target=np.asarray(CLASSES, dtype=object)[y])
    schema = check(frame, "target")[0]
    dataset = Dataset.create("bench", frame, schema, seed=0)
    labels = dataset.labels.astype(str)
    pool = labels.loc[dataset.rows("train")]
    X_pool = dataset.features.loc[pool.index]

    def bare() -> None:
        with threads_limited(1):
            proba = cross_val_predict(build_pipeline("logreg", schema, seed=0), X_pool, pool.to_numpy(),
                                      cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
        codes = pool.map({c: i for i, c in enumerate(sorted(CLASSES))}).to_numpy()
        get_label_quality_scores(codes, proba)
        find_label_issues(codes, proba, n_jobs=1)

    engine = _timed(lambda: label_issues.find_label_issues(dataset, labels, "logreg"), repeats)
    plain = _timed(bare, repeats)
    return {"what": f"label issues, {len(pool):,} pool rows (logreg, 5 folds)", "engine_s": engine, "bare_s": plain,
            "ratio": engine / plain, "target": "ratio <= 1.3", "ok": engine / plain <= 1.3}


def bench_gold(rows: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    p = rng.random(rows)
    proba = pd.DataFrame({"p(a)": p, "p(b)": 1 - p}, index=[f"k{i}" for i in range(rows)])
    ranking = _timed(lambda: active.rank_pool("margin", proba, batch_size=20), repeats)
    ranked = active.rank_pool("margin", proba, batch_size=20)
    gold = list(proba.index[:: max(1, rows // 500)])
    active.mix_gold(ranked, gold, 0.1)  # builds the index's hash table once, as the page's first run does
    mixing = _timed(lambda: active.mix_gold(ranked, gold, 0.1, seed=1), repeats)
    return {"what": f"gold into the queue, {rows:,} pool rows", "engine_s": mixing, "bare_s": ranking,
            "ratio": mixing / ranking, "target": "< 0.1 s", "ok": mixing < 0.1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows for agreement and the label check")
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--pool", type=int, default=1_000_000, help="pool rows for gold mixing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = [bench_agreement(args.rows, args.people, args.repeats), bench_quality(args.decisions, args.repeats),
               bench_label_issues(args.rows, args.repeats), bench_gold(args.pool, args.repeats)]
    table = pd.DataFrame(results)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
