"""A simulated annotator and the headless loop, for the CLI, benchmarks, demos and the Simulation page.

The annotator reveals a row's true label, wrong with probability ``annotator_noise`` (then it
names another class uniformly at random); on the rows of one group (``noisy_group``) it can be
wrong with a different probability, ``group_noise``, to show how annotator bias propagates. The
loop starts from ``seed_size`` revealed rows of the training pool, and each round trains,
evaluates on validation and the held-out test set, and reveals ``batch_size`` more rows, chosen
by a query ``strategy`` (:mod:`hitl_core.active`), until ``budget`` labels (seed included) are spent.

:func:`compare` runs several strategies, each ``repeats`` times (seeds ``seed``, ``seed + 1``, …)
on the same split, and summarises their learning curves against the full-label model: the same
model fitted on every true label of the training pool.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from hitl_core import active
from hitl_core.data import Dataset, DataError, labels_as_text
from hitl_core.fairness import breakdown
from hitl_core.loop import fit_on_pool, score
from hitl_core.models import BASELINE_KINDS, MODEL_KINDS, FittedModel, fit, predict_with_confidence

TARGET_LEVELS = {"labels_to_95": 0.95, "labels_to_99": 0.99}  # shares of the full-label validation accuracy
INTERVAL = 0.95  # labels-to-level intervals across repeats: percentile, of the observed per-repeat values


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
    strategy: str = "random"  # a key of hitl_core.active.STRATEGIES
    committee: str = "bootstrap"  # query-by-committee members: bootstrap refits of ``model``, or "families"
    noisy_group: str | None = None  # "COLUMN=VALUE": on these rows the annotator errs with ``group_noise``
    group_noise: float = 0.0
    metrics: str = "all"  # "accuracy": history entries score accuracy only (3× faster rounds, for benchmarks)
    sensitive: tuple[str, ...] = ()  # one attribute, or two (their intersection): each round gains "fairness"


def annotate(truth: pd.Series, classes: tuple[str, ...], noise: float | np.ndarray,
             rng: np.random.Generator) -> pd.Series:
    """What a simulated annotator answers for these rows: the truth, or with probability ``noise`` another class.

    ``noise`` is one probability, or one per row (a group the annotator gets wrong more often).
    """
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


# --------------------------------------------------------------------------- settings
def parse_group(spec: str) -> tuple[str, str]:
    """``"COLUMN=VALUE"`` → (column, value); the value is compared as text."""
    column, sep, value = spec.partition("=")
    if not sep or not column.strip() or not value.strip():
        raise DataError(f"Noisy group '{spec}' is not of the form COLUMN=VALUE (e.g. group=group_b).")
    return column.strip(), value.strip()


def in_group(dataset: Dataset, rows: pd.Index, spec: str) -> np.ndarray:
    """Which of ``rows`` belong to the group ``COLUMN=VALUE``."""
    column, value = parse_group(spec)
    return (labels_as_text(dataset.frame.loc[rows, column]) == value).to_numpy(dtype=bool)


def noise_per_row(dataset: Dataset, rows: pd.Index, config: SimulationConfig) -> np.ndarray:
    """The annotator's error probability on each row: ``group_noise`` inside the noisy group, else ``annotator_noise``."""
    noise = np.full(len(rows), float(config.annotator_noise))
    if config.noisy_group:
        noise[in_group(dataset, rows, config.noisy_group)] = float(config.group_noise)
    return noise


