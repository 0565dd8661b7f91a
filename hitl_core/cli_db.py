"""Command line over a project database: ``project create``, ``label``, ``retrain``, ``worker``, ``versions``,
``rollback``, ``predict``, ``export``, ``drift``, ``batch add``, ``complain``, ``complaints``, ``resolve``,
``withdraw``, ``report`` (the model card), ``agreement``.

Every change goes through :mod:`hitl_core.actions`, exactly as the app's pages do. Exit codes:
2 bad input (unknown row, label, file), 3 conflict (someone changed the row since ``--expect``),
4 permission denied (``--as`` names an account whose role may not do it). Whoever can run these
commands can open the database itself, so ``--as`` is trusted as the account to act as; the roles
keep honest people inside their job, the database's own permissions keep everyone else out.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from hitl_core import actions, agreement, batches, complaints, drift, export, jobs, loop, report, users
from hitl_core.config import Settings
from hitl_core.data import DataError, check
from hitl_core.models import MODEL_KINDS, predict_with_confidence, threads_limited
from hitl_core.records import NOT_CHECKED, RETRAIN_POLICIES, DecisionRequest
from hitl_core.store import Store

EXIT_BAD_INPUT = 2
EXIT_CONFLICT = 3
COMMANDS = ("project", "label", "retrain", "worker", "versions", "export", "rollback", "predict", "drift", "users",
            "batch", "complain", "complaints", "resolve", "withdraw", "report", "agreement")


def _db_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (default: HITL_DATABASE_URL, else the app's SQLite file)")
    parser.add_argument("--as", dest="actor", default="local", help="who makes the change (default: local)")


def add_parsers(commands, add_data_args) -> None:
    """Register the database commands on the CLI's sub-parsers."""
    project = commands.add_parser("project", help="create a project from a table and train version 1")
    create = project.add_subparsers(dest="project_command", required=True).add_parser("create")
    add_data_args(create)
    create.add_argument("--name", help="project name (default: the file's name)")
    create.add_argument("--favourable", help="the class that is the favourable outcome for people (fairness)")
    create.add_argument("--model", choices=sorted(MODEL_KINDS), default="logreg")
    create.add_argument("--policy", choices=list(RETRAIN_POLICIES), default="every", help="when to retrain")
    create.add_argument("--every", type=int, default=5, help="N for --policy every_n")
    create.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    _db_args(create)

    label = commands.add_parser("label", help="record a person's label for one row of the review pool")
    label.add_argument("--project", type=int, required=True)
    label.add_argument("--row", required=True, help="row key (the ID column's value, else the row position)")
    label.add_argument("--label", required=True, help="the class to record")
    label.add_argument("--expect", help="the label you saw ('' = unlabeled); refused with exit 3 if it changed since")
    label.add_argument("--note", default="")
    _db_args(label)

    retrain = commands.add_parser("retrain", help="ask for a new model version (a worker trains it)")
    retrain.add_argument("--project", type=int, required=True)
    retrain.add_argument("--wait", action="store_true",
                         help="wait for the version; trains in this process when no worker is running")
    _db_args(retrain)

    worker = commands.add_parser("worker", help="train requested versions, taking jobs from the database")
    worker.add_argument("--once", action="store_true", help="stop when the queue is empty")
    worker.add_argument("--poll", type=float, default=0.2,
                        help="seconds between looks at an empty queue (an idle look is one read)")
    _db_args(worker)

    versions = commands.add_parser("versions", help="a project's model versions")
    versions.add_argument("--project", type=int, required=True)
    versions.add_argument("--json", action="store_true", help="print JSON")
    _db_args(versions)

    rollback = commands.add_parser("rollback", help="make an earlier (or a superseded) version the current model")
    rollback.add_argument("--project", type=int, required=True)
    rollback.add_argument("--to", type=int, required=True, help="the version number")
    rollback.add_argument("--reason", required=True, help="why (shown in the audit trail)")
    _db_args(rollback)

    predict = commands.add_parser("predict", help="score a table with the project's current version")
    predict.add_argument("--project", type=int, required=True)
    predict.add_argument("data", help="a .csv/.xlsx/.parquet file with the project's feature columns")
    predict.add_argument("--out", type=Path, required=True, help="CSV or Parquet (by suffix)")
    _db_args(predict)

    shift = commands.add_parser("drift", help="compare a new table with the project's training pool (PSI, KS / "
                                              "chi-square, predicted-class shares)")
    shift.add_argument("--project", type=int, required=True)
    shift.add_argument("data", help="a .csv/.xlsx/.parquet file with the project's feature columns")
    shift.add_argument("--alpha", type=float, default=drift.DEFAULT_ALPHA,
                       help="significance level of the KS / chi-square test (default: %(default)s)")
    shift.add_argument("--psi", type=float, default=drift.DEFAULT_PSI_THRESHOLD,
                       help="PSI at or above which a significant change counts as drift (default: %(default)s)")
    shift.add_argument("--json", action="store_true", help="print JSON")
    _db_args(shift)

    batch = commands.add_parser("batch", help="new rows for a project after it was created")
    add = batch.add_subparsers(dest="batch_command", required=True).add_parser(
        "add", help="append a file of new rows (the project's columns; target empty = unlabeled), scored by the "
                    "current model, with its drift against the training pool")
    add.add_argument("--project", type=int, required=True)
    add.add_argument("data", help="a .csv/.xlsx/.parquet file with the project's columns")
    add.add_argument("--encoding", help="text encoding of a CSV file, e.g. latin-1 or cp1252 (default: UTF-8)")
    _db_args(add)

    accounts = commands.add_parser("users", help="accounts and roles (once one exists, the app asks for a login)")
    account_commands = accounts.add_subparsers(dest="users_command", required=True)
    add = account_commands.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=list(users.ROLES))
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (without it the account cannot sign in "
                          "with a password: OIDC or the CLI only)")
    _db_args(add)
    change = account_commands.add_parser("set", help="change an account's role or password")
    change.add_argument("name")
    change.add_argument("--role", choices=list(users.ROLES))
    change.add_argument("--password-stdin", action="store_true", help="read the new password from standard input")
    _db_args(change)
    listing = account_commands.add_parser("list", help="the accounts and their roles")
    listing.add_argument("--json", action="store_true", help="print JSON")
    _db_args(listing)

    complain = commands.add_parser("complain", help="flag the decision about a row, with a reason (anyone; the row "
                                                    "goes first in the review queue)")
    complain.add_argument("--project", type=int, required=True)
    complain.add_argument("--row", required=True, help="row key (the ID column's value, else the row position)")
    complain.add_argument("--reason", required=True, help="what is wrong with the decision")
    _db_args(complain)

    listed = commands.add_parser("complaints", help="a project's complaints and how they were resolved")
    listed.add_argument("--project", type=int, required=True)
    listed.add_argument("--open", action="store_true", help="only complaints nobody has resolved yet")
    listed.add_argument("--json", action="store_true", help="print JSON")
    _db_args(listed)

    resolve = commands.add_parser("resolve", help="answer a complaint: keep the decision or change the label")
    resolve.add_argument("--project", type=int, required=True)
    resolve.add_argument("--complaint", type=int, required=True, help="the complaint's number")
    resolve.add_argument("--outcome", choices=["kept", "changed"], required=True)
    resolve.add_argument("--label", help="the new label (with --outcome changed)")
    resolve.add_argument("--reason", required=True, help="why (stored with the complaint and in the audit trail)")
    _db_args(resolve)

    gone = commands.add_parser("withdraw", help="remove a data subject's rows and every trace of them (admins)")
    gone.add_argument("--project", type=int, required=True)
    gone.add_argument("--row", action="append", required=True, help="row key to remove (repeat for several)")
    gone.add_argument("--reason", default="the data subject asked for their data to be removed",
                      help="why (the audit trail keeps it, with the rows' keys and values redacted)")
    _db_args(gone)

    card = commands.add_parser("report", help="the model card: purpose, data, metrics beside baselines, costs, "
                                              "fairness, label provenance, safety checks, limitations, history")
    card.add_argument("--project", type=int, required=True)
    card.add_argument("--out", type=Path, required=True, help="the file to write (.md: Markdown, else HTML)")
    card.add_argument("--format", choices=["html", "md", "markdown"],
                      help="html (self-contained, opens offline) or md; default: by the --out suffix")
    _db_args(card)

    agree = commands.add_parser("agreement", help="how far people agree on the rows two or more of them labelled "
                                                  "(Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha)")
    agree.add_argument("--project", type=int, required=True)
    agree.add_argument("--json", action="store_true", help="print JSON")
    _db_args(agree)

    out = commands.add_parser("export", help="labels, decisions, events or complaints as CSV or Parquet")
    out.add_argument("--project", type=int, required=True)
    out.add_argument("--what", choices=list(export.TABLES), required=True)
    out.add_argument("--format", choices=["csv", "parquet"], default="csv")
    out.add_argument("--out", type=Path, required=True)
    _db_args(out)


