"""Command line: ``python -m hitl_core check|explain|fairness|simulate`` over files, and the database
commands of :mod:`hitl_core.cli_db` (``project create``, ``label``, ``retrain``, ``worker``,
``versions``, ``export``), over the same engine and write path as the app.

Bad input exits with code 2 and one line saying what is wrong; a conflict exits with code 3; an
action the person's role may not do exits with code 4 ("permission denied: ROLE may not ACTION").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from hitl_core import cli_db, counterfactual
from hitl_core.actions import InvalidAction
from hitl_core.model_files import UntrustedModel
from hitl_core.users import PermissionDenied
from hitl_core.config import Settings
from hitl_core.data import Dataset, DataError, check, labels_as_text, read_table
from hitl_core.fairness import DEFAULT_BINS, DEFAULT_MIN_GROUP_SIZE, GROUP_METRICS, FairnessReport, breakdown
from hitl_core.loop import fit_on_pool
from hitl_core.models import MODEL_KINDS, predict_with_confidence
from hitl_core.samples import SAMPLE_NAMES, load_sample
from hitl_core.similar import CaseIndex, CaseSpace, sentence
from hitl_core.active import COMMITTEE_KINDS, STRATEGIES
from hitl_core.simulate import SimulationConfig, compare, label_savings, reach_text, validate

EXIT_BAD_INPUT = 2
EXIT_PERMISSION = 4


def load_source(spec: str, settings: Settings, encoding: str | None = None) -> tuple[str, pd.DataFrame]:
    """``sample:NAME`` for a bundled sample, else a path to a .csv/.xlsx/.parquet file."""
    if spec.startswith("sample:"):
        name = spec.split(":", 1)[1]
        if name not in SAMPLE_NAMES:
            raise DataError(f"Unknown sample '{name}'; choose one of {', '.join(SAMPLE_NAMES)}.")
        return name, load_sample(name).frame
    path = Path(spec)
    return path.stem, read_table(path, max_bytes=settings.max_upload_bytes, encoding=encoding)


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="path to a .csv/.xlsx/.parquet file, or sample:loan|breast_cancer|wine")
    parser.add_argument("--target", required=True, help="column to predict")
    parser.add_argument("--id", dest="id_column", help="column with a unique ID per row")
    parser.add_argument("--sensitive", action="append", default=[], help="sensitive attribute (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], help="column to leave out (repeatable)")
    parser.add_argument("--pii", action="append", default=[], help="personal data column, never a feature (repeatable)")
    parser.add_argument("--encoding", help="text encoding of a CSV file, e.g. latin-1 or cp1252 (default: UTF-8)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hitl_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="validate a table and print its report")
    _add_data_args(check_cmd)
    _add_explain_parser(commands)
    _add_fairness_parser(commands)
    sim = commands.add_parser("simulate", help="run the loop with a simulated annotator")
    _add_data_args(sim)
    sim.add_argument("--model", choices=sorted(MODEL_KINDS), default="logreg")
    sim.add_argument("--seed-size", type=int, default=20, help="labels revealed before the first model")
    sim.add_argument("--batch-size", type=int, default=20, help="labels revealed per round")
    sim.add_argument("--budget", type=int, default=200, help="total labels to reveal, seed included")
    sim.add_argument("--annotator-noise", type=float, default=0.0, help="probability the annotator is wrong")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--strategy", nargs="+", action="extend", choices=list(STRATEGIES), metavar="STRATEGY",
                     help=f"query strategy, several at once to compare ({'|'.join(STRATEGIES)}; default random)")
    sim.add_argument("--repeats", type=int, default=1, help="runs per strategy, seeds SEED, SEED+1, ... (curves averaged)")
    sim.add_argument("--committee", choices=list(COMMITTEE_KINDS), default="bootstrap",
                     help="query-by-committee members: bootstrap refits of --model, or one model per family")
    sim.add_argument("--noisy-group", metavar="COL=VALUE", help="rows on which the annotator errs with --group-noise")
    sim.add_argument("--group-noise", type=float, default=0.0, help="probability the annotator is wrong on --noisy-group")
    sim.add_argument("--json", type=Path, help="write the result as JSON to this file")
    cli_db.add_parsers(commands, _add_data_args)
    return parser


def _add_explain_parser(commands) -> None:
    explain = commands.add_parser("explain", help="explain one row's prediction (SHAP or LIME)")
    _add_data_args(explain)
    explain.add_argument("--row", required=True, help="the ID column's value (with --id), else the row's position")
    explain.add_argument("--method", choices=["shap", "lime"], default="shap")
    explain.add_argument("--model", choices=sorted(MODEL_KINDS), default="logreg")
    explain.add_argument("--top", type=int, default=10, help="contributions to print")
    explain.add_argument("--similar", type=int, default=10, metavar="K",
                         help="similar past cases: the K nearest labelled pool rows in the model's feature space "
                              "(0: none)")
    explain.add_argument("--counterfactuals", type=int, default=0, metavar="K",
                         help="up to K checked changes that flip the prediction (DiCE; 0: none)")
    explain.add_argument("--immutable", action="append", default=[], metavar="COL",
                         help="a feature the counterfactuals must not change (repeatable); sensitive and age-like "
                              "features never change")
    explain.add_argument("--desired", metavar="CLASS",
                         help="the class the counterfactuals aim for (default: the favourable one, else the most "
                              "likely other class)")
    explain.add_argument("--seed", type=int, default=0)
    explain.add_argument("--json", type=Path, help="write the explanation as JSON to this file")


def _run_explain(args: argparse.Namespace, settings: Settings) -> None:
    """Train on the file's labelled training rows (model version 1) and explain one row."""
    from hitl_core.explain import LimeExplainer, ShapExplainer  # shap costs seconds to import: only for explain
    name, frame, schema, _ = _validated(args, settings)
    dataset = Dataset.create(name, frame, schema, seed=args.seed)
    key = str(args.row)
    if key not in dataset.frame.index:
        where = f"ID column '{schema.id_column}'" if schema.id_column else f"row positions 0-{len(frame) - 1}"
        raise DataError(f"Row '{key}' is not in the table; --row takes a value of the {where}.")
    model = fit_on_pool(dataset, dataset.labels, args.model, seed=args.seed, threads=settings.threads)
    X = dataset.features.loc[[key]]
    predicted = predict_with_confidence(model, X, schema.classes).labels[0]
    background = dataset.features.loc[dataset.rows("train")]
    explainer = (ShapExplainer if args.method == "shap" else LimeExplainer)(model, schema, background, seed=args.seed)
    explanation = explainer.explain(X, predicted)[0]
    print(f"row {key}: predicted '{predicted}' by {args.model} (model version 1); {args.method} in "
          f"{explanation.output_space}: base {explanation.base_value:.4f} -> output {explanation.output:.4f}")
    print(explanation.to_frame().head(args.top).to_string(index=False))
    similar = _similar_cases(model, dataset, X, key, args.similar) if args.similar else None
    if similar is not None:
        print(f"{sentence(similar, predicted)}\n{similar.to_string(index=False)}")
    recourse = _counterfactuals(args, model, dataset, X) if args.counterfactuals else None
    if recourse is not None:
        print(recourse.summary())
        for cf in recourse.counterfactuals:
            changes = ", ".join(f"{c}: {a} -> {b}" for c, (a, b) in cf.changes.items())
            print(f"  -> '{cf.predicted}' ({cf.confidence:.2f}) if {changes}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "model_version": 1, **explanation.to_json(),
                                         "similar": [] if similar is None else similar.to_dict("records"),
                                         "counterfactuals": [] if recourse is None else
                                         [c.to_json() for c in recourse.counterfactuals]},
                                        indent=2, default=str))
        print(f"wrote {args.json}")