def validate(dataset: Dataset, config: SimulationConfig, strategies: Sequence[str] | None = None,
             repeats: int = 1) -> None:
    """Refuse settings that cannot run, with a message saying what to change (a DataError)."""
    if dataset.labels.isna().any():
        raise DataError("Simulation needs a true label on every row; drop unlabeled rows first.")
    strategies = list(strategies) if strategies is not None else [config.strategy]
    if not strategies:
        raise DataError("Pick at least one query strategy to simulate.")
    unknown = [s for s in strategies if s not in active.STRATEGIES]
    if unknown:
        raise DataError(f"Unknown strategy {', '.join(map(repr, unknown))}; choose from {', '.join(active.STRATEGIES)}.")
    if config.model not in MODEL_KINDS:
        raise DataError(f"Unknown model '{config.model}'; choose one of {', '.join(MODEL_KINDS)}.")
    if config.metrics not in ("all", "accuracy"):
        raise DataError(f"Unknown metrics setting '{config.metrics}'; choose all or accuracy.")
    if config.committee not in active.COMMITTEE_KINDS:
        raise DataError(f"Unknown committee '{config.committee}'; choose one of {', '.join(active.COMMITTEE_KINDS)}.")
    if min(config.seed_size, config.batch_size, config.budget) < 1:
        raise DataError(f"Seed size, batch size and budget must each be at least 1 (got {config.seed_size}, "
                        f"{config.batch_size}, {config.budget}).")
    if config.budget < config.seed_size:
        raise DataError(f"The budget ({config.budget} labels) is smaller than the seed set ({config.seed_size} labels); "
                        "the seed counts toward the budget, so raise the budget or shrink the seed.")
    if repeats < 1:
        raise DataError(f"Repeats must be at least 1 (got {repeats}).")
    for name, value in (("annotator error rate", config.annotator_noise), ("group error rate", config.group_noise)):
        if not 0.0 <= value <= 1.0:
            raise DataError(f"The {name} is a probability; give a value between 0 and 1 (got {value}).")
    if config.group_noise and not config.noisy_group:
        raise DataError("A group error rate needs a group: name it as COLUMN=VALUE (e.g. group=group_b).")
    if config.noisy_group:
        column, value = parse_group(config.noisy_group)
        if column not in dataset.frame.columns:
            raise DataError(f"Noisy group column '{column}' is not in the table; pick one of "
                            f"{', '.join(map(str, dataset.frame.columns[:10]))}.")
        values = labels_as_text(dataset.frame[column]).dropna().unique()
        if value not in set(values):
            shown = ", ".join(sorted(map(str, values))[:10])
            raise DataError(f"Column '{column}' has no value '{value}'; its values include {shown}.")


def planned_rounds(dataset: Dataset, config: SimulationConfig) -> int:
    """How many train-and-evaluate rounds one run makes (for progress bars and run-time limits)."""
    pool = dataset.labels.loc[dataset.rows("train")]
    labelled = max(pool.nunique(), min(config.seed_size, len(pool)))
    rounds = 1
    while (room := min(config.batch_size, config.budget - labelled, len(pool) - labelled)) > 0:
        labelled += room
        rounds += 1
    return rounds


def labelled_only(dataset: Dataset) -> Dataset:
    """The dataset without its unlabeled rows (there is no truth to reveal), keeping the stored split."""
    keep = dataset.labels.notna()
    if keep.all():
        return dataset
    return Dataset(name=dataset.name, frame=dataset.frame.loc[keep], schema=dataset.schema,
                   split=dataset.split.loc[keep[keep].index])


# --------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class Run:
    """One simulated loop: its history (the documented JSON entries) and what the annotator answered."""

    strategy: str
    seed: int
    history: list[dict]
    answers: pd.Series  # the annotator's labels of the revealed pool rows (noise included)
    model: FittedModel  # the last model trained
    notes: tuple[str, ...] = ()  # e.g. a cold start that fell back to diversity sampling


def run(dataset: Dataset, config: SimulationConfig, on_round: Callable[[dict], None] | None = None) -> Run:
    """One loop with one strategy and one seed; ``on_round`` hears each history entry as it happens."""
    truth = dataset.labels
    if truth.isna().any():
        raise DataError("Simulation needs a true label on every row; drop unlabeled rows first.")
    rng = np.random.default_rng(config.seed)
    classes = dataset.schema.classes
    pool = dataset.rows("train")
    pool_truth = truth.loc[pool]
    noise = pd.Series(noise_per_row(dataset, pool, config), index=pool)
    known = pd.Series(None, index=truth.index, dtype=object)
    known.loc[dataset.rows("validation")] = truth.loc[dataset.rows("validation")]
    known.loc[dataset.rows("test")] = truth.loc[dataset.rows("test")]
    first = seed_rows(pool_truth, config.seed_size, rng)
    known.loc[first] = annotate(pool_truth.loc[first], classes, noise.loc[first].to_numpy(), rng)
    X_pool = dataset.features.loc[pool]

    history: list[dict] = []
    notes: list[str] = []
    while True:
        train = known.loc[pool].dropna()
        model = fit(config.model, dataset.schema, X_pool.loc[train.index], train, seed=config.seed,
                    threads=config.threads)
        entry = {"version": len(history) + 1, "n_labels": len(train), "fit_seconds": round(model.fit_seconds, 4),
                 **{part: _score(model, dataset, known, part, config) for part in ("validation", "test")}}
        if config.sensitive:
            entry["fairness"] = breakdown(model, dataset, config.sensitive, labels=known, threads=config.threads,
                                          engine="grouped").to_dict()  # every round: the fast path, held equal
        history.append(entry)
        if on_round:
            on_round(entry)
        pool_known = known.loc[pool]
        room = min(config.batch_size, config.budget - len(train), int(pool_known.isna().sum()))
        if room <= 0:
            break
        asked = _ask(model, dataset, X_pool, pool_known, config, room, rng)
        if asked.cold_start:
            notes.append(f"round {entry['version']} ({len(train)} labels): {asked.reason}")
        batch = pool[asked.indices]
        known.loc[batch] = annotate(pool_truth.loc[batch], classes, noise.loc[batch].to_numpy(), rng)
    answers = known.loc[pool].dropna()
    return Run(strategy=config.strategy, seed=config.seed, history=history, answers=answers, model=model,
               notes=tuple(notes))