def run(args: argparse.Namespace, settings: Settings, load_source) -> int:
    """Run one database command; bad input raises DataError/InvalidAction (exit 2), conflicts exit 3."""
    store = Store(args.db or settings.database_url)
    try:
        if args.command == "project":
            return _create(args, settings, store, load_source)
        if args.command == "users":
            return _users(args, store)
        if args.command == "worker":
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())  # leave the workers table on a plain kill
            n = jobs.work(store, once=args.once, poll=args.poll, threads=settings.threads, stop=stop)
            print(json.dumps({"jobs": n}))
            return 0
        _require_project(store, args.project)
        if args.command == "label":
            return _label(args, store)
        if args.command == "retrain":
            return _retrain(args, settings, store)
        if args.command == "versions":
            return _versions(args, store)
        if args.command == "rollback":
            version = actions.set_current_version(store, args.project, args.actor, version=args.to, reason=args.reason)
            print(json.dumps({"project": args.project, "current": version.version}))
            return 0
        if args.command == "predict":
            return _predict(args, settings, store, load_source)
        if args.command == "drift":
            return _drift(args, settings, store, load_source)
        if args.command == "batch":
            return _batch_add(args, settings, store, load_source)
        if args.command == "report":
            return _report(args, settings, store)
        if args.command == "agreement":
            return _agreement(args, store)
        if args.command in ("complain", "complaints", "resolve", "withdraw"):
            return _recourse(args, settings, store)
        frame = export.export(store, args.project, args.what, threads=settings.threads)
        actions.record_export(store, args.project, args.actor, what=f"{args.what} ({args.format})", rows=len(frame))
        args.out.write_bytes(export.write_table(frame, args.format))
        print(f"wrote {len(frame):,} rows to {args.out}")
        return 0
    finally:
        store.engine.dispose()