def _similar_cases(model, dataset: Dataset, row: pd.DataFrame, key: str, k: int) -> pd.DataFrame:
    """The ``k`` labelled pool rows nearest to ``row`` in the model's preprocessed space: row, label, distance."""
    if k < 0:
        raise DataError(f"--similar takes a number of cases, 0 or more; got {k}.")
    pool = dataset.rows("train")
    return CaseIndex(CaseSpace(model, dataset.features.loc[pool]), dataset.labels.loc[pool]).query(row, k, exclude=key)


def _counterfactuals(args: argparse.Namespace, model, dataset: Dataset, row: pd.DataFrame):
    """Up to ``--counterfactuals`` checked changes of the row that give ``--desired``, immutable columns kept."""
    schema = dataset.schema
    proba = predict_with_confidence(model, row, schema.classes)
    desired = args.desired or counterfactual.default_desired(schema, schema.classes, proba.proba[0], proba.labels[0])
    immutable = tuple(dict.fromkeys([*counterfactual.default_immutable(schema), *args.immutable]))
    settings = counterfactual.RecourseSettings(desired=desired, count=args.counterfactuals, immutable=immutable,
                                               seed=args.seed)
    try:
        settings.validated(schema)
        explainer = counterfactual.CounterfactualExplainer(model, schema, dataset.features.loc[dataset.rows("train")])
        return explainer.explain(row, settings)
    except counterfactual.CounterfactualError as exc:
        raise DataError(str(exc)) from exc


