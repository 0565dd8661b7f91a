"""What the child OS processes of the concurrency and crash tests run, and how the parent starts them.

Children are real processes with their own interpreter state, database connections and PIDs
(``kill -9`` hits them, not a thread). They come from multiprocessing's *forkserver*, which imports
``hitl_core`` once and then forks a clean child per request: starting a fresh interpreter costs
2-5 s of imports on a busy 2-core box, which would turn 25 kills into minutes of waiting on imports.
A child opens its own :class:`~hitl_core.store.Store` after the fork; nothing database-related is
inherited. Each child writes what it was told (acknowledged) to a JSON file or, for the crash
tests, prints it to its stdout (a pipe the parent reads), flushed, the moment the call returned.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import select
import subprocess
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

from hitl_core import actions, jobs
from hitl_core.records import NOT_CHECKED, DecisionRequest
from hitl_core.store import Store

REPO_ROOT = Path(__file__).resolve().parents[2]

PRELOAD = ["hitl_core.actions", "hitl_core.jobs", "tests.support.processes"]


def context() -> multiprocessing.context.BaseContext:
    """The forkserver context, preloading the engine so each child starts in milliseconds."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _open(url: str) -> Store:
    return Store(url, upgrade=False)  # the parent created and migrated the database


def _dump(out: str, payload: dict) -> None:
    Path(out).write_text(json.dumps(payload, default=str))


# --------------------------------------------------------------------------- many writers
def write_decisions(url: str, project_id: int, actor: str, n: int, seed: int, start, out: str) -> None:
    """Record ``n`` decisions on random rows with random labels, in batches of 1-3, unchecked (no
    ``expected``); write every acknowledged decision (as ``Outcome.saved`` says) and job to ``out``."""
    saved, job_ids = [], []
    try:
        store = _open(url)
        project = store.project(project_id)
        keys = list(store.pool_rows(project)[0])
        classes = list(project.schema.classes)
        rng = random.Random(seed)
        start.wait(timeout=120)
        seq = 0
        while seq < n:
            batch = []
            for _ in range(min(rng.randint(1, 3), n - seq)):
                batch.append(DecisionRequest(row_key=rng.choice(keys), new_label=rng.choice(classes),
                                             expected=NOT_CHECKED, predicted_label=rng.choice(classes),
                                             note=f"{actor}#{seq}"))
                seq += 1
            outcome = actions.record_decisions(store, project_id, actor, batch)
            assert not outcome.conflicts, outcome.conflicts
            saved += [{"id": s.id, "row_key": s.row_key, "old_label": s.old_label, "new_label": s.new_label,
                       "action": s.action, "note": r.note} for s, r in zip(outcome.saved, batch, strict=True)]
            job_ids.append(None if outcome.retrain is None else outcome.retrain.id)
        _dump(out, {"saved": saved, "jobs": job_ids})
    except BaseException:
        _dump(out, {"saved": saved, "jobs": job_ids, "error": traceback.format_exc()})
        raise


# --------------------------------------------------------------------------- two people, one row
def current_label(store: Store, project_id: int, row_key: str, given: str | None) -> str | None:
    """The row's effective label as the Review page shows it: the latest decision, else the given label."""
    history = store.row_history(project_id, row_key)
    return history["new_label"].iloc[-1] if len(history) else given


def race_on_row(url: str, project_id: int, actor: str, row_key: str, rounds: int, which: int, barrier,
                out: str) -> None:
    """Each round: read the row's label, wait for the other person, then change it (to the ``which``-th
    other class) with ``expected`` = what was read; record whether it was saved or refused, and by whom."""
    results = []
    try:
        store = _open(url)
        project = store.project(project_id)
        given_labels = store.pool_rows(project)[1]
        given = None if given_labels.isna()[row_key] else str(given_labels[row_key])
        classes = list(project.schema.classes)
        for round_ in range(rounds):
            seen = current_label(store, project_id, row_key, given)
            new = [c for c in classes if c != seen][which]
            barrier.wait(timeout=60)  # both have read; now both click
            try:
                outcome = actions.record_decision(store, project_id, actor, DecisionRequest(
                    row_key=row_key, new_label=new, expected=seen, note=f"{actor} round {round_}"))
                saved = outcome.saved[0]
                results.append({"round": round_, "seen": seen, "new": new, "saved": saved.id,
                                "old_label": saved.old_label})
            except actions.ConflictError as exc:
                c = exc.conflicts[0]
                results.append({"round": round_, "seen": seen, "new": new, "saved": None,
                                "conflict_by": c.changed_by, "conflict_current": c.current,
                                "conflict_expected": c.expected, "message": str(exc)})
            barrier.wait(timeout=60)  # both have written: the next round starts from the same label
        _dump(out, {"results": results})
    except BaseException:
        _dump(out, {"results": results, "error": traceback.format_exc()})
        raise


