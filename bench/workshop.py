"""How cheap the live workshop's hot paths are: the 2-second poll every phone and screen runs, and one vote.

Engine: ``Store.workshop_round`` (the newest round with its vote count and watermark, one SQLAlchemy
query) and ``actions.cast_vote`` (role check, the round still open, a "workshop" decision, the vote
and an event in one write transaction) on a SQLite file holding ``--rounds`` rounds of ``--people``
votes each.
Bare: the same reads and writes as plain ``sqlite3`` statements on the same file, no checks: one
``SELECT`` with two correlated sub-selects; ``BEGIN IMMEDIATE`` + three ``INSERT``s + ``COMMIT``.
Targets: poll under 5 ms (a room of 50 phones polling every 2 s is 25 polls a second) and a vote
under 50 ms (a tap must feel instant); the ratios say what the ORM and the checks cost.

    .venv/bin/python -m bench.workshop                       # 100 rounds x 30 people
    .venv/bin/python -m bench.workshop --rounds 500 --people 50 --json bench/results/workshop.json
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/workshop.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hitl_core import actions
from hitl_core.data import check
from hitl_core.samples import load_sample
from hitl_core.store import Store

POLL_TARGET_MS = 5.0
VOTE_TARGET_MS = 50.0
BARE_POLL = """SELECT r.id, r.row_key, r.revealed_at, r.closed_at,
       (SELECT count(v.id) FROM workshop_votes v WHERE v.round_id = r.id),
       (SELECT coalesce(max(v.decision_id), 0) FROM workshop_votes v WHERE v.round_id = r.id)
FROM workshop_rounds r WHERE r.project_id = ? ORDER BY r.id DESC LIMIT 1"""


def _median_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run(rounds: int, people: int, repeats: int) -> dict:
    """Fill a project with rounds and votes through the write path, then time poll and vote both ways."""
    folder = Path(tempfile.mkdtemp(prefix="bench-workshop-"))
    store = Store(f"sqlite:///{folder / 'hitl.db'}")
    sample = load_sample("wine")
    schema, _ = check(sample.frame, sample.target)
    project, _ = actions.create_project(store, "bench", name="wine", source="sample:wine", frame=sample.frame,
                                        schema=schema, model_kind="logreg", retrain_policy="manual")
    keys = [str(k) for k in store.pool_rows(project)[0]]
    classes = project.schema.classes
    opened = None
    for r in range(rounds):
        opened = actions.open_round(store, project.id, "lead", keys[r % len(keys)])
        for p in range(people):
            actions.cast_vote(store, project.id, f"p{p}", opened.id, classes[(r + p) % len(classes)])
    raw = sqlite3.connect(folder / "hitl.db", isolation_level=None)
    votes = iter(range(10**9))

    def engine_vote() -> None:
        n = next(votes)
        actions.cast_vote(store, project.id, f"v{n}", opened.id, classes[n % len(classes)])

    def bare_vote() -> None:
        n = next(votes)
        raw.execute("BEGIN IMMEDIATE")
        decision = raw.execute(
            "INSERT INTO annotations (project_id, row_key, user, created_at, action, new_label, note, kind) "
            "VALUES (?, ?, ?, datetime('now'), 'override', ?, '', 'workshop')",
            (project.id, opened.row_key, f"b{n}", classes[n % len(classes)])).lastrowid
        raw.execute("INSERT INTO workshop_votes (round_id, project_id, row_key, user, label, decision_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, datetime('now'))",
                    (opened.id, project.id, opened.row_key, f"b{n}", classes[n % len(classes)], decision))
        raw.execute("INSERT INTO events (project_id, actor, created_at, action, object, note) "
                    "VALUES (?, ?, datetime('now'), 'workshop_vote', ?, '')", (project.id, f"b{n}", opened.row_key))
        raw.execute("COMMIT")

    result = {
        "rounds": rounds, "people": people,
        "poll_engine_ms": _median_ms(lambda: store.workshop_round(project.id), repeats),
        "poll_bare_ms": _median_ms(lambda: raw.execute(BARE_POLL, (project.id,)).fetchone(), repeats),
        "vote_engine_ms": _median_ms(engine_vote, repeats),
        "vote_bare_ms": _median_ms(bare_vote, repeats),
    }
    raw.close()
    store.engine.dispose()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.rounds, args.people, args.repeats)
    print(f"{args.rounds} rounds x {args.people} votes, median of {args.repeats}")
    print(f"{'operation':<12}{'engine ms':>11}{'bare ms':>10}{'ratio':>8}{'target ms':>11}  ok")
    ok = True
    for name, target in (("poll", POLL_TARGET_MS), ("vote", VOTE_TARGET_MS)):
        engine, bare = result[f"{name}_engine_ms"], result[f"{name}_bare_ms"]
        met = engine <= target
        ok &= met
        print(f"{name:<12}{engine:>11.2f}{bare:>10.3f}{engine / bare:>8.1f}{target:>11.0f}  {'yes' if met else 'NO'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
