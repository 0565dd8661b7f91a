"""How long a correction takes to be saved, and then to become new metrics, versus plain scikit-learn.

Two timings per correction, on a SQLite file, for a project with retrain policy "every":

* **click → committed**: ``hitl_core.actions.record_decisions(store, project_id, actor, requests)``
  (validation, conflict check, the decisions and their events in one transaction, and the queued
  retrain job the policy asks for). This is what a person waits for after a click.
* **retrain** (engine): what a worker does with that job, ``loop.train_snapshot(store, project)``
  (load the dataset and the decisions, effective labels, fit, baselines, validation + test metrics)
  then ``actions.record_version(store, project_id, trained, ...)`` (serialise with skops and store the version,
  move ``project.current_version``). The queued job itself is left alone; no worker runs here.

Plain: ``build_pipeline(kind, schema).fit(X_train, y_train)``, ``predict_proba`` on validation and the
same eight metrics with sklearn functions, data already in memory.

Retrain and plain runs alternate (same machine load); each is timed in wall seconds (the targets)
and in process CPU seconds (the "CPU ratio", steadier on a shared box). The retrain's time is split
into categories by wrapping its public functions from outside (``instrumented``); hitl_core is not edited.
For hgb the plain fit also runs with the library's default threads, to show OpenMP oversubscription.

Targets: retrain / plain <= 1.3 for every model family, and click + retrain <= 1 s at 50k rows with
logreg. The exit status is 0 only if every configuration meets them. The click time is reported.

    .venv/bin/python -m bench.loop                         # 10k and 50k rows, logreg hgb rf, 3 repeats
    .venv/bin/python -m bench.loop --rows 10000 --models logreg --repeats 5 --profile 15
    .venv/bin/python -m bench.loop --pass-dataset          # train_snapshot(..., dataset=cached)
    .venv/bin/python -m bench.loop --sensitive region       # adds the per-retrain fairness step
    .venv/bin/python -m bench.loop --json bench/results/loop.json
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/loop.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_info, threadpool_limits

from hitl_core import actions, loop, model_files
from hitl_core.config import Settings
from hitl_core.data import Dataset, check
from hitl_core.models import BASELINE_KINDS, MODEL_KINDS, build_pipeline
from hitl_core.store import Store

RATIO_TARGET = 1.3
LOGREG_50K_TARGET_SECONDS = 1.0
N_OVERRIDES = 3
ACTOR = "bench"


# --------------------------------------------------------------------------- data
def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """10 numeric columns (2% missing in one), 3 categoricals (two carry signal, one is noise), a yes/no target."""
    X, y = make_classification(n_samples=rows, n_features=10, n_informative=6, n_redundant=2, n_classes=2,
                               weights=[0.6], flip_y=0.03, class_sep=0.8, random_state=seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
    frame.loc[rng.random(rows) < 0.02, "x3"] = np.nan
    frame["region"] = pd.qcut(X[:, 0] + rng.normal(0, 0.5, rows), 5,
                              labels=["north", "south", "east", "west", "centre"]).astype(str)
    frame["segment"] = pd.qcut(X[:, 1] + 0.8 * y + rng.normal(0, 1, rows), 8, labels=list("ABCDEFGH")).astype(str)
    frame["channel"] = rng.choice(["web", "store", "phone"], rows)
    frame["target"] = np.where(y == 1, "yes", "no")
    return frame


# --------------------------------------------------------------------------- plain scikit-learn
def plain_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, float]:
    """The engine's eight validation metrics, straight from sklearn (binary target, last class positive)."""
    y_pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)].astype(str)
    pos = classes[1]
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        "precision_macro": skm.precision_score(y_true, y_pred, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y_true, y_pred, average="macro", zero_division=0),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(y_true == pos, proba[:, 1]),
        "log_loss": skm.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=classes),  # the engine's clip
        "brier": skm.brier_score_loss(y_true, proba[:, 1], pos_label=pos),
    }


def plain_run(kind: str, dataset: Dataset, labels: pd.Series, *, seed: int, threads: int | None
              ) -> tuple[float, float, dict[str, float]]:
    """Wall and CPU seconds for fit + predict_proba on validation + metrics; ``threads=None`` = no limit."""
    train = labels.loc[dataset.rows("train")].dropna()
    val = labels.loc[dataset.rows("validation")].dropna()
    X_train = dataset.features.loc[train.index]
    y_train = train.to_numpy(dtype=object).astype(str)
    X_val = dataset.features.loc[val.index]
    y_val = val.to_numpy(dtype=object).astype(str)
    classes = list(dataset.schema.classes)
    start, cpu = time.perf_counter(), time.process_time()
    with threadpool_limits(limits=threads):
        pipe = build_pipeline(kind, dataset.schema, seed=seed).fit(X_train, y_train)
        raw = pipe.predict_proba(X_val)
    proba = raw[:, [list(pipe.classes_).index(c) for c in classes]]
    metrics = plain_metrics(y_val, proba, classes)
    return time.perf_counter() - start, time.process_time() - cpu, metrics