def _report(args, settings: Settings, store: Store) -> int:
    """Write the model card of the project's current version (aggregates only: no row of anyone's data)."""
    fmt = report.format_for(args.out, args.format)
    with threads_limited(settings.threads):
        text = report.render(report.gather(store, args.project), fmt)
    args.out.write_text(text, encoding="utf-8")
    print(json.dumps({"project": args.project, "format": fmt, "out": str(args.out), "bytes": len(text.encode())}))
    return 0


def _users(args, store: Store) -> int:
    if args.users_command == "add":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        user = actions.add_user(store, args.actor, name=args.name, role=args.role, password=password)
        print(json.dumps({"user": user.name, "role": user.role, "password": user.has_password}))
        return 0
    if args.users_command == "set":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        if args.role is None and password is None:
            raise actions.InvalidAction("Nothing to change: give --role and/or --password-stdin.")
        user = actions.set_user(store, args.actor, name=args.name, role=args.role, password=password)
        print(json.dumps({"user": user.name, "role": user.role, "password": user.has_password}))
        return 0
    accounts = [{"name": u.name, "role": u.role, "password": u.has_password, "created_by": u.created_by,
                 "created_at": u.created_at.isoformat()} for u in store.users()]
    if args.json:
        print(json.dumps(accounts, indent=2))
    elif not accounts:
        print("no accounts: local mode (no login). Add the first with `users add NAME --role admin`.")
    else:
        for account in accounts:
            print(f"{account['name']:<30} {account['role']:<10} {'password' if account['password'] else '-'}")
    return 0


