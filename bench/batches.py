"""How long adding a batch of new rows takes: ``actions.add_batch`` beside the bare library calls it must make.

Engine: ``actions.add_batch(store, project, actor, frame, source)`` on a SQLite file: read the
project's dataset, check the batch (:func:`hitl_core.batches.conform`), drift of every feature
against the training pool (PSI + KS / chi-square, :mod:`hitl_core.drift`), the current model's
predictions on pool and batch, then one transaction: the new dataset (parquet of every row and the
split), the batch, its row tags and an event.
Bare: the same work written by hand with the libraries and no checks: ``pd.concat`` of the rows,
``DataFrame.to_parquet`` of the frame and split, ``scipy.stats.ks_2samp`` / ``chi2_contingency``
and a ``numpy.histogram`` PSI per feature, ``predict_proba`` on pool and batch; no database.
Target: engine / bare <= 3 and the engine under 5 s at 50k + 5k rows (a person waits on it).

    .venv/bin/python -m bench.batches                        # 10k and 50k pool rows, batch = 10 %
    .venv/bin/python -m bench.batches --rows 50000 --repeats 3 --json bench/results/batches.json
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/batches.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp

from hitl_core import actions
from hitl_core.data import check
from hitl_core.models import predict_with_confidence
from hitl_core.store import Store

RATIO_TARGET = 3.0
SECONDS_TARGET = 5.0  # at 50k rows


def make_rows(rows: int, *, start_id: int = 0, seed: int = 0) -> pd.DataFrame:
    """Seeded rows: 8 numeric and 3 categorical features, an ID column and a yes/no target."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, 8))
    frame = pd.DataFrame(numeric, columns=[f"x{i}" for i in range(8)])
    frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
    frame["segment"] = np.where(numeric[:, 0] > 0, "retail", "business")
    frame["channel"] = rng.choice(["web", "branch", "phone"], rows)
    frame.insert(0, "id", np.arange(start_id, start_id + rows))
    frame["y"] = np.where(numeric[:, 0] + 0.5 * numeric[:, 1] + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    return frame


def _psi(reference: np.ndarray, batch: np.ndarray) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)))
    r = np.histogram(reference, edges)[0] / len(reference) + 1e-4
    b = np.histogram(batch, edges)[0] / len(batch) + 1e-4
    return float(np.sum((b - r) * np.log(b / r)))


def bare(dataset, batch: pd.DataFrame, model) -> float:
    """The library calls add_batch cannot avoid, by hand, timed."""
    start = time.perf_counter()
    rows = batch.set_index(batch["id"].astype(str))
    frame = pd.concat([dataset.frame, rows])
    split = pd.concat([dataset.split, pd.Series("train", index=rows.index)]).rename("split").to_frame()
    frame.to_parquet(io.BytesIO())
    split.to_parquet(io.BytesIO())
    pool = dataset.features.loc[dataset.rows("train")]
    for column in dataset.schema.numeric:
        ks_2samp(pool[column].to_numpy(), rows[column].to_numpy())
        _psi(pool[column].to_numpy(), rows[column].to_numpy())
    for column in dataset.schema.categorical:
        counts = pd.concat([pool[column].value_counts(), rows[column].value_counts()], axis=1).fillna(0)
        chi2_contingency(counts.to_numpy().T)
    predict_with_confidence(model, pool, dataset.schema.classes)
    predict_with_confidence(model, rows[list(dataset.schema.features)], dataset.schema.classes)
    return time.perf_counter() - start


def run(rows: int, repeats: int) -> dict:
    """Median seconds of add_batch and of the bare calls, one fresh project per repeat."""
    base = make_rows(rows)
    incoming = make_rows(rows // 10, start_id=rows, seed=1).drop(columns=["y"])
    schema, _ = check(base, "y", id_column="id")
    engine, plain = [], []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats):
            store = Store(f"sqlite:///{folder}/bench{repeat}.db")
            project, version = actions.create_project(store, "bench", name="bench", source="bench", frame=base,
                                                      schema=schema, model_kind="logreg")
            dataset, model = store.load_dataset(project), store.load_model(project.id, version.version)
            plain.append(bare(dataset, incoming, model))
            start = time.perf_counter()
            actions.add_batch(store, project.id, "bench", incoming, source="bench.csv")
            engine.append(time.perf_counter() - start)
            store.engine.dispose()
    result = {"rows": rows, "batch_rows": len(incoming), "engine_s": statistics.median(engine),
              "bare_s": statistics.median(plain)}
    result["ratio"] = result["engine_s"] / result["bare_s"]
    result["ok"] = result["ratio"] <= RATIO_TARGET and (rows < 50_000 or result["engine_s"] <= SECONDS_TARGET)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batches", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 50_000], help="pool rows; batch = 10 %%")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per size (median)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = []
    print(f"{'rows':>8} {'batch':>7} {'add_batch s':>12} {'bare s':>8} {'ratio':>6}  target")
    for rows in args.rows:
        result = run(rows, args.repeats)
        results.append(result)
        print(f"{rows:>8,} {result['batch_rows']:>7,} {result['engine_s']:>12.2f} {result['bare_s']:>8.2f} "
              f"{result['ratio']:>6.2f}  {'ok' if result['ok'] else 'MISSED'} (ratio <= {RATIO_TARGET:g}"
              + (f", <= {SECONDS_TARGET:g} s)" if rows >= 50_000 else ")"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