def _score(model: FittedModel, dataset: Dataset, known: pd.Series, part: str, config: SimulationConfig) -> dict:
    """Every metric of one split (the documented history), or only accuracy when ``config.metrics`` says so."""
    if config.metrics == "all":
        return score(model, dataset, known, part, threads=config.threads)
    truth = known.loc[dataset.rows(part)].dropna()
    predicted = predict_with_confidence(model, dataset.features.loc[truth.index], dataset.schema.classes,
                                        threads=config.threads).labels
    return {"accuracy": float((predicted == truth.to_numpy(dtype=object)).mean())}


def _ask(model: FittedModel, dataset: Dataset, X_pool: pd.DataFrame, pool_known: pd.Series,
         config: SimulationConfig, room: int, rng: np.random.Generator) -> active.Query:
    """Which ``room`` pool rows the strategy wants revealed next (scores from the model just trained)."""
    strategy = config.strategy
    labels = pool_known.to_numpy(dtype=object)
    cold = active.cold_start_reason(strategy, labels) is not None
    proba = features = committee = None
    if not cold and (strategy in active.UNCERTAINTY or strategy == "hybrid"):
        proba = predict_with_confidence(model, X_pool, dataset.schema.classes, threads=config.threads).proba
    if not cold and strategy in active.COMMITTEE:
        train = pool_known.dropna()
        members = active.fit_committee(config.model, dataset.schema, X_pool.loc[train.index], train,
                                       members=config.committee, seed=int(rng.integers(2**31 - 1)),
                                       threads=config.threads)
        committee = active.committee_proba(members, X_pool, dataset.schema.classes, threads=config.threads)
    if cold or strategy in active.NEEDS_FEATURES:
        features = active.embed(model, X_pool, threads=config.threads)
    return active.query(strategy, labels, proba=proba, features=features, committee=committee, batch_size=room,
                        seed=rng, threads=config.threads)


# --------------------------------------------------------------------------- several strategies, repeated
@dataclass(frozen=True)
class Progress:
    """One finished round of :func:`compare`, for a progress bar."""

    strategy: str
    repeat: int  # 1-based
    repeats: int
    entry: dict  # the round's history entry
    done: int  # rounds finished so far, all runs together
    total: int  # rounds planned, all runs together

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / max(1, self.total))


def simulate(dataset: Dataset, config: SimulationConfig,
             on_round: Callable[[dict], None] | None = None) -> dict:
    """Run the loop headless with ``config.strategy`` once and return the documented JSON-ready result."""
    return compare(dataset, config, (config.strategy,), repeats=1,
                   on_progress=(lambda p: on_round(p.entry)) if on_round else None)


