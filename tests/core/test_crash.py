"""Crash safety: ``kill -9`` of a process that is writing decisions, or of a worker in the middle of a
retrain, loses nothing that was acknowledged and leaves a database the next process can use.

Every scenario runs on a SQLite file and on a real PostgreSQL server (``HITL_REQUIRE_PG=1`` makes a
missing server an error instead of a skip). The killed processes are real OS processes (see
``tests/support/processes.py``); no timings are asserted.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from hitl_core import actions
from hitl_core.records import DecisionRequest, Job
from hitl_core.store import Store
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401 (fixtures)
from tests.support.processes import (
    LineReader, cli_worker, context, python_c_writer, run_worker, write_until_killed,
)

WRITER_KILLS = 25
WORKER_KILLS = 25  # the issue asks for 25 of each
LEASE_SECONDS = 1.0


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.engine.dispose()


def _wait(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.01)


def _sigkill(process) -> int | None:
    """``kill -9`` a child (a forked ``multiprocessing`` process or a ``subprocess``); its exit code."""
    os.kill(process.pid, signal.SIGKILL)
    if isinstance(process, subprocess.Popen):
        return process.wait(10)
    process.join(10)
    return process.exitcode


def _start_worker(ctx, url: str, name: str, *, cli: bool, stop, once: bool = False):
    """A worker process and the name it claims jobs under."""
    if cli:
        process = cli_worker(url, name, LEASE_SECONDS, once=once)
        return process, f"{socket.gethostname()}:{process.pid}"  # jobs.worker_name() of the child
    process = ctx.Process(target=run_worker, args=(url, name, LEASE_SECONDS, stop))
    process.start()
    return process, name


def test_kill_9_of_a_writer_loses_no_acknowledged_decision(store: Store, database_url: str) -> None:
    """25 times: a process records decisions in a loop, printing each acknowledged id; kill -9 it at a
    random moment. Every printed id is stored, with its event, and the database passes its own check."""
    project = create_project(store, retrain_policy="every")  # each decision also queues a retrain (one row, joined)
    ctx, rng = context(), random.Random(0)
    acknowledged: list[int] = []
    for kill in range(WRITER_KILLS):
        # the first writer is a fresh interpreter (``python -c``), the others forks of a preloaded one
        writer, out, done = (_python_c_writer if kill == 0 else _forked_writer)(
            ctx, database_url, project.id, f"writer{kill}", kill)
        after = rng.randint(0, 15)  # acknowledged decisions before the kill (0: mid-first write or earlier)
        started = out.wait_for(lambda lines: "ready" in lines and sum(l.startswith("ack ") for l in lines) >= after,
                               timeout=60)
        if started:
            time.sleep(rng.uniform(0, 0.02))  # somewhere inside the next transaction, or between two
        os.kill(writer.pid, signal.SIGKILL)
        printed = out.read_to_end()
        assert done() == -signal.SIGKILL
        assert started, f"writer {kill} printed {printed[-3:]} and stopped"
        acks = out.acks()
        assert len(acks) >= after
        stored = set(store.decisions(project.id)["id"])
        assert set(acks) <= stored, f"kill {kill}: acknowledged but not stored: {sorted(set(acks) - stored)}"
        assert store.integrity_ok(), f"kill {kill}: integrity check failed"
        acknowledged += acks
        assert printed  # the child got as far as opening the store

    decisions = store.decisions(project.id)
    assert set(acknowledged) <= set(decisions["id"])
    unacknowledged = len(decisions) - len(acknowledged)
    assert 0 <= unacknowledged <= WRITER_KILLS  # at most the one commit per kill that beat the print
    _assert_each_decision_whole(store, project.id, decisions)
    # the next person can still work: the write lock of a killed writer was released
    last = actions.record_decision(store, project.id, "after", DecisionRequest(
        row_key=str(decisions["row_key"].iloc[-1]), new_label=project.schema.classes[0],
        expected=decisions["new_label"].iloc[-1]))
    assert last.saved[0].old_label == decisions["new_label"].iloc[-1]
    assert store.integrity_ok()


def _forked_writer(ctx, url: str, project_id: int, actor: str, seed: int):
    read_end, write_end = ctx.Pipe(duplex=False)
    writer = ctx.Process(target=write_until_killed, args=(url, project_id, actor, seed, write_end))
    writer.start()
    write_end.close()  # the child holds the only write end: EOF when it dies

    def done() -> int:
        writer.join(10)
        read_end.close()
        return writer.exitcode

    return writer, LineReader(read_end.fileno()), done


def _python_c_writer(ctx, url: str, project_id: int, actor: str, seed: int):
    writer = python_c_writer(url, project_id, actor, seed)

    def done() -> int:
        code = writer.wait(10)
        writer.stdout.close()
        return code

    return writer, LineReader(writer.stdout.fileno()), done


def _assert_each_decision_whole(store: Store, project_id: int, decisions: pd.DataFrame) -> None:
    """No half-written decision: each stored one has its event, and its old label is the label it replaced."""
    events = store.events(project_id)
    linked = sorted(json.loads(a)["decision"] for a in events.loc[events["action"].isin(("accept", "override")),
                                                                 "after"])
    assert linked == sorted(decisions["id"])
    given = store.pool_rows(store.project(project_id))[1]
    for key, rows in decisions.sort_values("id").groupby("row_key"):
        previous = [None if pd.isna(given[key]) else str(given[key]), *rows["new_label"].iloc[:-1]]
        assert [None if pd.isna(v) else v for v in rows["old_label"]] == previous, f"row {key}"


def test_kill_9_of_a_worker_mid_job_retries_the_job_and_records_a_version(store: Store,
                                                                          database_url: str) -> None:
    """A worker is killed while its retrain runs; a second worker finds the lease expired, runs the job
    again (attempt 2) and records the version, which becomes current. Repeated a few times."""
    # a random forest on the 2,400-row loan sample: a retrain takes ~1 s, long enough to be killed in
    project = create_project(store, "loan", model_kind="rf", retrain_policy="manual")
    ctx, rng = context(), random.Random(1)
    run_seconds = 0.15  # until a retry has been timed: how long the job runs on this machine
    for kill in range(WORKER_KILLS):
        job = actions.request_retrain(store, project.id, "ana", trigger=f"crash test {kill}")
        # the first round runs ``python -m hitl_core worker`` as deployed; the others fork preloaded workers
        never = ctx.Event()  # held here: a multiprocessing Event must outlive the child's start
        doomed, doomed_name = _start_worker(ctx, database_url, f"doomed{kill}", cli=kill == 0, stop=never)
        try:
            _wait(lambda: _job(store, job.id).status == "running", timeout=60,
                  what="the first worker to take the job")
            time.sleep(rng.uniform(0, 0.3 * run_seconds))  # into the retrain, well before its end
        finally:
            killed_at = time.monotonic()
            assert _sigkill(doomed) == -signal.SIGKILL
        taken = _job(store, job.id)
        assert (taken.status, taken.worker, taken.attempts) == ("running", doomed_name, 1), \
            f"kill {kill}: the job was not mid-run when killed: {taken}"
        assert store.integrity_ok()

        stop = ctx.Event()
        if kill == 0:  # ``worker --once`` after the lease ran out: takes the stale job, runs it and exits
            time.sleep(max(0.0, killed_at + LEASE_SECONDS + 0.3 - time.monotonic()))
            rescuer, rescuer_name = _start_worker(ctx, database_url, "rescuer", cli=True, stop=stop, once=True)
            assert rescuer.wait(120) == 0
        else:  # a worker that keeps polling: it must notice the expired lease by itself
            rescuer, rescuer_name = _start_worker(ctx, database_url, f"rescuer{kill}", cli=False, stop=stop)
            try:
                _wait(lambda: _job(store, job.id).status in ("done", "failed"), timeout=120,
                      what="the second worker to retry the job")
            finally:
                stop.set()
                rescuer.join(30)
                if rescuer.is_alive():
                    _sigkill(rescuer)
        done = _job(store, job.id)
        assert (done.status, done.attempts, done.worker, done.error) == ("done", 2, rescuer_name, ""), done
        assert done.result_version is not None
        run_seconds = (done.finished_at - done.started_at).total_seconds()
        current = store.current_version(project.id)
        assert current.version == done.result_version and current.job_id == job.id
        events = store.events(project.id)
        requeued = events[(events["action"] == "job_requeued") & (events["object"] == f"job {job.id}")]
        assert len(requeued) == 1 and json.loads(requeued["before"].iloc[0]) == {"worker": doomed_name,
                                                                                 "attempts": 1}
        assert store.integrity_ok()
    assert not store.open_jobs(project.id)
    versions = store.model_versions(project.id)
    assert [v.version for v in versions] == list(range(1, WORKER_KILLS + 2))  # v1 + one per job, none lost or doubled
    assert [v.status for v in versions[:-1]] == ["older"] * WORKER_KILLS and versions[-1].status == "current"


def _job(store: Store, job_id: int) -> Job:
    return next(j for j in store.jobs() if j.id == job_id)
