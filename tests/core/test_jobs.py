"""Retrains off the request path: jobs in the database, one running per project, leases that expire."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from hitl_core import actions, jobs
from hitl_core.data import Schema
from hitl_core.records import DecisionRequest, Project
from hitl_core.samples import Sample
from hitl_core.store import Store


@pytest.fixture
def project(store: Store, wine: Sample, wine_schema: Schema) -> Project:
    return actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                  schema=wine_schema, model_kind="logreg", retrain_policy="manual")[0]


def test_an_idle_queue_gives_no_job(store: Store, project: Project) -> None:
    assert jobs.claim(store, "w1") is None


def test_only_one_job_per_project_runs_at_a_time(store: Store, project: Project) -> None:
    actions.request_retrain(store, project.id, "ana")
    first = jobs.claim(store, "w1")
    actions.request_retrain(store, project.id, "ana")  # a new request while one runs: queued, not started
    assert first is not None and first.status == "running" and first.worker == "w1"
    assert jobs.claim(store, "w2") is None
    assert [j.status for j in store.open_jobs(project.id)] == ["running", "queued"]


def test_a_job_whose_worker_stopped_beating_is_retried(store: Store, project: Project,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_JOB_LEASE_SECONDS", "0.05")
    actions.request_retrain(store, project.id, "ana")
    dead = jobs.claim(store, "dead-worker")
    threading.Event().wait(0.2)
    retried = jobs.claim(store, "w2")
    assert retried.id == dead.id and retried.attempts == 2 and retried.worker == "w2"
    assert jobs.run(store, dead, "dead-worker") is None  # the old owner may no longer record a version
    assert jobs.run(store, retried, "w2").status == "current"
    assert "job_requeued" in set(store.events(project.id)["action"])


def test_a_job_that_keeps_losing_its_worker_fails_after_the_last_attempt(store: Store, project: Project,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_JOB_LEASE_SECONDS", "0.01")
    actions.request_retrain(store, project.id, "ana")
    for attempt in range(jobs.MAX_ATTEMPTS):
        assert jobs.claim(store, f"w{attempt}").attempts == attempt + 1
        threading.Event().wait(0.05)
    assert jobs.claim(store, "last") is None
    assert [j.status for j in store.jobs(project.id)] == ["failed"]


def test_a_failing_fit_is_recorded_and_the_worker_goes_on(store: Store, project: Project,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(jobs.loop, "train_snapshot", broken)
    actions.request_retrain(store, project.id, "ana")
    jobs.work(store, once=True, worker="w1")
    job = store.jobs(project.id)[0]
    assert job.status == "failed" and job.attempts == jobs.MAX_ATTEMPTS and "disk full" in job.error
    assert (store.events(project.id)["action"] == "job_failed").sum() == jobs.MAX_ATTEMPTS
    assert store.current_version(project.id).version == 1


def test_the_worker_announces_itself_and_leaves_when_stopped(store: Store, project: Project) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=jobs.work, args=(store,), kwargs={"worker": "w1", "stop": stop, "poll": 0.05})
    thread.start()
    try:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=20)
        while "w1" not in store.live_workers(jobs.WORKER_ALIVE) and datetime.now(timezone.utc) < deadline:
            threading.Event().wait(0.02)
        assert store.live_workers(jobs.WORKER_ALIVE) == ["w1"]
        actions.request_retrain(store, project.id, "ana")
        while store.current_version_number(project.id) == 1 and datetime.now(timezone.utc) < deadline:
            threading.Event().wait(0.05)
        assert store.current_version_number(project.id) == 2
    finally:
        stop.set()
        thread.join()
    assert store.live_workers(jobs.WORKER_ALIVE) == []


def test_the_retrain_state_says_what_is_happening(store: Store, project: Project) -> None:
    keys, given = store.pool_rows(project)
    actions.record_decisions(store, project.id, "ana", [DecisionRequest(str(k), str(given[k])) for k in keys[:3]])
    assert jobs.retrain_state(store, project.id).sentence(2) == "3 decision(s) not yet in the model."
    actions.request_retrain(store, project.id, "ana")
    assert jobs.retrain_state(store, project.id).sentence(2) == (
        "Retrain requested (3 new decision(s)), waiting: no worker is running.")
    jobs.claim(store, "w1")
    assert jobs.retrain_state(store, project.id).sentence(2) == "v2 training on 3 new decision(s)…"


def test_retrain_now_runs_in_this_process_without_a_worker(store: Store, project: Project) -> None:
    version = jobs.run_now(store, project.id, "ana")
    assert version.version == 2 and version.status == "current"
    assert [j.status for j in store.jobs(project.id)] == ["done"]