# --------------------------------------------------------------------------- instrumenting the engine from outside
CATEGORIES = (  # of the retrain; the click is timed on its own
    "load dataset (parquet)", "load decisions", "effective labels",
    "dataset.features/labels", "fit model", "baselines (fit+score)", "evaluation (predict+metrics)",
    "fairness (validation)", "serialise (skops)", "store version (SQL)", "other (glue)",
)


class Breakdown:
    """Exclusive time per category: a wrapped call's time minus its wrapped children's, stacked."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list] = []  # [category, child seconds]

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def wrap(self, func, category):
        """``category``: a name, or a function (parent category, args, kwargs) -> name (None = inherit)."""

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            parent = self._stack[-1][0] if self._stack else None
            cat = category(parent, args, kwargs) if callable(category) else category
            cat = cat or parent or "other (glue)"
            frame = [cat, 0.0]
            self._stack.append(frame)
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._stack.pop()
                self.seconds[cat] += elapsed - frame[1]
                self.calls[cat] += 1
                if self._stack:
                    self._stack[-1][1] += elapsed

        return wrapper


@contextmanager
def instrumented(breakdown: Breakdown):
    """Patch the public functions a retrain goes through (no edit to hitl_core); undo on exit."""

    def fit_category(parent, args, kwargs):
        return "baselines (fit+score)" if args[0] in BASELINE_KINDS else "fit model"

    def score_category(parent, args, kwargs):
        return "baselines (fit+score)" if args[0].kind in BASELINE_KINDS else "evaluation (predict+metrics)"

    def eval_category(parent, args, kwargs):
        return None if parent in ("baselines (fit+score)", "evaluation (predict+metrics)") else \
            "evaluation (predict+metrics)"

    patches = [
        (Store, "load_dataset", "load dataset (parquet)"),
        (Store, "decisions", "load decisions"),
        (actions, "record_version", "store version (SQL)"),
        (model_files, "dumps", "serialise (skops)"),
        (loop, "train_snapshot", "other (glue)"),
        (loop, "train_and_evaluate", "other (glue)"),
        (loop, "effective_labels", "effective labels"),
        (loop, "n_human_labelled", "effective labels"),
        (loop, "fit", fit_category),
        (loop, "score", score_category),
        (loop, "_score_rows", score_category),
        (loop, "predict_with_confidence", eval_category),
        (loop, "classification_metrics", eval_category),
        (loop, "confusion", eval_category),
        (loop, "fairness_summaries", "fairness (validation)"),
    ]
    patches = [p for p in patches if p[1] in p[0].__dict__]  # functions this version of the engine has
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
    saved += [(Dataset, "features", Dataset.__dict__["features"]), (Dataset, "labels", Dataset.__dict__["labels"])]
    try:
        for owner, name, category in patches:
            setattr(owner, name, breakdown.wrap(getattr(owner, name), category))
        for name in ("features", "labels"):
            setattr(Dataset, name, property(breakdown.wrap(Dataset.__dict__[name].fget, "dataset.features/labels")))
        yield breakdown
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


# --------------------------------------------------------------------------- one configuration
def _overrides(store: Store, project, dataset: Dataset, rng: np.random.Generator, threads: int):
    """Three corrections a reviewer could make now: rows of the pool, relabelled against the current model."""
    version = store.current_version(project.id)
    model = store.load_model(project.id, version.version)
    pool = loop.pool_predictions(model, dataset, store.decisions(project.id), threads=threads)
    picked = pool.iloc[rng.choice(len(pool), size=N_OVERRIDES, replace=False)]
    other = {c: [o for o in dataset.schema.classes if o != c][0] for c in dataset.schema.classes}
    new_labels = picked["predicted"].map(other)
    return loop.decisions_for(picked, new_labels=new_labels, model_version=version.version,
                              note="bench override"), version


def click(store: Store, project, requests) -> actions.Outcome:
    """What the Review page does on a click: record the decisions (and queue the retrain the policy asks for)."""
    outcome = actions.record_decisions(store, project.id, ACTOR, requests)
    assert len(outcome.saved) == len(requests) and not outcome.conflicts, outcome.message()
    return outcome


def retrain(store: Store, project, *, threads: int, dataset: Dataset | None):
    """What a worker does with the queued job: train on the labels as they are now, store the version."""
    trained = loop.train_snapshot(store, project, dataset=dataset, threads=threads)
    return actions.record_version(store, project.id, trained, actor=ACTOR, trigger="correction")


def run_config(store: Store, frame: pd.DataFrame, rows: int, kind: str, *, repeats: int, threads: int, seed: int,
               profile: int = 0, pass_dataset: bool = False, sensitive: tuple[str, ...] = ()) -> dict:
    """Median click, retrain and plain seconds (and the retrain's breakdown) for one dataset size and model family."""
    schema, _ = check(frame, "target", sensitive=sensitive, sensitive_as_features=True)
    project, _ = actions.create_project(store, ACTOR, name=f"bench {kind} {rows}", source="bench", frame=frame,
                                        schema=schema, model_kind=kind, seed=seed, threads=threads,
                                        retrain_policy="every")
    dataset = store.load_dataset(project)
    rng = np.random.default_rng(seed)
    clicks, engine, plain, plain_default, fit_seconds, breakdowns = [], [], [], [], [], []
    engine_cpu, plain_cpu = [], []
    max_metric_gap = 0.0
    breakdown = Breakdown()
    for _ in range(repeats):
        requests, before = _overrides(store, project, dataset, rng, threads)
        start = time.perf_counter()
        outcome = click(store, project, requests)
        clicks.append(time.perf_counter() - start)
        assert outcome.retrain is not None, "policy 'every' must queue a retrain"
        with instrumented(breakdown):
            breakdown.reset()
            start, cpu = time.perf_counter(), time.process_time()
            version = retrain(store, project, threads=threads, dataset=dataset if pass_dataset else None)
            engine.append(time.perf_counter() - start)
            engine_cpu.append(time.process_time() - cpu)
        breakdowns.append(dict(breakdown.seconds))
        assert version is not None and version.version == before.version + 1 and version.status == "current"
        assert version.last_decision_id == max(d.id for d in outcome.saved), "the retrain includes the click"
        fit_seconds.append(version.fit_seconds)

        labels = loop.effective_labels(dataset.labels, store.decisions(project.id))
        seconds, cpu_seconds, metrics = plain_run(kind, dataset, labels, seed=seed, threads=threads)
        plain.append(seconds)
        plain_cpu.append(cpu_seconds)
        max_metric_gap = max(max_metric_gap, max(abs(metrics[k] - version.validation[k]) for k in metrics))
        if kind == "hgb":
            plain_default.append(plain_run(kind, dataset, labels, seed=seed, threads=None)[0])  # wall time

    profile_text = None
    if profile:
        requests, _ = _overrides(store, project, dataset, rng, threads)
        profiler = cProfile.Profile()
        profiler.enable()
        click(store, project, requests)
        retrain(store, project, threads=threads, dataset=dataset if pass_dataset else None)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile)
        profile_text = out.getvalue()

    median_breakdown = {c: statistics.median(b.get(c, 0.0) for b in breakdowns) for c in CATEGORIES}
    result = {
        "rows": rows, "model": kind, "threads": threads, "repeats": repeats,
        "click_seconds": statistics.median(clicks), "click_all": clicks,
        "engine_seconds": statistics.median(engine), "plain_seconds": statistics.median(plain),
        "engine_all": engine, "plain_all": plain,
        "engine_cpu_seconds": statistics.median(engine_cpu), "plain_cpu_seconds": statistics.median(plain_cpu),
        "engine_fit_seconds": statistics.median(fit_seconds),
        "breakdown_seconds": median_breakdown,
        "max_validation_metric_gap": max_metric_gap,
        "n_train": version.n_train,
    }
    if plain_default:
        result["plain_default_threads_seconds"] = statistics.median(plain_default)
        result["plain_default_all"] = plain_default
    result["ratio"] = result["engine_seconds"] / result["plain_seconds"]
    result["cpu_ratio"] = result["engine_cpu_seconds"] / result["plain_cpu_seconds"]
    result["checks"] = _checks(result)
    result["pass"] = all(ok for _, ok in result["checks"])
    if profile_text:
        result["profile"] = profile_text
    return result


