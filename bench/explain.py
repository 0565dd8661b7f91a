"""How long an explanation takes through hitl_core.explain versus the raw shap / lime call on the same model.

Data: a seeded 50k-row table (10 numeric columns, 2 categoricals, yes/no target); each model family is
``hitl_core.models.fit(kind, ..., threads=1)``, the pipeline the app stores.

Ours: ``ShapExplainer.explain`` (one row), ``LimeExplainer.explain`` (one row, LIME_SAMPLES samples) and
``global_shap`` (1,000 rows). Raw, on the same fitted pipeline and the same rows:
``shap.TreeExplainer(pipe[-1])`` / ``shap.LinearExplainer(pipe[-1], shap.maskers.Independent(...))`` called
on ``pipe[:-1].transform(X)`` (the transform is part of the raw time: a caller has to do it too), and
``LimeTabularExplainer.explain_instance`` with 5,000 samples and a ``predict_proba`` wrapper that rebuilds
the DataFrame. Explainers are built once, outside the timings, as the app caches them. Ours and raw run
interleaved in each repeat, so background load hits both alike; fast calls are looped within a repeat.
Both run with native threads pinned to ``--threads`` (default 1, what ours pins itself), so the ratio is
our overhead; ``--threads 0`` leaves raw at the library default (HGB's OpenMP on a busy 2-core box then
makes raw LIME several times slower than ours).

Counterfactuals: ``CounterfactualExplainer.explain`` (K per row; DiCE asked for 3K candidates, then our shrink
and re-check against the model) against the plain DiCE call for the same 3K candidates (``raw_counterfactuals``).

For the forest, also the Explain page's exact sample: as many rows as ``exact_budget`` says fit in ~5 s.
Similar past cases (``--similar-rows``, default 100k): ``CaseIndex.similar_to`` against a plain
``NearestNeighbors`` fit on the transformed labelled rows and ``kneighbors`` of the transformed row.

Targets (2-core machine): SHAP one row <= 100 ms for tree and linear models, LIME one row <= 1.5 s,
global importance on 1,000 rows (a forest: on its sized sample) <= 5 s, counterfactuals one row <= 3 s,
similar cases <= 100 ms a query at 100k rows, ours / raw <= 1.2.

    .venv/bin/python -m bench.explain                          # logreg hgb rf, 5 repeats (1 for global)
    .venv/bin/python -m bench.explain --models hgb --repeats 9 --profile
    .venv/bin/python -m bench.explain --json bench/results/explain.json
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/explain.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lime
import numpy as np
import pandas as pd
import shap
import sklearn
from lime.lime_tabular import LimeTabularExplainer
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_info, threadpool_limits

from bench.loop import make_frame  # the same generated table as the loop benchmark
from hitl_core.data import Schema, check
from hitl_core.explain import (
    BACKGROUND_ROWS, LIME_SAMPLES, PROBE_ROWS, LimeExplainer, ShapExplainer, exact_budget, global_shap,
)
from hitl_core.models import MODEL_KINDS, FittedModel, fit
from hitl_core.similar import CaseIndex, CaseSpace
from hitl_core.counterfactual import CANDIDATES_PER_RESULT, CounterfactualExplainer, RecourseSettings

SHAP_ROW_TARGET = 0.100
SIMILAR_TARGET = 0.100
COUNTERFACTUAL_TARGET = 3.0
LIME_ROW_TARGET = 1.5
GLOBAL_TARGET = 5.0
RATIO_TARGET = 1.2
MIN_REPEAT_SECONDS = 0.05  # loop a fast call within one repeat until it takes this long
CLASS = "yes"


# --------------------------------------------------------------------------- data


# --------------------------------------------------------------------------- raw library calls
def raw_shap(model: FittedModel, background: pd.DataFrame, seed: int) -> Callable[[pd.DataFrame], np.ndarray]:
    """The plain shap call a user would write for this pipeline (same background sample as ours)."""
    pipe = model.estimator
    if model.kind == "logreg":
        sample = background.sample(min(BACKGROUND_ROWS, len(background)), random_state=seed)
        explainer = shap.LinearExplainer(pipe[-1], shap.maskers.Independent(pipe[:-1].transform(sample)))
    else:
        explainer = shap.TreeExplainer(pipe[-1])

    def explain(X: pd.DataFrame, approximate: bool = False) -> np.ndarray:
        encoded = pipe[:-1].transform(X)
        if approximate:
            return explainer(encoded, approximate=True, check_additivity=False).values
        return explainer(encoded).values
    return explain


def raw_lime(model: FittedModel, schema: Schema, background: pd.DataFrame, seed: int
             ) -> Callable[[pd.DataFrame], object]:
    """Plain LimeTabularExplainer: categoricals as integer codes, predict_proba rebuilding the DataFrame."""
    features = list(schema.features)
    levels = {c: sorted(background[c].astype(str).unique()) for c in schema.categorical}

    def codes(X: pd.DataFrame) -> np.ndarray:
        out = X[features].copy()
        for c, values in levels.items():
            out[c] = pd.Categorical(X[c].astype(str), categories=values).codes
        return out.to_numpy(dtype=float)

    def predict(array: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(array, columns=features)
        for c, values in levels.items():
            frame[c] = np.asarray(values, dtype=object)[frame[c].to_numpy().astype(int)]
        return model.estimator.predict_proba(frame)

    training = codes(background)
    training = np.where(np.isnan(training), np.nanmedian(training, axis=0), training)
    explainer = LimeTabularExplainer(
        training, feature_names=features, class_names=[str(c) for c in model.estimator.classes_],
        categorical_features=[features.index(c) for c in schema.categorical],
        categorical_names={features.index(c): v for c, v in levels.items()},
        discretize_continuous=True, random_state=seed, mode="classification")
    j = list(model.estimator.classes_).index(CLASS)
    return lambda X: explainer.explain_instance(codes(X)[0], predict, labels=(j,), num_features=len(features),
                                                num_samples=LIME_SAMPLES)


def raw_counterfactuals(model: FittedModel, schema: Schema, background: pd.DataFrame, count: int, seed: int
                        ) -> Callable[[pd.DataFrame, str], object]:
    """Plain DiCE on the pipeline: Data over the (median-filled) pool, method "random", as many candidates as ours
    asks for, without DiCE's post-hoc sparsity pass (a linear search, one prediction per step: it once took 509 s
    on one row here) and without our shrink and re-check."""
    import dice_ml
    features = list(schema.features)
    data = background[features].fillna(background[list(schema.numeric)].median())
    data["outcome"] = model.estimator.predict(data)
    explainer = dice_ml.Dice(dice_ml.Data(dataframe=data, continuous_features=list(schema.numeric),
                                          outcome_name="outcome"),
                             dice_ml.Model(model=model.estimator, backend="sklearn"), method="random")
    classes = [str(c) for c in model.estimator.classes_]
    return lambda X, desired: explainer.generate_counterfactuals(
        X[features].reset_index(drop=True), total_CFs=count * CANDIDATES_PER_RESULT,
        desired_class=classes.index(desired), random_seed=seed, posthoc_sparsity_param=None, verbose=False)


# --------------------------------------------------------------------------- timing
def per_call(func: Callable[[], object], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        func()
    return (time.perf_counter() - start) / loops


def compare(ours: Callable[[], object], raw: Callable[[], object], repeats: int, *,
            warm_up: bool = True) -> tuple[float, float]:
    """Median seconds per call of ours and raw, interleaved; with ``warm_up``, one untimed call each
    first, whose time also sets how often a fast call is looped within one repeat."""
    loops = 1
    if warm_up:
        first = per_call(ours, 1)
        per_call(raw, 1)
        loops = max(1, min(200, int(MIN_REPEAT_SECONDS / max(first, 1e-6))))
    ours_times, raw_times = [], []
    for _ in range(repeats):
        ours_times.append(per_call(ours, loops))
        raw_times.append(per_call(raw, loops))
    return statistics.median(ours_times), statistics.median(raw_times)


def profile(label: str, func: Callable[[], object], top: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    func()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return f"### profile: {label}\n" + out.getvalue()


# --------------------------------------------------------------------------- one model family
def run_model(kind: str, frame: pd.DataFrame, schema: Schema, *, repeats: int, global_repeats: int,
              global_rows: int, seed: int, do_profile: bool, exact_rf_global: bool,
              counterfactuals: int = 0) -> tuple[list[dict], list[str]]:
    features = list(schema.features)
    X, y = frame[features], frame[schema.target]
    model = fit(kind, schema, X, y, seed=seed, threads=1)
    print(f"  {kind}: fitted in {model.fit_seconds:.1f}s", flush=True)
    start = time.perf_counter()
    ours_shap = ShapExplainer(model, schema, X, seed=seed)
    shap_setup = time.perf_counter() - start
    start = time.perf_counter()
    ours_lime = LimeExplainer(model, schema, X, seed=seed)
    lime_setup = time.perf_counter() - start
    plain_shap, plain_lime = raw_shap(model, X, seed), raw_lime(model, schema, X, seed)
    row = X.iloc[[12345 % len(X)]]
    many = X.sample(min(global_rows, len(X)), random_state=seed)

    # the numbers are only worth comparing if both sides computed the same thing
    ours_values = ours_shap.values(row)[0][0, :, ours_shap.classes.index(CLASS)]
    raw_values = np.asarray(plain_shap(row))
    raw_values = raw_values[0] if raw_values.ndim == 2 else raw_values[0, :, ours_shap.classes.index(CLASS)]
    by_source = np.bincount(ours_shap.sources, weights=raw_values, minlength=len(features))
    assert np.allclose(ours_values, by_source, atol=1e-9), "ours and raw SHAP disagree"

    results: list[dict] = []
    profiles: list[str] = []

    def record(operation: str, ours: float, raw: float, target: float, note: str = "") -> None:
        ratio = ours / raw if raw > 0 else float("nan")
        misses = [m for m, ok in ((f"time>{target:g}s", ours <= target), (f"ratio>{RATIO_TARGET}", ratio <= RATIO_TARGET))
                  if not ok]
        results.append({"model": kind, "operation": operation, "ours_s": ours, "raw_s": raw, "ratio": ratio,
                        "target_s": target, "target_ratio": RATIO_TARGET, "pass": not misses,
                        "misses": misses, "note": note})
        print(f"    {operation:<28} ours {ours:8.4f}s  raw {raw:8.4f}s  ratio {ratio:5.2f}  "
              f"{'PASS' if not misses else 'FAIL ' + ', '.join(misses)}", flush=True)

    ours_t, raw_t = compare(lambda: ours_shap.explain(row, CLASS), lambda: plain_shap(row), repeats)
    record("SHAP one row", ours_t, raw_t, SHAP_ROW_TARGET, f"explainer built in {shap_setup:.2f}s (cached in the app)")
    if do_profile:
        profiles.append(profile(f"{kind} SHAP one row (x20)", lambda: [ours_shap.explain(row, CLASS) for _ in range(20)]))

    ours_t, raw_t = compare(lambda: ours_lime.explain(row, CLASS), lambda: plain_lime(row), repeats)
    record("LIME one row", ours_t, raw_t, LIME_ROW_TARGET,
           f"{LIME_SAMPLES} samples; explainer built in {lime_setup:.2f}s (cached in the app)")
    if do_profile:
        profiles.append(profile(f"{kind} LIME one row", lambda: ours_lime.explain(row, CLASS)))

    if counterfactuals:
        start = time.perf_counter()
        ours_cf = CounterfactualExplainer(model, schema, X)
        cf_setup = time.perf_counter() - start
        plain_cf = raw_counterfactuals(model, schema, X, counterfactuals, seed)
        complete = X.iloc[12345 % len(X):].dropna()  # DiCE refuses a query with missing values
        cf_row = complete.iloc[[0]]
        desired = next(c for c in ours_shap.classes if c != model.estimator.predict(cf_row)[0])
        settings = RecourseSettings(desired=desired, count=counterfactuals, seed=seed)
        found = ours_cf.explain(cf_row, settings)
        ours_t, raw_t = compare(lambda: ours_cf.explain(cf_row, settings), lambda: plain_cf(cf_row, desired),
                                min(repeats, 3), warm_up=False)  # seconds per call: no loops, one call warmed both
        record(f"counterfactuals (K={counterfactuals})", ours_t, raw_t, COUNTERFACTUAL_TARGET,
               f"{found.summary()} Ours adds the shrink and the re-check; explainer built in {cf_setup:.2f}s "
               "(cached in the app)")

    approximations = [False, True] if kind == "rf" else [False]
    if kind == "rf" and not exact_rf_global:
        approximations = [True]
    for approximate in approximations:
        label = f"global {len(many):,} rows" + (" approx" if approximate else " exact" if kind == "rf" else "")
        ours_t, raw_t = compare(lambda: global_shap(ours_shap, many, CLASS, approximate=approximate),
                                lambda: plain_shap(many, approximate=approximate), global_repeats,
                                warm_up=False)  # both explainers are warm from the one-row timings
        note = ("approximate=True (Saabas); the app's optional comparison view for forests" if approximate
                else "exact TreeSHAP on all of them; the app sizes the forest's sample to ~5 s" if kind == "rf"
                else "exact")
        record(label, ours_t, raw_t, GLOBAL_TARGET, note)
        if do_profile and (approximate or kind != "rf"):
            profiles.append(profile(f"{kind} {label}",
                                    lambda: global_shap(ours_shap, many, CLASS, approximate=approximate)))
    if kind == "rf":  # what the Explain page does: exact on as many rows as the measured cost allows in ~5 s
        budget = exact_budget(ours_shap, many.head(PROBE_ROWS), most=len(many))
        sized = many.head(budget.rows)
        ours_t, raw_t = compare(lambda: global_shap(ours_shap, sized, CLASS), lambda: plain_shap(sized),
                                global_repeats, warm_up=False)
        record(f"global {len(sized):,} rows exact, sized", ours_t, raw_t, GLOBAL_TARGET,
               f"the Explain page's sample: {budget.seconds_per_row * 1000:.0f} ms a row measured on "
               f"{PROBE_ROWS} rows, sized to {budget.budget_seconds:g} s")
    return results, profiles


# --------------------------------------------------------------------------- similar past cases
def run_similar(rows: int, *, repeats: int, seed: int, k: int = 10) -> list[dict]:
    """Similar past cases at ``rows`` pool rows (15 % unlabeled): ``CaseIndex.similar_to`` vs a plain NearestNeighbors.

    Raw: ``NearestNeighbors().fit(pipe[:-1].transform(labelled rows))`` then ``kneighbors`` of the transformed
    row, what a user of scikit-learn would write. Both fitted outside the timings (the app caches the index);
    ours reads the row's encoding from the cached pool instead of transforming it again.
    """
    frame = make_frame(rows, seed)
    frame.index = frame.index.astype(str)  # row keys are text in the app (hitl_core.data.Dataset)
    schema = check(frame, "target")[0]
    X, y = frame[list(schema.features)], frame[schema.target].astype(str)
    model = fit("logreg", schema, X, y, seed=seed, threads=1)
    labels = y.mask(np.random.default_rng(seed).random(len(y)) < 0.15)
    start = time.perf_counter()
    space = CaseSpace(model, X)
    space_s = time.perf_counter() - start
    start = time.perf_counter()
    index = CaseIndex(space, labels)
    index_s = time.perf_counter() - start
    preprocess = model.estimator[:-1]
    plain = NearestNeighbors().fit(preprocess.transform(X[labels.notna().to_numpy()]))
    key = str(labels.index[labels.notna().to_numpy()][rows // 3])  # a labelled row: its own nearest is itself
    row = X.loc[[key]]
    ours_found = index.similar_to(key, k)
    raw_distances, _ = plain.kneighbors(preprocess.transform(row), n_neighbors=k + 1)
    assert raw_distances[0][0] == 0 and np.allclose(ours_found["distance"], raw_distances[0][1:]), \
        "ours and raw nearest neighbours disagree"
    ours_t, raw_t = compare(lambda: index.similar_to(key, k),
                            lambda: plain.kneighbors(preprocess.transform(row), n_neighbors=k + 1), repeats)
    ratio = ours_t / raw_t
    misses = [m for m, ok in ((f"time>{SIMILAR_TARGET:g}s", ours_t <= SIMILAR_TARGET),
                              (f"ratio>{RATIO_TARGET}", ratio <= RATIO_TARGET)) if not ok]
    print(f"    {'similar cases, one query':<28} ours {ours_t:8.4f}s  raw {raw_t:8.4f}s  ratio {ratio:5.2f}  "
          f"{'PASS' if not misses else 'FAIL ' + ', '.join(misses)}", flush=True)
    return [{"model": "logreg", "operation": f"similar cases ({rows:,} rows, k={k})", "ours_s": ours_t, "raw_s": raw_t,
             "ratio": ratio, "target_s": SIMILAR_TARGET, "target_ratio": RATIO_TARGET, "pass": not misses,
             "misses": misses, "note": f"pool encoded in {space_s:.2f}s once per version; index over the "
                                       f"{len(index):,} labelled rows fitted in {index_s:.2f}s per decision (cached)"}]


# --------------------------------------------------------------------------- report
def format_table(results: list[dict]) -> str:
    lines = ["| model | operation | ours (s) | raw (s) | ratio | target | result |",
             "|---|---|---:|---:|---:|---|---|"]
    for r in results:
        verdict = "PASS" if r["pass"] else "FAIL (" + ", ".join(r["misses"]) + ")"
        lines.append(f"| {r['model']} | {r['operation']} | {r['ours_s']:.4f} | {r['raw_s']:.4f} | {r['ratio']:.2f} "
                     f"| <= {r['target_s']:g} s, ratio <= {r['target_ratio']} | {verdict} |")
    return "\n".join(lines)


def environment(args: argparse.Namespace) -> dict:
    pools = {}
    for pool in threadpool_info():
        pools[pool["user_api"]] = pool["num_threads"]
    return {"python": platform.python_version(), "cores": os.cpu_count(), "load": list(os.getloadavg()),
            "shap": shap.__version__, "lime": getattr(lime, "__version__", "0.2.0.1"), "sklearn": sklearn.__version__,
            "library_threads": pools, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
            "rows": args.rows, "repeats": args.repeats, "global_repeats": args.global_repeats,
            "global_rows": args.global_rows, "seed": args.seed, "lime_samples": LIME_SAMPLES,
            "bench_threads": args.threads or "library default"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="dataset size")
    parser.add_argument("--models", nargs="+", default=list(MODEL_KINDS), choices=list(MODEL_KINDS))
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the one-row timings (median)")
    parser.add_argument("--global-repeats", type=int, default=1, help="repeats of the global timings (median)")
    parser.add_argument("--global-rows", type=int, default=1000, help="rows explained for global importance")
    parser.add_argument("--no-exact-rf-global", action="store_true",
                        help="skip exact TreeSHAP on the forest for the global view (minutes at 50k rows)")
    parser.add_argument("--threads", type=int, default=1,
                        help="native threads for both sides (ours pins 1 itself; 0 = library default for raw)")
    parser.add_argument("--similar-rows", type=int, default=100_000,
                        help="pool rows for the similar-cases timing (0: skip it)")
    parser.add_argument("--counterfactuals", type=int, default=4, metavar="K",
                        help="counterfactuals per row for the DiCE timing (0: skip it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="print cProfile of our calls (cumulative)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="save the results as JSON")
    args = parser.parse_args(argv)

    env = environment(args)
    print(f"# bench.explain — python {env['python']}, {env['cores']} cores, load {env['load']}, "
          f"library threads {env['library_threads']}, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, "
          f"bench threads {args.threads or 'library default'}", flush=True)
    print(f"# {args.rows:,} rows; one-row median of {args.repeats}, global median of {args.global_repeats}; "
          f"shap {env['shap']}, scikit-learn {env['sklearn']}", flush=True)
    frame = make_frame(args.rows, args.seed)
    schema = check(frame, "target")[0]
    results: list[dict] = []
    profiles: list[str] = []
    for kind in args.models:
        with threadpool_limits(limits=args.threads or None):  # raw as pinned as ours, so the ratio is overhead
            rows, profs = run_model(kind, frame, schema, repeats=args.repeats, global_repeats=args.global_repeats,
                                    global_rows=args.global_rows, seed=args.seed, do_profile=args.profile,
                                    exact_rf_global=not args.no_exact_rf_global,
                                    counterfactuals=args.counterfactuals)
        results += rows
        profiles += profs
    if args.similar_rows:
        print(f"  similar cases at {args.similar_rows:,} rows", flush=True)
        with threadpool_limits(limits=args.threads or None):
            results += run_similar(args.similar_rows, repeats=args.repeats, seed=args.seed)
    print()
    print(format_table(results))
    for text in profiles:
        print()
        print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"environment": env, "results": results}, indent=2))
        print(f"\nwrote {args.json}")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