# --------------------------------------------------------------------------- workers
def run_worker(url: str, name: str, lease_seconds: float | None, stop, poll: float = 0.05) -> None:
    """``jobs.work`` until ``stop`` is set, as ``python -m hitl_core worker`` runs it."""
    if lease_seconds is not None:
        os.environ["HITL_JOB_LEASE_SECONDS"] = str(lease_seconds)
    jobs.work(_open(url), worker=name, poll=poll, stop=stop)


# --------------------------------------------------------------------------- crash tests
def write_until_killed(url: str, project_id: int, actor: str, seed: int, stdout: Connection) -> None:
    """Record decisions in a loop and print ``ack <id>`` to stdout, flushed, as soon as each is acknowledged."""
    os.dup2(stdout.fileno(), 1)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    store = _open(url)
    project = store.project(project_id)
    keys = list(store.pool_rows(project)[0])
    classes = list(project.schema.classes)
    rng = random.Random(seed)
    print("ready", flush=True)
    while True:
        outcome = actions.record_decision(store, project_id, actor, DecisionRequest(
            row_key=rng.choice(keys), new_label=rng.choice(classes), note=f"{actor}"))
        print(f"ack {outcome.saved[0].id}", flush=True)


# The same loop as a fresh interpreter runs it (``python -c``): slower to start, nothing preloaded.
WRITER_SCRIPT = """
import random, sys
from hitl_core import actions
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
url, project_id, actor, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
store = Store(url, upgrade=False)
project = store.project(project_id)
keys, classes, rng = list(store.pool_rows(project)[0]), list(project.schema.classes), random.Random(seed)
print("ready", flush=True)
while True:
    outcome = actions.record_decision(store, project_id, actor, DecisionRequest(
        row_key=rng.choice(keys), new_label=rng.choice(classes), note=actor))
    print(f"ack {outcome.saved[0].id}", flush=True)
"""


def python_c_writer(url: str, project_id: int, actor: str, seed: int) -> subprocess.Popen:
    """``python -c WRITER_SCRIPT``: a writer in a fresh interpreter, printing ``ack <id>`` lines to a pipe."""
    return subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, url, str(project_id), actor, str(seed)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)


def cli_worker(url: str, name_hint: str, lease_seconds: float, *, once: bool = False,
               poll: float = 0.05) -> subprocess.Popen:
    """``python -m hitl_core worker``, the way it is deployed, with a short job lease."""
    env = {**os.environ, "HITL_JOB_LEASE_SECONDS": str(lease_seconds), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hitl_core", "worker", "--db", url, "--poll", str(poll),
                             "--as", name_hint, *(["--once"] if once else [])],
                            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


class LineReader:
    """Lines a child prints to a pipe (its file descriptor), read without blocking past a deadline."""

    def __init__(self, fd: int):
        self.fd = fd
        self.lines: list[str] = []
        self._partial = b""
        self.eof = False

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
            return
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        self.lines += [line.decode() for line in complete]

    def wait_for(self, predicate, timeout: float) -> bool:
        """Read until ``predicate(lines)`` holds; ``False`` on EOF or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            if self.eof or time.monotonic() > deadline:
                return False
            self._read(deadline - time.monotonic())
        return True

    def read_to_end(self, timeout: float = 10.0) -> list[str]:
        """Everything the (dead) child printed; a partial last line (killed mid-print) is dropped."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        return self.lines

    def acks(self) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith("ack ")]