def _require_project(store: Store, project_id: int) -> None:
    if project_id not in {p.id for p in store.projects()}:
        raise DataError(f"No project {project_id}; list them with the app's sidebar or create one with "
                        "`python -m hitl_core project create`.")


def _create(args, settings: Settings, store: Store, load_source) -> int:
    name, frame = load_source(args.data, settings)
    schema, _ = check(frame, args.target, id_column=args.id_column, sensitive=args.sensitive, exclude=args.exclude,
                      pii=args.pii, favourable=args.favourable)
    project, version = actions.create_project(
        store, args.actor, name=args.name or name, source=args.data, frame=frame, schema=schema,
        model_kind=args.model, retrain_policy=args.policy, retrain_every=args.every, threads=settings.threads)
    result = {"project": project.id, "version": version.version}
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result))
    return 0


def _label(args, store: Store) -> int:
    expected = NOT_CHECKED if args.expect is None else (args.expect or None)
    request = DecisionRequest(row_key=str(args.row), new_label=args.label, expected=expected, note=args.note)
    outcome = actions.record_decisions(store, args.project, args.actor, [request])
    if outcome.conflicts:
        print(f"conflict: {outcome.conflicts[0].message()}", file=sys.stderr)
        return EXIT_CONFLICT
    saved = outcome.saved[0]
    print(json.dumps({"decision": saved.id, "old_label": saved.old_label, "new_label": saved.new_label,
                      "retrain_job": outcome.retrain.id if outcome.retrain else None}))
    return 0


def _retrain(args, settings: Settings, store: Store) -> int:
    if args.wait and not store.live_workers(jobs.WORKER_ALIVE):
        version = jobs.run_now(store, args.project, args.actor, threads=settings.threads)
        print(json.dumps({"version": version.version if version else None,
                          "status": version.status if version else "taken by another process"}))
        return 0
    job = actions.request_retrain(store, args.project, args.actor)
    if not args.wait:
        print(json.dumps({"job": job.id, "status": job.status}))
        return 0
    while (finished := next((j for j in store.jobs(args.project) if j.id == job.id), job)).status in (
            "queued", "running"):
        time.sleep(0.2)
    print(json.dumps({"job": job.id, "status": finished.status, "version": finished.result_version,
                      "error": finished.error or None}))
    return 0 if finished.status == "done" else 1


def _versions(args, store: Store) -> int:
    versions = [{"version": v.version, "status": v.status, "n_decisions": v.n_decisions,
                 "n_human_labels": v.n_human_labels, "model": v.model_kind, "trigger": v.trigger,
                 "created_at": v.created_at.isoformat(), "reason": v.status_reason,
                 "metrics": {"validation": v.validation, "test": v.test}}
                for v in store.model_versions(args.project)]
    if args.json:
        print(json.dumps(versions, indent=2))
    else:
        for v in versions:
            print(f"v{v['version']:<4} {v['status']:<11} {v['n_decisions']:>6} decisions  {v['model']:<7} "
                  f"accuracy {v['metrics']['validation'].get('accuracy', float('nan')):.3f}  {v['reason']}")
    return 0


def _predict(args, settings: Settings, store: Store, load_source) -> int:
    """Row key, predicted class, confidence and per-class probabilities from the current version."""
    project = store.project(args.project)
    current = store.current_version(project.id)
    _, frame = load_source(args.data, settings)
    scored = loop.score_table(store.load_model(project.id, current.version), project.schema, frame,
                              threads=settings.threads)
    fmt = "parquet" if args.out.suffix.lower() == ".parquet" else "csv"
    args.out.write_bytes(export.write_table(scored, fmt))
    print(json.dumps({"rows": len(scored), "version": current.version, "out": str(args.out)}))
    return 0


def _batch_add(args, settings: Settings, store: Store, load_source) -> int:
    """Append a file of new rows to the project; prints the batch number, its size and which features drifted."""
    _, frame = load_source(args.data, settings)
    batch = actions.add_batch(store, args.project, args.actor, frame, source=args.data)
    print(json.dumps({"project": args.project, "batch": batch.number, "rows": batch.n_rows, "drifted": batch.drifted,
                      "sentence": batches.drift_sentence(batch)}))
    return 0


