"""Command line: ``python -m hitl_core check|simulate`` over the same engine as the app.

Bad input exits with code 2 and one line saying what is wrong.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from hitl_core.config import Settings
from hitl_core.data import Dataset, DataError, check, labels_as_text, read_table
from hitl_core.models import MODEL_KINDS
from hitl_core.samples import SAMPLE_NAMES, load_sample
from hitl_core.simulate import SimulationConfig, simulate

EXIT_BAD_INPUT = 2


def load_source(spec: str, settings: Settings) -> tuple[str, pd.DataFrame]:
    """``sample:NAME`` for a bundled sample, else a path to a .csv/.xlsx/.parquet file."""
    if spec.startswith("sample:"):
        name = spec.split(":", 1)[1]
        if name not in SAMPLE_NAMES:
            raise DataError(f"Unknown sample '{name}'; choose one of {', '.join(SAMPLE_NAMES)}.")
        return name, load_sample(name).frame
    path = Path(spec)
    return path.stem, read_table(path, max_bytes=settings.max_upload_bytes)


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="path to a .csv/.xlsx/.parquet file, or sample:loan|breast_cancer|wine")
    parser.add_argument("--target", required=True, help="column to predict")
    parser.add_argument("--id", dest="id_column", help="column with a unique ID per row")
    parser.add_argument("--sensitive", action="append", default=[], help="sensitive attribute (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], help="column to leave out (repeatable)")
    parser.add_argument("--pii", action="append", default=[], help="personal data column, never a feature (repeatable)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hitl_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="validate a table and print its report")
    _add_data_args(check_cmd)
    sim = commands.add_parser("simulate", help="run the loop with a simulated annotator")
    _add_data_args(sim)
    sim.add_argument("--model", choices=sorted(MODEL_KINDS), default="logreg")
    sim.add_argument("--seed-size", type=int, default=20, help="labels revealed before the first model")
    sim.add_argument("--batch-size", type=int, default=20, help="labels revealed per round")
    sim.add_argument("--budget", type=int, default=200, help="total labels to reveal, seed included")
    sim.add_argument("--annotator-noise", type=float, default=0.0, help="probability the annotator is wrong")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--json", type=Path, help="write the result as JSON to this file")
    return parser


def _validated(args: argparse.Namespace, settings: Settings):
    name, frame = load_source(args.data, settings)
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
    if len(labelled) < len(frame):
        print(f"note: {len(frame) - len(labelled):,} unlabeled rows left out (no truth to simulate)", file=sys.stderr)
    dataset = Dataset.create(name, labelled, schema, seed=args.seed)
    config = SimulationConfig(model=args.model, seed_size=args.seed_size, batch_size=args.batch_size,
                              budget=args.budget, annotator_noise=args.annotator_noise, seed=args.seed,
                              threads=settings.threads)
    if not 0 <= config.annotator_noise <= 1:
        raise DataError("--annotator-noise is a probability; give a value between 0 and 1.")
    if min(config.seed_size, config.batch_size, config.budget) < 1:
        raise DataError("--seed-size, --batch-size and --budget must be at least 1.")

    print(f"{'version':>7} {'labels':>7} {'val acc':>8} {'val f1':>7} {'test acc':>8}")
    result = simulate(dataset, config, on_round=lambda e: print(
        f"{e['version']:>7} {e['n_labels']:>7} {e['validation']['accuracy']:>8.3f} "
        f"{e['validation']['f1_macro']:>7.3f} {e['test']['accuracy']:>8.3f}", flush=True))
    majority = result["baselines"]["majority"]["validation"]["accuracy"]
    print(f"baseline majority: val acc {majority:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        if args.command == "check":
            _print_report(_validated(args, settings)[3])
        else:
            _run_simulation(args, settings)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