def compare(dataset: Dataset, config: SimulationConfig, strategies: Sequence[str] | None = None, *,
            repeats: int = 1, on_progress: Callable[[Progress], None] | None = None) -> dict:
    """Run every strategy ``repeats`` times and return the documented JSON-ready result (README, "simulate JSON").

    ``history`` is the first strategy's first run (seed ``config.seed``), as in a single run;
    ``strategies`` holds each strategy's learning curve averaged over its repeats, the labels it
    needed to reach 95 % and 99 % of the full-label model's validation accuracy (``None`` when
    never reached), each repeat's own count (``labels_to_95_runs``) and their percentile interval
    (``labels_to_95_interval``, :func:`repeat_interval`), and ``aulc``, its mean validation accuracy
    over the labels spent. ``targets`` marks a level *trivial* when the majority class reaches it.
    """
    strategies = list(dict.fromkeys(strategies or [config.strategy]))
    validate(dataset, config, strategies, repeats)
    truth = dataset.labels
    reference = full_label_reference(dataset, config)
    total = len(strategies) * repeats * planned_rounds(dataset, config)
    done = 0
    runs: dict[str, list[Run]] = defaultdict(list)
    for name in strategies:
        for repeat in range(repeats):
            def report(entry: dict, name: str = name, repeat: int = repeat) -> None:
                nonlocal done
                done += 1
                if on_progress:
                    on_progress(Progress(name, repeat + 1, repeats, entry, done, total))

            runs[name].append(run(dataset, replace(config, strategy=name, seed=config.seed + repeat), on_round=report))
    summaries = {}
    for name in strategies:
        summaries[name] = summarize([r.history for r in runs[name]], reference["validation"]["accuracy"])
        summaries[name]["notes"] = list(dict.fromkeys(n for r in runs[name] for n in r.notes))
        if config.noisy_group:
            summaries[name]["groups"] = _group_report(dataset, config, runs[name])
    baselines = _full_pool_baselines(dataset, truth, config.seed)
    return {
        "dataset": {"rows": len(dataset.frame), "classes": list(dataset.schema.classes),
                    "target": dataset.schema.target},
        "split": {part: int((dataset.split == part).sum()) for part in ("train", "validation", "test")},
        "config": {**asdict(config), "strategy": strategies[0], "strategies": strategies, "repeats": repeats},
        "baselines": baselines,
        "full_label_reference": reference,
        "targets": target_levels(reference["validation"]["accuracy"], baselines["majority"]["validation"]["accuracy"]),
        "history": runs[strategies[0]][0].history,
        "strategies": summaries,
    }


def summarize(histories: Sequence[Sequence[dict]], reference_accuracy: float) -> dict:
    """Learning curve averaged over repeats, labels to reach 95 % / 99 % of the reference, and AULC.

    ``aulc`` is the area under the averaged validation-accuracy curve divided by the labels it
    spans (trapezoids), i.e. the mean accuracy over the budget: comparable across strategies run
    with the same seed size, batch size and budget.
    """
    by_labels: dict[int, list[float]] = defaultdict(list)
    for history in histories:
        for entry in history:
            by_labels[int(entry["n_labels"])].append(float(entry["validation"]["accuracy"]))
    n = np.array(sorted(by_labels), dtype=float)
    mean = np.array([np.mean(by_labels[int(k)]) for k in n])
    std = np.array([np.std(by_labels[int(k)]) for k in n])
    result = {
        "curve": [[int(k), round(float(m), 6)] for k, m in zip(n, mean)],
        "curve_std": [[int(k), round(float(s), 6)] for k, s in zip(n, std)],
        "aulc": round(float(np.trapezoid(mean, n) / (n[-1] - n[0]) if len(n) > 1 else mean[0]), 6),
        "repeats": len(histories),
    }
    for key, level in TARGET_LEVELS.items():
        bar = level * reference_accuracy - 1e-12
        reached = np.flatnonzero(mean >= bar)
        result[key] = int(n[reached[0]]) if len(reached) else None
        result[f"{key}_runs"] = [_labels_to(history, bar) for history in histories]
        result[f"{key}_interval"] = repeat_interval(result[f"{key}_runs"])
    return result


def _labels_to(history: Sequence[dict], bar: float) -> int | None:
    """Labels one run had spent when its validation accuracy first reached ``bar``; ``None``: never, within budget."""
    return next((int(e["n_labels"]) for e in history if float(e["validation"]["accuracy"]) >= bar), None)