def _validated(args: argparse.Namespace, settings: Settings):
    name, frame = load_source(args.data, settings, args.encoding)
    schema, report = check(frame, args.target, id_column=args.id_column, sensitive=args.sensitive,
                           exclude=args.exclude, pii=args.pii)
    return name, frame, schema, report


def _print_report(report) -> None:
    print(f"rows: {report.n_rows:,}   columns: {report.n_columns}   unlabeled: {report.n_unlabeled:,}")
    print(report.columns.to_string(index=False))
    print("\nclass balance:")
    print(report.class_balance.to_string())
    for warning in report.warnings:
        print(f"warning: {warning}")


def _run_simulation(args: argparse.Namespace, settings: Settings) -> None:
    name, frame, schema, _ = _validated(args, settings)
    labelled = frame[labels_as_text(frame[args.target]).notna().to_numpy()].reset_index(drop=True)
    dataset = Dataset.create(name, labelled, schema, seed=args.seed)
    config = SimulationConfig(model=args.model, seed_size=args.seed_size, batch_size=args.batch_size,
                              budget=args.budget, annotator_noise=args.annotator_noise, seed=args.seed,
                              threads=settings.threads, strategy=(args.strategy or ["random"])[0],
                              committee=args.committee, noisy_group=args.noisy_group, group_noise=args.group_noise,
                              sensitive=tuple(args.sensitive))  # each round gains a fairness report
    if not 0 <= config.annotator_noise <= 1:
        raise DataError("--annotator-noise is a probability; give a value between 0 and 1.")
    if min(config.seed_size, config.batch_size, config.budget) < 1:
        raise DataError("--seed-size, --batch-size and --budget must be at least 1.")
    strategies = list(dict.fromkeys(args.strategy or ["random"]))
    validate(dataset, config, strategies, args.repeats)  # bad settings: one error line, before any output
    if len(labelled) < len(frame):
        print(f"note: {len(frame) - len(labelled):,} unlabeled rows left out (no truth to simulate)", file=sys.stderr)

    several = len(strategies) > 1 or args.repeats > 1
    run_column = f"{'strategy':>16} {'run':>4} " if several else ""
    print(f"{run_column}{'version':>7} {'labels':>7} {'val acc':>8} {'val f1':>7} {'test acc':>8}")
    result = compare(dataset, config, strategies, repeats=args.repeats, on_progress=lambda p: print(
        (f"{p.strategy:>16} {p.repeat:>4} " if several else "") +
        f"{p.entry['version']:>7} {p.entry['n_labels']:>7} {p.entry['validation']['accuracy']:>8.3f} "
        f"{p.entry['validation']['f1_macro']:>7.3f} {p.entry['test']['accuracy']:>8.3f}", flush=True))
    majority = result["baselines"]["majority"]["validation"]["accuracy"]
    print(f"baseline majority: val acc {majority:.3f}")
    _print_strategies(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


def _print_strategies(result: dict) -> None:
    """Labels needed per strategy against the full-label model, and the savings against random in words."""
    reference = result["full_label_reference"]["validation"]["accuracy"]
    print(f"full-label {result['config']['model']}: val acc {reference:.3f}")
    print(f"{'strategy':>16} {'labels to 95%':>17} {'labels to 99%':>17} {'AULC':>6}   (range across repeats)")
    for name, summary in result["strategies"].items():
        reach = {k: reach_text(summary, k) for k in ("labels_to_95", "labels_to_99")}
        print(f"{name:>16} {reach['labels_to_95']:>17} {reach['labels_to_99']:>17} {summary['aulc']:>6.3f}")
        for note in summary["notes"]:
            print(f"note: {name}: {note}")
    for sentence in label_savings(result):
        print(sentence)


def _add_fairness_parser(commands) -> None:
    cmd = commands.add_parser("fairness", help="group metrics and disparities of a model trained on the labels")
    _add_data_args(cmd)
    cmd.add_argument("--model", choices=sorted(MODEL_KINDS), default="logreg")
    cmd.add_argument("--split", choices=["validation", "test"], default="validation",
                     help="rows the breakdown is computed on (the held-out test set is only ever scored)")
    cmd.add_argument("--positive", metavar="CLASS",
                     help="the favourable outcome (the class people want, e.g. 'no' for deny: approved); its "
                          "selection rate is compared between groups. Without it the last class is used, which "
                          "may be the unfavourable one (deny: yes)")
    cmd.add_argument("--min-group-size", type=int, default=DEFAULT_MIN_GROUP_SIZE,
                     help="smaller groups are flagged too small and left out of the disparities")
    cmd.add_argument("--bins", type=int, default=DEFAULT_BINS, help="quantile ranges for a numeric sensitive column")
    cmd.add_argument("--sensitive-as-features", action="store_true",
                     help="let the model learn from the sensitive attributes (default: they are not features)")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--json", type=Path, help="write the breakdown as JSON to this file")


def _run_fairness(args: argparse.Namespace, settings: Settings) -> None:
    """Train on the labelled training rows (model version 1) and break its predictions down by group."""
    if not 1 <= len(args.sensitive) <= 2:
        raise DataError("fairness needs one sensitive attribute (--sensitive COLUMN), or two for their intersection; "
                        f"got {len(args.sensitive)}.")
    if args.min_group_size < 1 or args.bins < 2:
        raise DataError("--min-group-size must be at least 1 and --bins at least 2.")
    name, frame = load_source(args.data, settings, args.encoding)
    schema, _ = check(frame, args.target, id_column=args.id_column, sensitive=args.sensitive, exclude=args.exclude,
                      pii=args.pii, sensitive_as_features=args.sensitive_as_features)
    dataset = Dataset.create(name, frame, schema, seed=args.seed)
    model = fit_on_pool(dataset, dataset.labels, args.model, seed=args.seed, threads=settings.threads)
    report = breakdown(model, dataset, args.sensitive, part=args.split, positive=args.positive,
                       min_group_size=args.min_group_size, bins=args.bins, threads=settings.threads)
    _print_fairness(report, args.model)
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2))
        print(f"wrote {args.json}")