def _agreement(args, store: Store) -> int:
    """Agreement between the people who labelled the project's rows: JSON (pair keys "a|b") or sentences."""
    project = store.project(args.project)
    result = agreement.agreement(agreement.votes(store.decisions(project.id)))
    print(json.dumps(result.to_json(), indent=2) if args.json else "\n".join(result.sentences()))
    return 0


def _drift(args, settings: Settings, store: Store, load_source) -> int:
    """A new table against the project's training pool: per-feature drift, and the current version's answers on both."""
    project = store.project(args.project)
    _, frame = load_source(args.data, settings)
    dataset = store.load_dataset(project)
    pool = dataset.features.loc[dataset.rows("train")]
    features = drift.feature_drift(pool, frame, project.schema, alpha=args.alpha, psi_threshold=args.psi)
    current = store.current_version(project.id)
    shift = None
    if current is None:
        print(f"note: project {project.id} has no current model version; prediction shift left out", file=sys.stderr)
    else:
        model = store.load_model(project.id, current.version)
        batch = frame.loc[:, list(project.schema.features)].reset_index(drop=True)
        shift = drift.prediction_shift(
            predict_with_confidence(model, pool, project.schema.classes, threads=settings.threads).to_frame(),
            predict_with_confidence(model, batch, project.schema.classes, threads=settings.threads).to_frame())
        shift = {"version": current.version, **shift}
    report = drift.DriftReport(features=features, prediction_shift=shift, alpha=args.alpha,
                               psi_threshold=args.psi)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    print(f"{len(frame):,} new rows against {len(pool):,} training-pool rows of project {project.id}; drifted = "
          f"p < {args.alpha:g} and PSI >= {args.psi:g}")
    table = features[["kind", "test", "psi", "statistic", "p_value", "drifted", "missing_batch"]]
    print(table.to_string(float_format=lambda v: f"{v:.4g}", na_rep="n/a"))
    if shift is not None:
        print(f"\npredicted-class shares, training pool -> new rows (model version {shift['version']}):")
        for name, share in shift["classes"].items():
            print(f"  {name}: {share['reference']:.1%} -> {share['batch']:.1%} ({share['change']:+.1%})")
        conf = shift["mean_confidence"]
        print(f"  mean confidence: {conf['reference']:.3f} -> {conf['batch']:.3f} ({conf['change']:+.3f})")
    print(report.sentence())
    return 0


def _recourse(args, settings: Settings, store: Store) -> int:
    """Complaints (raise, list, resolve) and withdrawal; each prints one JSON line (the list: a table or JSON)."""
    if args.command == "complain":
        complaint = actions.complain(store, args.project, args.actor, args.row, args.reason)
        print(json.dumps({"complaint": complaint.id, "row": complaint.row_key, "status": complaint.status}))
    elif args.command == "resolve":
        complaint = actions.resolve_complaint(store, args.project, args.actor, args.complaint, outcome=args.outcome,
                                              reason=args.reason, new_label=args.label)
        print(json.dumps({"complaint": complaint.id, "outcome": complaint.resolution,
                          "decision": complaint.decision_id}))
    elif args.command == "complaints":
        table = complaints.table(store.complaints(args.project))
        if args.open:
            table = table[table["status"] == "open"]
        if args.json:
            print(table.to_json(orient="records", date_format="iso"))
        elif table.empty:
            print(f"no {'open ' if args.open else ''}complaints in project {args.project}")
        else:
            print(table[["id", "row_key", "status", "resolution", "created_by", "resolved_by", "reason"]].to_string(
                index=False))
    else:
        done = actions.withdraw_rows(store, args.project, args.actor, args.row, args.reason, threads=settings.threads)
        print(json.dumps({"rows": done.n_rows, "projects": list(done.project_ids), "versions": done.new_versions,
                          "records_deleted": sum(done.removed.values()), "events_deleted": done.events_deleted,
                          "events_redacted": done.events_redacted, "compacted": done.compacted}))
        if not done.compacted:
            print("note: another process kept the database's write-ahead log open; removed bytes may remain in "
                  "hitl.db-wal until it closes (run the command again when the app is idle)", file=sys.stderr)
    return 0