def repeat_interval(values: Sequence[int | None], confidence: float = INTERVAL) -> list[int | None] | None:
    """Percentile interval of per-repeat label counts: ``[low, high]`` of the observed values (rounded outward).

    With fewer than 40 repeats a 95 % interval is the range, min to max. A repeat that never reached
    the level counts as beyond the budget: ``high`` is ``None`` then, and the whole interval is ``None``
    when no repeat reached it.
    """
    known = [np.inf if v is None else float(v) for v in values]
    if not known or all(np.isinf(known)):
        return None
    tail = (1 - confidence) / 2 * 100
    low = np.percentile(known, tail, method="lower")
    high = np.percentile(known, 100 - tail, method="higher")
    return [int(low), None if np.isinf(high) else int(high)]


def _overlap(a: list[int | None] | None, b: list[int | None] | None) -> bool:
    """Whether two repeat intervals share a value; ``None`` (as a bound or the whole interval) is beyond the budget."""
    (a_low, a_high), (b_low, b_high) = ((np.inf if v is None else v for v in (x or [None, None])) for x in (a, b))
    return a_low <= b_high and b_low <= a_high


def target_levels(reference_accuracy: float, majority_accuracy: float | None) -> dict[str, dict]:
    """Each target level's validation accuracy and whether it is *trivial*: the majority class already reaches it."""
    return {key: {"accuracy": round(level * reference_accuracy, 6),
                  "trivial": majority_accuracy is not None and majority_accuracy >= level * reference_accuracy - 1e-12}
            for key, level in TARGET_LEVELS.items()}


def full_label_reference(dataset: Dataset, config: SimulationConfig) -> dict:
    """The same model fitted on every true label of the training pool: the ceiling the curves are measured against."""
    truth = dataset.labels
    model = fit_on_pool(dataset, truth, config.model, seed=config.seed, threads=config.threads)
    reference = {part: score(model, dataset, truth, part, threads=config.threads) for part in ("validation", "test")}
    if config.noisy_group:
        reference["groups"] = {"validation_accuracy": _group_accuracy(dataset, config, model)}
    return reference


def _group_accuracy(dataset: Dataset, config: SimulationConfig, model: FittedModel) -> dict[str, float | None]:
    """Validation accuracy of ``model`` inside the noisy group and on the rest."""
    rows = dataset.rows("validation")
    truth = dataset.labels.loc[rows].to_numpy(dtype=object)
    predicted = predict_with_confidence(model, dataset.features.loc[rows], dataset.schema.classes,
                                        threads=config.threads).labels
    member = in_group(dataset, rows, config.noisy_group)
    correct = predicted == truth
    return {"in_group": _share(correct[member]), "rest": _share(correct[~member])}


def _group_report(dataset: Dataset, config: SimulationConfig, runs: Sequence[Run]) -> dict:
    """How often the annotator was wrong inside the noisy group vs elsewhere, and what the last model made of it."""
    errors = {"in_group": [], "rest": []}
    accuracy = {"in_group": [], "rest": []}
    for one in runs:
        truth = dataset.labels.loc[one.answers.index].to_numpy(dtype=object)
        member = in_group(dataset, one.answers.index, config.noisy_group)
        wrong = one.answers.to_numpy(dtype=object) != truth
        errors["in_group"].append(_share(wrong[member]))
        errors["rest"].append(_share(wrong[~member]))
        for part, value in _group_accuracy(dataset, config, one.model).items():
            accuracy[part].append(value)
    column, value = parse_group(config.noisy_group)
    return {"column": column, "value": value,
            "label_error": {k: _mean(v) for k, v in errors.items()},
            "validation_accuracy": {k: _mean(v) for k, v in accuracy.items()}}


def _share(flags: np.ndarray) -> float | None:
    return float(flags.mean()) if len(flags) else None


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(float(np.mean(known)), 6) if known else None