def _checks(result: dict) -> list[tuple[str, bool]]:
    checks = [(f"ratio<={RATIO_TARGET}", result["ratio"] <= RATIO_TARGET)]
    if result["model"] == "logreg" and result["rows"] >= 50_000:
        end_to_end = result["click_seconds"] + result["engine_seconds"]
        checks.append((f"click+retrain<={LOGREG_50K_TARGET_SECONDS:g}s", end_to_end <= LOGREG_50K_TARGET_SECONDS))
    return checks


# --------------------------------------------------------------------------- printing
def _default_threads() -> str:
    info = threadpool_info()
    omp = sorted({d["num_threads"] for d in info if d["user_api"] == "openmp"})
    blas = sorted({d["num_threads"] for d in info if d["user_api"] == "blas"})
    return f"openmp={','.join(map(str, omp)) or '-'} blas={','.join(map(str, blas)) or '-'}"


def format_table(results: list[dict]) -> str:
    """The summary as a Markdown table (prints fine in a terminal, pastes into the README)."""
    lines = ["| rows | model | threads | click s | retrain s | plain s | ratio | CPU ratio | targets | result |",
             "|---:|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        targets = ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in r["checks"])
        lines.append(f"| {r['rows']:,} | {r['model']} | {r['threads']} | {r['click_seconds']:.3f} | "
                     f"{r['engine_seconds']:.3f} | {r['plain_seconds']:.3f} | {r['ratio']:.2f} | "
                     f"{r['cpu_ratio']:.2f} | {targets} | {'PASS' if r['pass'] else 'FAIL'} |")
        if "plain_default_threads_seconds" in r:
            d = r["plain_default_threads_seconds"]
            lines.append(f"| {r['rows']:,} | {r['model']} | default (no limit) | – | – | {d:.3f} | – | – | "
                         f"plain default / plain pinned = {d / r['plain_seconds']:.2f}× | info |")
    return "\n".join(lines)


def format_breakdown(results: list[dict]) -> str:
    """Where the retrain's seconds go (median per category), beside the plain run."""
    head = "| category | " + " | ".join(f"{r['model']} {r['rows'] // 1000}k" for r in results) + " |"
    lines = [head, "|---|" + "---:|" * len(results)]
    for c in CATEGORIES:
        cells = []
        for r in results:
            s = r["breakdown_seconds"][c]
            cells.append(f"{s:.3f} ({100 * s / r['engine_seconds']:.0f}%)")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("| **retrain total** | " + " | ".join(f"**{r['engine_seconds']:.3f}**" for r in results) + " |")
    lines.append("| plain fit+predict+metrics | " + " | ".join(f"{r['plain_seconds']:.3f}" for r in results) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 50_000], help="dataset sizes")
    parser.add_argument("--models", nargs="+", default=list(MODEL_KINDS), choices=list(MODEL_KINDS))
    parser.add_argument("--repeats", type=int, default=3, help="timed corrections per configuration (median)")
    parser.add_argument("--threads", type=int, default=None, help="engine threads (default: Settings.threads)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also cProfile one extra click + retrain per configuration and print the top N functions")
    parser.add_argument("--pass-dataset", action="store_true",
                        help="hand train_snapshot() the already loaded dataset instead of reading it as a worker does")
    parser.add_argument("--sensitive", nargs="*", default=[], metavar="COLUMN",
                        help="mark columns sensitive (kept as features), e.g. region: adds the fairness step")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="save the results as JSON")
    args = parser.parse_args(argv)
    threads = args.threads if args.threads is not None else Settings.from_env().threads

    print(f"# bench.loop — python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()}, "
          f"library default threads: {_default_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"# engine threads = {threads}; {args.repeats} repeats, median; {N_OVERRIDES} overrides per correction; "
          f"train_snapshot(dataset={'cached' if args.pass_dataset else 'None: loaded from SQLite'})"
          f"{f'; sensitive: {args.sensitive}' if args.sensitive else ''}\n", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="hitl-bench-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        for rows in args.rows:
            frame = make_frame(rows, seed=args.seed)
            for kind in args.models:
                result = run_config(store, frame, rows, kind, repeats=args.repeats, threads=threads,
                                    seed=args.seed, profile=args.profile, pass_dataset=args.pass_dataset,
                                    sensitive=tuple(args.sensitive))
                results.append(result)
                print(f"  {rows:>7,} {kind:<6} click {result['click_seconds']:.3f}s  "
                      f"retrain {result['engine_seconds']:.3f}s  "
                      f"plain {result['plain_seconds']:.3f}s  ratio {result['ratio']:.2f} (CPU {result['cpu_ratio']:.2f})"
                      f"  validation metrics equal to plain within {result['max_validation_metric_gap']:.1e}",
                      flush=True)
                if result.get("profile"):
                    print(result["profile"], flush=True)
        store.engine.dispose()
    print("\n## Click → decisions committed; retrain → new metrics stored\n")
    print(format_table(results))
    print("\n## Where the retrain's time goes (median seconds, % of retrain total)\n")
    print(format_breakdown(results))
    print(f"\n# load at the end {os.getloadavg()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"python": platform.python_version(), "cores": os.cpu_count(), "threads": threads,
                "default_threads": _default_threads(), "repeats": args.repeats,
                "pass_dataset": args.pass_dataset, "sensitive": args.sensitive}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
        print(f"# saved {args.json}")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
