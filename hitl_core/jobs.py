"""Retrains off the request path: workers take jobs from the database, one running job per project.

``python -m hitl_core worker`` runs :func:`work`; several may run, on any host that shares the
database. A worker holds a *lease* on its job, renewed by a heartbeat; a job whose worker stopped
beating (killed, host gone) goes back to the queue and is retried, up to ``MAX_ATTEMPTS``. Only the
worker that still owns a job may record its version (:func:`hitl_core.actions.record_version`).
"""
from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from hitl_core import actions, loop
from hitl_core.records import Job, ModelVersion
from hitl_core.store import Store

MAX_ATTEMPTS = 3
CLAIM_LOCK_WAIT = 2.0  # seconds a claim waits for a project's writers (skipping at once starved it under load)
WORKER_ALIVE = timedelta(seconds=15)  # a worker that beat within this is shown as running


def lease() -> timedelta:
    """How long a job stays a worker's without a heartbeat (``HITL_JOB_LEASE_SECONDS``, default 30)."""
    return timedelta(seconds=float(os.environ.get("HITL_JOB_LEASE_SECONDS", "30")))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(store: Store, worker: str, *, project_id: int | None = None) -> Job | None:
    """Take the oldest queued job of a project that has none running; first return stale jobs to the queue."""
    if not any(j.status == "queued" for j in _open(store, project_id)) and not _has_stale(store):
        return None  # the common idle case: one read, no write lock
    with store.write() as tx:
        now = datetime.now(timezone.utc)  # after the lock: never before the previous job's finish
        for job in tx.running_jobs():
            if job.heartbeat_at is None or now - job.heartbeat_at > lease():
                if job.attempts >= MAX_ATTEMPTS:
                    tx.finish_job(job.id, status="failed", error=f"worker {job.worker} stopped {job.attempts} times")
                else:
                    tx.set_job(job.id, status="queued", worker=None)
                tx.add_event(project_id=job.project_id, actor=f"worker {worker}", action="job_requeued",
                             object=f"job {job.id}", before={"worker": job.worker, "attempts": job.attempts})
        candidates = [project_id] if project_id is not None else tx.queued_project_ids()
        for pid in candidates:
            if not tx.wait_for_project(pid, seconds=CLAIM_LOCK_WAIT):
                continue  # held longer than a decision takes: another worker is claiming it (PostgreSQL)
            open_jobs = tx.open_jobs(pid)
            queued = [j for j in open_jobs if j.status == "queued"]
            if queued and not any(j.status == "running" for j in open_jobs):
                return tx.set_job(queued[0].id, status="running", worker=worker, started_at=now, heartbeat_at=now,
                                  attempts=queued[0].attempts + 1)
    return None


def _open(store: Store, project_id: int | None) -> list[Job]:
    return store.open_jobs(project_id) if project_id is not None else store.jobs_open()


def _has_stale(store: Store) -> bool:
    now = datetime.now(timezone.utc)
    return any(j.status == "running" and (j.heartbeat_at is None or now - j.heartbeat_at > lease())
               for j in store.jobs_open())


def run(store: Store, job: Job, worker: str, *, threads: int = 1) -> ModelVersion | None:
    """Train the job's project on the labels as they are now and record the version; a failure is recorded."""
    try:
        project = store.project(job.project_id)
        trained = loop.train_snapshot(store, project, threads=threads)
        return actions.record_version(store, project.id, trained, actor=f"worker {worker}", trigger=job.trigger,
                                      job=job, worker=worker)
    except Exception as exc:  # a failed fit must not kill the worker: record it and go on
        with store.write() as tx:
            if tx.owns_job(job.id, worker):
                retry = job.attempts < MAX_ATTEMPTS
                tx.set_job(job.id, status="queued" if retry else "failed", worker=None,
                           error=f"{type(exc).__name__}: {exc}")
                tx.add_event(project_id=job.project_id, actor=f"worker {worker}", action="job_failed",
                             object=f"job {job.id}", after={"error": f"{type(exc).__name__}: {exc}", "retry": retry},
                             note=traceback.format_exc(limit=3)[-1500:])
        return None


class _Heartbeat(threading.Thread):
    """Renews the worker's presence and its job's lease while a fit runs."""

    def __init__(self, store: Store, worker: str):
        super().__init__(daemon=True)
        self.store, self.worker = store, worker
        self.job_id: int | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(max(0.2, lease().total_seconds() / 3)):
            self.beat()

    def beat(self) -> None:
        try:
            with self.store.write() as tx:
                tx.beat_worker(self.worker)
                if self.job_id is not None:
                    tx.beat_job(self.job_id, self.worker)
        except Exception:  # a busy database must not stop the beat; the next one retries
            pass


def work(store: Store, *, worker: str | None = None, once: bool = False, poll: float = 1.0, threads: int = 1,
         stop: threading.Event | None = None) -> int:
    """Take and run jobs until stopped (``once``: until the queue is empty); returns how many ran."""
    worker = worker or worker_name()
    heartbeat = _Heartbeat(store, worker)
    heartbeat.beat()
    heartbeat.start()
    done = 0
    try:
        while stop is None or not stop.is_set():
            job = claim(store, worker)
            if job is None:
                if once:
                    break
                time.sleep(poll)
                continue
            heartbeat.job_id = job.id
            run(store, job, worker, threads=threads)
            heartbeat.job_id = None
            done += 1
    finally:
        heartbeat.stopped.set()
        with store.write() as tx:
            tx.remove_worker(worker)
    return done


def run_now(store: Store, project_id: int, actor: str, *, threads: int = 1) -> ModelVersion | None:
    """Retrain in this process when no worker runs: request (or join) the job, claim it and run it."""
    actions.request_retrain(store, project_id, actor)
    worker = f"in-app:{worker_name()}"
    job = claim(store, worker, project_id=project_id)
    return None if job is None else run(store, job, worker, threads=threads)


@dataclass(frozen=True)
class RetrainState:
    """What the pages say about retraining: the running and waiting job, new decisions, live workers."""

    running: Job | None
    queued: Job | None
    pending_decisions: int  # decisions newer than the current version's snapshot
    workers: int

    def sentence(self, next_version: int) -> str:
        if self.running is not None:
            return f"v{next_version} training on {self.pending_decisions} new decision(s)…"
        if self.queued is not None:
            waiting = "waiting for a worker" if self.workers else "waiting: no worker is running"
            return f"Retrain requested ({self.pending_decisions} new decision(s)), {waiting}."
        if self.pending_decisions:
            return f"{self.pending_decisions} decision(s) not yet in the model."
        return "The model includes every decision."


def retrain_state(store: Store, project_id: int) -> RetrainState:
    jobs = store.open_jobs(project_id)
    pending = store.count_decisions_after(project_id, store.current_snapshot(project_id))  # polled every 2 s
    return RetrainState(running=next((j for j in jobs if j.status == "running"), None),
                        queued=next((j for j in jobs if j.status == "queued"), None),
                        pending_decisions=pending, workers=len(store.live_workers(WORKER_ALIVE)))