def label_savings(result: dict, *, target: str = "labels_to_99", against: str = "random") -> list[str]:
    """The label savings against ``against`` in words, one sentence per other strategy, hedged honestly.

    e.g. "margin reached 99 % of full-label accuracy with 38 % of the labels random needed (76 vs 200)."
    When both strategies carry intervals across repeats (``labels_to_99_interval``) that overlap, the
    sentence says there is "no clear difference"; with one repeat it says the spread is unknown; a
    level the majority class already reaches (``result["targets"]``) is called trivial first.
    """
    level = f"{TARGET_LEVELS[target] * 100:.0f} %"
    summaries = result["strategies"]
    spent = max((c[-1][0] for c in (s["curve"] for s in summaries.values()) if c), default=0)
    name = lambda s: s.replace("_", " ")  # noqa: E731
    sentences = []
    if result.get("targets", {}).get(target, {}).get("trivial"):
        majority = result["baselines"]["majority"]["validation"]["accuracy"]
        bar = result["targets"][target]["accuracy"]
        sentences.append(f"Reaching {level} of full-label accuracy is trivial here: always answering the majority "
                         f"class already scores {majority:.3f} (the bar is {bar:.3f}), so the label counts below say "
                         "little about the strategies.")
    base = summaries.get(against, {}).get(target) if against in summaries else None
    for strategy, summary in summaries.items():
        if strategy == against:
            continue
        needed = summary[target]
        if against not in summaries:
            sentences.append(f"{name(strategy)} reached {level} of full-label accuracy with {needed} labels."
                             if needed is not None else
                             f"{name(strategy)} did not reach {level} of full-label accuracy within {spent} labels.")
            continue
        mine, theirs = summary.get(f"{target}_interval"), summaries[against].get(f"{target}_interval")
        repeats = min(summary.get("repeats", 0), summaries[against].get("repeats", 0))
        if repeats >= 2 and (needed is not None or base is not None) and _overlap(mine, theirs):
            sentences.append(f"No clear difference between {name(strategy)} and {name(against)} in labels to {level} "
                             f"of full-label accuracy: {_reach(name(strategy), needed, mine, spent)} and "
                             f"{_reach(name(against), base, theirs, spent)}; the ranges across {repeats} repeats "
                             "overlap.")
            continue
        if needed is not None and base is not None:
            share = needed / base
            sentence = (f"{name(strategy)} reached {level} of full-label accuracy with {share * 100:.0f} % of the "
                        f"labels {name(against)} needed ({needed} vs {base}).")
        elif needed is not None:
            sentence = (f"{name(strategy)} reached {level} of full-label accuracy with {needed} labels; "
                        f"{name(against)} did not within {spent}.")
        elif base is not None:
            sentence = (f"{name(strategy)} did not reach {level} of full-label accuracy within {spent} labels; "
                        f"{name(against)} needed {base}.")
        else:
            sentence = (f"Neither {name(strategy)} nor {name(against)} reached {level} of full-label accuracy "
                        f"within {spent} labels.")
        if repeats >= 2 and mine is not None and theirs is not None:
            sentence = sentence[:-1] + (f"; across {repeats} repeats the ranges "
                                        f"{'overlap' if _overlap(mine, theirs) else 'do not overlap'} "
                                        f"({_range(mine)} vs {_range(theirs)}).")
        elif repeats == 1 and (needed is not None or base is not None):
            sentence = sentence[:-1] + " (one run each: add repeats to see whether the difference holds)."
        sentences.append(sentence)
    return sentences


def reach_text(summary: dict, key: str) -> str:
    """ "60 (40–80)": labels to a level on the averaged curve, then the range across repeats (from two repeats on)."""
    needed = "never" if summary[key] is None else f"{summary[key]:,}"
    interval = summary.get(f"{key}_interval")
    if interval is None or summary.get("repeats", 1) < 2:
        return needed
    return f"{needed} ({_range(interval, beyond='beyond')})"


def _range(interval: list[int | None], *, beyond: str = "beyond the budget") -> str:
    low, high = interval
    return f"{low:,}–{beyond if high is None else f'{high:,}'}"


def _reach(strategy: str, needed: int | None, interval: list[int | None] | None, spent: int) -> str:
    """ "margin needed 60 (40–80)" or "random did not get there within 200"."""
    if needed is None:
        return f"{strategy} did not get there on average within {spent}" + (
            f" (range {_range(interval)})" if interval is not None else "")
    return f"{strategy} needed {needed} ({_range(interval)})" if interval is not None else f"{strategy} needed {needed}"


def _full_pool_baselines(dataset: Dataset, truth: pd.Series, seed: int) -> dict:
    """Baselines fitted on the fully labelled training pool: the fixed bar every version must clear."""
    train = truth.loc[dataset.rows("train")]
    X = dataset.features.loc[train.index]
    return {kind: {part: score(fit(kind, dataset.schema, X, train, seed=seed), dataset, truth, part)
                   for part in ("validation", "test")}
            for kind in BASELINE_KINDS}