def _print_fairness(report: FairnessReport, model: str) -> None:
    print(f"{model} (model version 1) on {report.split}, by {report.sensitive}; "
          f"favourable outcome '{report.positive_class}' (selection rate = share predicted '{report.positive_class}')")
    table = report.by_group.rename(columns={**GROUP_METRICS, "too_small": "too small"})
    print(table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="n/a"))
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"demographic parity: difference {fmt(report.demographic_parity_difference)}  "
          f"ratio {fmt(report.demographic_parity_ratio)}")
    print(f"equalized odds:     difference {fmt(report.equalized_odds_difference)}  "
          f"ratio {fmt(report.equalized_odds_ratio)}")
    if report.four_fifths_violated is None:
        print("four-fifths rule: not judged (fewer than two groups large enough)")
    elif report.four_fifths_violated:
        print(f"four-fifths rule: VIOLATED: {', '.join(report.below_four_fifths())} selected at under 80 % of the "
              "highest group's rate")
    else:
        print("four-fifths rule: met (every group's selection rate is at least 80 % of the highest)")
    too_small = ", ".join(report.too_small) or "none"
    print(f"too small to judge (< {report.min_group_size} rows): {too_small}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        if args.command in cli_db.COMMANDS:
            encoding = getattr(args, "encoding", None)
            return cli_db.run(args, settings, lambda spec, s: load_source(spec, s, encoding))
        if args.command == "check":
            _print_report(_validated(args, settings)[3])
        elif args.command == "explain":
            _run_explain(args, settings)
        elif args.command == "fairness":
            _run_fairness(args, settings)
        else:
            _run_simulation(args, settings)
    except PermissionDenied as exc:
        print(exc, file=sys.stderr)
        return EXIT_PERMISSION
    except (DataError, InvalidAction, UntrustedModel) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
