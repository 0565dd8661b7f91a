"""A simulated annotator and the headless loop, for the CLI, benchmarks and demos.

The annotator reveals a row's true label, wrong with probability ``annotator_noise`` (then it
names another class uniformly at random). The loop starts from ``seed_size`` revealed rows of
the training pool, and each round trains, evaluates on validation and the held-out test set,
and reveals ``batch_size`` more rows until ``budget`` labels (seed included) are spent.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from hitl_core.data import Dataset, DataError
from hitl_core.loop import score, train_and_evaluate
from hitl_core.models import BASELINE_KINDS, fit


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of one simulated run; stored in the JSON output so a run can be repeated."""

    model: str = "logreg"
    seed_size: int = 20
    batch_size: int = 20
    budget: int = 200
    annotator_noise: float = 0.0
    seed: int = 0
    threads: int = 1


def annotate(truth: pd.Series, classes: tuple[str, ...], noise: float, rng: np.random.Generator) -> pd.Series:
    """What a simulated annotator answers for these rows: the truth, or with probability ``noise`` another class."""
    answers = truth.astype(object).copy()
    wrong = rng.random(len(truth)) < noise
    for key in truth.index[wrong]:
        others = [c for c in classes if c != truth.loc[key]]
        answers.loc[key] = others[rng.integers(len(others))]
    return answers


def seed_rows(truth: pd.Series, size: int, rng: np.random.Generator) -> pd.Index:
    """A random seed set holding at least one row of every class, so the first model can train."""
    firsts = [rng.choice(truth.index[truth.to_numpy() == c]) for c in pd.unique(truth)]
    rest = truth.index.difference(pd.Index(firsts))
    extra = rng.choice(rest.to_numpy(dtype=object), size=max(0, min(size, len(truth)) - len(firsts)), replace=False)
    return pd.Index(list(firsts) + list(extra), dtype=object)


def simulate(dataset: Dataset, config: SimulationConfig,
             on_round: Callable[[dict], None] | None = None) -> dict:
    """Run the loop headless and return the documented JSON-ready result (see README, "simulate JSON")."""
    truth = dataset.labels
    if truth.isna().any():
        raise DataError("Simulation needs a true label on every row; drop unlabeled rows first.")
    rng = np.random.default_rng(config.seed)
    pool_truth = truth.loc[dataset.rows("train")]
    known = pd.Series(None, index=truth.index, dtype=object)
    known.loc[dataset.rows("validation")] = truth.loc[dataset.rows("validation")]
    known.loc[dataset.rows("test")] = truth.loc[dataset.rows("test")]
    first = seed_rows(pool_truth, min(config.seed_size, config.budget), rng)  # the seed is part of the budget
    known.loc[first] = annotate(pool_truth.loc[first], dataset.schema.classes, config.annotator_noise, rng)

    history = []
    while True:
        model, evaluation = train_and_evaluate(dataset, known, config.model, seed=config.seed,
                                               threads=config.threads)
        n_labels = int(known.loc[pool_truth.index].notna().sum())
        entry = {"version": len(history) + 1, "n_labels": n_labels, "fit_seconds": round(model.fit_seconds, 4),
                 "validation": evaluation.validation, "test": evaluation.test}
        history.append(entry)
        if on_round:
            on_round(entry)
        unlabeled = pool_truth.index[known.loc[pool_truth.index].isna().to_numpy()]
        room = min(config.batch_size, config.budget - n_labels, len(unlabeled))
        if room <= 0:
            break
        batch = pd.Index(rng.choice(unlabeled.to_numpy(dtype=object), size=room, replace=False), dtype=object)
        known.loc[batch] = annotate(pool_truth.loc[batch], dataset.schema.classes, config.annotator_noise, rng)

    return {
        "dataset": {"rows": len(dataset.frame), "classes": list(dataset.schema.classes),
                    "target": dataset.schema.target},
        "split": {part: int((dataset.split == part).sum()) for part in ("train", "validation", "test")},
        "config": asdict(config),
        "baselines": _full_pool_baselines(dataset, truth, config.seed),
        "history": history,
    }


def _full_pool_baselines(dataset: Dataset, truth: pd.Series, seed: int) -> dict:
    """Baselines fitted on the fully labelled training pool: the fixed bar every version must clear."""
    train = truth.loc[dataset.rows("train")]
    X = dataset.features.loc[train.index]
    return {kind: {part: score(fit(kind, dataset.schema, X, train, seed=seed), dataset, truth, part)
                   for part in ("validation", "test")}
            for kind in BASELINE_KINDS}
