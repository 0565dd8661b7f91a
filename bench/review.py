"""Review latency: a click until it is committed, a click until the new model is current, the next batch
at 1M rows, and Review / Metrics page reruns, each beside the plain library call it rests on.

* **Click → committed**: ``actions.record_decision`` (conflict check against the label the person saw,
  the decision and its event in one transaction, policy "every" so it also asks for a retrain) on a
  project of a 50k-row generated table (``bench.loop.make_frame``), without and with a
  ``python -m hitl_core worker`` process retraining meanwhile. Plain: one SQLAlchemy Core ``INSERT``
  of the same values into a table of the same database, through ``create_engine(url)`` with the
  library's defaults, committed. Engine and plain clicks alternate, so both see the same load.
* **Click → new version current**: a decision (policy "every") until ``Store.current_version_number``
  moves, with the worker polling at the CLI's default (1 s) unless ``--poll``; logistic regression at
  50k rows. Plain: ``build_pipeline("logreg", schema).fit`` on the same training rows. Also measured
  while other people label (forked processes, one click each every ``--think`` seconds).
* **Next batch at 1M rows**: ``active.rank_pool("margin", proba, labels=..., batch_size=20)`` on random
  probabilities (1 % labelled), as the Review page calls it after every decision. Plain: the margin
  in numpy and ``np.argpartition`` for the top 20 unlabeled rows.
* **Page reruns**: ``streamlit.testing.v1.AppTest`` of ``app.py`` on the Review and Metrics pages at 10k
  and 100k rows (SQLite, 30 % unlabeled), a rerun with nothing changed and a rerun after a decision
  (recorded through ``actions``, as the page's button does). AppTest runs the script in-process
  without a browser; its own overhead is in every figure, shown as the "AppTest floor" (a one-line
  script).

Targets: click → new version current ≤ 2 s in every repeat (no one else labelling, one worker);
next batch at 1M rows ≤ 100 ms; page rerun ≤ 300 ms. Click → committed has no target: its ratio to
the plain insert is the cost of the guarantees. The exit status is 0 only when every target is met.

    .venv/bin/python -m bench.review                              # everything, SQLite and PostgreSQL
    .venv/bin/python -m bench.review --parts commit version --backends sqlite --clicks 100
    .venv/bin/python -m bench.review --parts rank pages --page-rows 10000
    .venv/bin/python -m bench.review --json bench/results/review.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/review.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, insert

from bench.loop import make_frame
from hitl_core import active, actions, jobs
from hitl_core.data import check
from hitl_core.models import build_pipeline
from hitl_core.records import DecisionRequest, Project
from hitl_core.store import Store

REPO_ROOT = Path(__file__).resolve().parents[1]
VERSION_TARGET_S = 2.0
RANK_TARGET_MS = 100.0
PAGE_TARGET_MS = 300.0
COMMIT_ROWS = 50_000
RANK_ROWS = 1_000_000
BUSY_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------- helpers
def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@contextlib.contextmanager
def databases(backends: list[str], tmp: Path) -> Iterator[dict[str, Callable[[str], str]]]:
    """Per backend, a factory of empty database URLs (PostgreSQL: a throwaway server, as the tests use)."""
    makers: dict[str, Callable[[str], str]] = {}
    with contextlib.ExitStack() as stack:
        if "sqlite" in backends:
            makers["sqlite"] = lambda name: f"sqlite:///{(tmp / f'{name}.db').as_posix()}"
        if "postgresql" in backends:
            import pytest  # the throwaway server comes from the test support code, which skips via pytest

            from tests.support.databases import new_database
            from tests.support.postgres import postgres_server
            try:
                server = stack.enter_context(postgres_server())
            except (Exception, pytest.skip.Exception) as exc:
                print(f"# PostgreSQL left out: {exc}", flush=True)
            else:
                makers["postgresql"] = lambda name: new_database(server)
        yield makers


def start_project(store: Store, rows: int, *, policy: str, unlabeled: float = 0.0, seed: int = 0) -> Project:
    """A logistic-regression project on ``bench.loop.make_frame(rows)``; ``unlabeled``: share of targets removed."""
    frame = make_frame(rows, seed=seed)
    if unlabeled:
        frame["target"] = frame["target"].astype(object)
        frame.loc[np.random.default_rng(seed).random(rows) < unlabeled, "target"] = None
    schema, _ = check(frame, "target")
    project, _ = actions.create_project(store, "bench", name=f"bench {rows:,}", source="bench.loop.make_frame",
                                        frame=frame, schema=schema, model_kind="logreg", retrain_policy=policy)
    return project


class Clicker:
    """Decisions as a person makes them: a random pool row, the other class, ``expected`` = the label shown."""

    def __init__(self, store: Store, project: Project, actor: str, seed: int = 0):
        self.store, self.project, self.actor = store, project, actor
        keys, given = store.pool_rows(project)
        self.keys = list(keys)
        self.labels = {k: (None if pd.isna(given[k]) else str(given[k])) for k in self.keys}
        for row in store.decisions(project.id).itertuples():
            self.labels[row.row_key] = row.new_label
        self.classes = list(project.schema.classes)
        self.rng = random.Random(seed)

    def request(self) -> DecisionRequest:
        key = self.rng.choice(self.keys)
        current = self.labels[key]
        new = next(c for c in self.classes if c != current) if current else self.rng.choice(self.classes)
        return DecisionRequest(row_key=key, new_label=new, expected=current, predicted_label=new, confidence=0.6,
                               model_version=self.project.current_version, note="")

    def click(self) -> actions.Outcome:
        """One decision; on a conflict (the row changed first) the person sees the new label and decides again."""
        for _ in range(5):
            request = self.request()
            try:
                outcome = actions.record_decision(self.store, self.project.id, self.actor, request)
            except actions.ConflictError as conflict:
                self.labels.update({c.row_key: c.current for c in conflict.conflicts})
                continue
            self.labels[request.row_key] = request.new_label
            return outcome
        raise RuntimeError(f"{self.actor}: five conflicts in a row")


class PlainInsert:
    """The baseline: one SQLAlchemy Core insert of the same values, committed, with the library's defaults."""

    def __init__(self, url: str):
        self.engine = create_engine(url)
        meta = MetaData()
        self.table = Table("bench_plain_clicks", meta, Column("id", Integer, primary_key=True),
                           Column("project_id", Integer), Column("row_key", String(200)),
                           Column("user", String(100)),
                           Column("old_label", String(200)), Column("new_label", String(200)),
                           Column("created_at", DateTime(timezone=True)))
        meta.create_all(self.engine)

    def click(self, request: DecisionRequest) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(self.table).values(project_id=1, row_key=request.row_key, user="plain",
                                                   old_label=request.expected, new_label=request.new_label,
                                                   created_at=datetime.now(timezone.utc)))


@contextlib.contextmanager
def worker_process(url: str, poll: float) -> Iterator[subprocess.Popen]:
    """``python -m hitl_core worker`` as deployed (one thread for BLAS/OpenMP); SIGTERM ends it cleanly."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hitl_core", "worker", "--db", url, "--poll", str(poll)],
                            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        store = Store(url, upgrade=False)
        deadline = time.monotonic() + 120
        while not store.live_workers(jobs.WORKER_ALIVE) and time.monotonic() < deadline:
            time.sleep(0.1)
        store.engine.dispose()
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_idle(store: Store, project_id: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while store.open_jobs(project_id) and time.monotonic() < deadline:
        time.sleep(0.05)


# --------------------------------------------------------------------------- click → committed
def bench_commit(url: str, backend: str, clicks: int, poll: float) -> list[dict]:
    store = Store(url)
    project = start_project(store, COMMIT_ROWS, policy="every")
    clicker, plain = Clicker(store, project, "ana"), PlainInsert(url)
    for _ in range(5):  # warm both paths (pool rows cached, connections open)
        plain.click(clicker.request())
        clicker.click()
    results = []
    for with_worker in (False, True):
        context = worker_process(url, poll) if with_worker else contextlib.nullcontext()
        engine_ms, plain_ms = [], []
        with context:
            for _ in range(clicks):
                start = time.perf_counter()
                clicker.click()
                engine_ms.append(1000 * (time.perf_counter() - start))
                request = clicker.request()
                start = time.perf_counter()
                plain.click(request)
                plain_ms.append(1000 * (time.perf_counter() - start))
            versions = len(store.model_versions(project.id))
        results.append({"part": "commit", "backend": backend, "rows": COMMIT_ROWS, "worker": with_worker,
                        "clicks": clicks, "engine_p50_ms": pct(engine_ms, 50), "engine_p95_ms": pct(engine_ms, 95),
                        "plain_p50_ms": pct(plain_ms, 50), "plain_p95_ms": pct(plain_ms, 95),
                        "versions_after": versions})
        print(f"  commit {backend:<10} worker={with_worker!s:<5} engine p50 {pct(engine_ms, 50):6.1f} ms "
              f"p95 {pct(engine_ms, 95):6.1f} ms   plain p50 {pct(plain_ms, 50):5.1f} ms "
              f"p95 {pct(plain_ms, 95):5.1f} ms",
              flush=True)
    plain.engine.dispose()
    store.engine.dispose()
    return results


# --------------------------------------------------------------------------- click → new version current
def _label_loop(url: str, project_id: int, actor: str, seed: int, think: float, stop) -> None:
    """Another person labelling: one decision every ``think`` seconds until ``stop`` (runs in a child process)."""
    store = Store(url, upgrade=False)
    clicker = Clicker(store, store.project(project_id), actor, seed)
    while not stop.is_set():
        clicker.click()
        stop.wait(think)


def _plain_fit_seconds(store: Store, project: Project, repeats: int = 3) -> float:
    dataset = store.load_dataset(project)
    train = dataset.labels.loc[dataset.rows("train")].dropna()
    X, y = dataset.features.loc[train.index], train.to_numpy(dtype=object).astype(str)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        build_pipeline("logreg", dataset.schema, seed=0).fit(X, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_version(url: str, backend: str, repeats: int, poll: float, others: int, think: float) -> list[dict]:
    store = Store(url)
    project = start_project(store, COMMIT_ROWS, policy="every")
    plain_s = _plain_fit_seconds(store, project)
    clicker = Clicker(store, project, "ana", seed=99)
    results = []
    with worker_process(url, poll):
        for n_others in sorted({0, others}):
            seconds, waits, runs, timeouts = [], [], [], 0
            stop, labellers = None, []
            if n_others:
                from tests.support.processes import context
                ctx = context()
                stop = ctx.Event()
                labellers = [ctx.Process(target=_label_loop, args=(url, project.id, f"other{i}", i, think, stop))
                             for i in range(n_others)]
                for p in labellers:
                    p.start()
                time.sleep(2.0)  # let them start labelling
            try:
                for _ in range(repeats):
                    if not n_others:
                        wait_idle(store, project.id)
                        time.sleep(random.uniform(0, poll))  # a click lands anywhere in the worker's poll cycle
                    start = time.perf_counter()
                    outcome = clicker.click()
                    mine = outcome.saved[0].id
                    while time.perf_counter() - start < BUSY_TIMEOUT_S:
                        current = store.current_version(project.id)
                        if current is not None and current.last_decision_id >= mine:
                            break
                        time.sleep(0.005)
                    else:
                        timeouts += 1
                        continue
                    seconds.append(time.perf_counter() - start)
                    job = next((j for j in store.jobs(project.id) if j.id == current.job_id), None)
                    if job is not None and job.started_at and job.finished_at:
                        waits.append((job.started_at - job.requested_at).total_seconds())
                        runs.append((job.finished_at - job.started_at).total_seconds())
            finally:
                if stop is not None:
                    stop.set()
                for p in labellers:
                    p.join(30)
            row = {"part": "version", "backend": backend, "rows": COMMIT_ROWS, "others": n_others, "think_s": think,
                   "poll_s": poll, "repeats": repeats, "p50_s": pct(seconds, 50),
                   "max_s": max(seconds, default=float("nan")),
                   "timeouts": timeouts, "queue_wait_p50_s": pct(waits, 50), "job_run_p50_s": pct(runs, 50),
                   "plain_fit_s": plain_s}
            results.append(row)
            print(f"  version {backend:<10} others={n_others} p50 {row['p50_s']:.2f} s max {row['max_s']:.2f} s "
                  f"(job waited {row['queue_wait_p50_s']:.2f} s, ran {row['job_run_p50_s']:.2f} s; "
                  f"{timeouts} over {BUSY_TIMEOUT_S:.0f} s)  plain fit {plain_s:.2f} s", flush=True)
    store.engine.dispose()
    return results


# --------------------------------------------------------------------------- next batch at 1M rows
def bench_rank(rows: int, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    p = rng.random(rows)
    index = pd.Index([f"{i}" for i in range(rows)])
    proba = pd.DataFrame({"p(no)": 1 - p, "p(yes)": p}, index=index)
    labels = pd.Series(np.where(rng.random(rows) < 0.01, np.where(p > 0.5, "yes", "no"), None), index=index,
                       dtype=object)
    reasons_s: list[float] = []
    original = active._row_reasons

    def timed_reasons(*args, **kwargs):  # instrumented from outside, as bench.loop does; hitl_core untouched
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            reasons_s.append(time.perf_counter() - start)

    engine, cpu, query, plain = [], [], [], []
    active._row_reasons = timed_reasons
    try:
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            ranked = active.rank_pool("margin", proba, labels=labels, batch_size=20)
            engine.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            values = proba.to_numpy()
            start = time.perf_counter()
            active.query("margin", labels, proba=values, batch_size=20)
            query.append(time.perf_counter() - start)
            start = time.perf_counter()
            top = _plain_next_batch(values, labels.isna().to_numpy(), 20)
            plain.append(time.perf_counter() - start)
    finally:
        active._row_reasons = original
    same = set(np.flatnonzero(ranked["in_batch"].to_numpy())) == set(top)
    formatted = int((ranked["reason"] != "").sum())
    row = {"part": "rank", "rows": rows, "strategy": "margin", "batch_size": 20, "repeats": repeats,
           "engine_ms": 1000 * statistics.median(engine), "engine_cpu_ms": 1000 * statistics.median(cpu),
           "reasons_ms": 1000 * statistics.median(reasons_s), "query_ms": 1000 * statistics.median(query),
           "plain_ms": 1000 * statistics.median(plain), "reasons_formatted": formatted, "same_batch_as_plain": same}
    print(f"  rank {rows:,} rows: rank_pool {row['engine_ms']:.0f} ms (reasons {row['reasons_ms']:.0f} ms for "
          f"{formatted:,} rows), query alone {row['query_ms']:.1f} ms, plain {row['plain_ms']:.1f} ms", flush=True)
    return [row]


def _plain_next_batch(proba: np.ndarray, unlabeled: np.ndarray, k: int) -> np.ndarray:
    """Margin by hand: the k unlabeled rows whose two class probabilities are closest."""
    margin = np.where(unlabeled, np.abs(proba[:, 1] - proba[:, 0]), np.inf)
    top = np.argpartition(margin, k)[:k]
    return top[np.argsort(margin[top], kind="stable")]


# --------------------------------------------------------------------------- page reruns
def bench_pages(sizes: list[int], repeats: int, tmp: Path) -> list[dict]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    floor = []
    trivial = AppTest.from_string("import streamlit as st\nst.write('hello')", default_timeout=60)
    trivial.run()
    for _ in range(repeats):
        start = time.perf_counter()
        trivial.run()
        floor.append(1000 * (time.perf_counter() - start))
    floor_ms = statistics.median(floor)
    results = []
    for rows in sizes:
        url = f"sqlite:///{(tmp / f'pages{rows}.db').as_posix()}"
        store = Store(url)
        project = start_project(store, rows, policy="manual", unlabeled=0.3)
        clicker = Clicker(store, project, "ana")
        os.environ.update(HITL_DATABASE_URL=url, HITL_DATA_DIR=str(tmp))
        for page in ("pages/review.py", "pages/metrics.py"):
            st.cache_data.clear()
            st.cache_resource.clear()
            at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=600)
            at.run()
            at.switch_page(page)
            start = time.perf_counter()
            at.run()
            first_ms = 1000 * (time.perf_counter() - start)
            errors = [str(e.value)[:200] for e in at.exception]
            rerun, after = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                at.run()
                rerun.append(1000 * (time.perf_counter() - start))
            for _ in range(repeats):
                clicker.click()
                start = time.perf_counter()
                at.run()
                after.append(1000 * (time.perf_counter() - start))
            errors += [str(e.value)[:200] for e in at.exception]
            row = {"part": "pages", "page": page, "rows": rows, "repeats": repeats, "first_ms": first_ms,
                   "rerun_p50_ms": statistics.median(rerun), "after_decision_p50_ms": statistics.median(after),
                   "apptest_floor_ms": floor_ms, "errors": sorted(set(errors))}
            results.append(row)
            print(f"  page {page:<17} {rows:>7,} rows: first {first_ms:7.0f} ms, rerun {row['rerun_p50_ms']:6.0f} ms, "
                  f"after a decision {row['after_decision_p50_ms']:6.0f} ms (AppTest floor {floor_ms:.0f} ms)"
                  + (f"  EXCEPTION: {errors}" if errors else ""), flush=True)
        store.engine.dispose()
    return results


# --------------------------------------------------------------------------- report
def _checks(r: dict) -> list[tuple[str, bool | None]]:
    if r["part"] == "version":
        if r["others"]:
            return [("info (others labelling)", None)]
        return [(f"≤{VERSION_TARGET_S:g}s", r["max_s"] <= VERSION_TARGET_S and not r["timeouts"])]
    if r["part"] == "rank":
        return [(f"≤{RANK_TARGET_MS:g}ms", r["engine_ms"] <= RANK_TARGET_MS)]
    if r["part"] == "pages":
        return [(f"≤{PAGE_TARGET_MS:g}ms", not r["errors"] and max(r["rerun_p50_ms"], r["after_decision_p50_ms"])
                 <= PAGE_TARGET_MS)]
    return [("info", None)]


def _verdict(checks: list[tuple[str, bool | None]]) -> tuple[str, str]:
    text = ", ".join(name if ok is None else f"{name} {'ok' if ok else 'MISSED'}" for name, ok in checks)
    oks = [ok for _, ok in checks if ok is not None]
    return text, ("info" if not oks else "PASS" if all(oks) else "FAIL")


def format_tables(results: list[dict]) -> str:
    out = []
    commit = [r for r in results if r["part"] == "commit"]
    if commit:
        out += ["## Click → committed (ms)\n",
                "| backend | rows | worker retraining | engine p50 | engine p95 | plain insert p50 | plain p95 | "
                "ratio p50 | ratio p95 |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in commit:
            out.append(f"| {r['backend']} | {r['rows']:,} | {'yes' if r['worker'] else 'no'} | "
                       f"{r['engine_p50_ms']:.1f} | "
                       f"{r['engine_p95_ms']:.1f} | {r['plain_p50_ms']:.1f} | {r['plain_p95_ms']:.1f} | "
                       f"{r['engine_p50_ms'] / r['plain_p50_ms']:.1f} | {r['engine_p95_ms'] / r['plain_p95_ms']:.1f} |")
        out.append("")
    version = [r for r in results if r["part"] == "version"]
    if version:
        out += ["## Click → new version current (s, logistic regression, one worker)\n",
                "| backend | rows | others labelling | worker poll s | p50 | max | over 60 s | "
                "job queued → started p50 | "
                "job ran p50 | plain fit | ratio p50 | targets | result |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for r in version:
            text, verdict = _verdict(_checks(r))
            others = f"{r['others']} (1 click / {r['think_s']:g} s each)" if r["others"] else "0"
            out.append(f"| {r['backend']} | {r['rows']:,} | {others} | {r['poll_s']:g} | {r['p50_s']:.2f} | "
                       f"{r['max_s']:.2f} | {r['timeouts']}/{r['repeats']} | {r['queue_wait_p50_s']:.2f} | "
                       f"{r['job_run_p50_s']:.2f} | {r['plain_fit_s']:.2f} | {r['p50_s'] / r['plain_fit_s']:.1f} | "
                       f"{text} | {verdict} |")
        out.append("")
    for r in (r for r in results if r["part"] == "rank"):
        text, verdict = _verdict(_checks(r))
        out += ["## Next batch (ms, margin, batch of 20)\n",
                "| rows | rank_pool | of which reasons | reasons formatted | query() alone | plain numpy | ratio | "
                "same batch | targets | result |", "|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
                f"| {r['rows']:,} | {r['engine_ms']:.0f} | {r['reasons_ms']:.0f} | {r['reasons_formatted']:,} | "
                f"{r['query_ms']:.1f} | {r['plain_ms']:.1f} | {r['engine_ms'] / r['plain_ms']:.0f} | "
                f"{'yes' if r['same_batch_as_plain'] else 'NO'} | {text} | {verdict} |", ""]
    pages = [r for r in results if r["part"] == "pages"]
    if pages:
        out += ["## Page reruns (ms, AppTest: in-process, no browser; its own overhead included)\n",
                "| page | rows | first run | rerun p50 | after a decision p50 | AppTest floor | ratio to floor | "
                "targets | result |", "|---|---:|---:|---:|---:|---:|---:|---|---|"]
        for r in pages:
            text, verdict = _verdict(_checks(r))
            worst = max(r["rerun_p50_ms"], r["after_decision_p50_ms"])
            out.append(f"| {r['page']} | {r['rows']:,} | {r['first_ms']:.0f} | {r['rerun_p50_ms']:.0f} | "
                       f"{r['after_decision_p50_ms']:.0f} | {r['apptest_floor_ms']:.0f} | "
                       f"{worst / r['apptest_floor_ms']:.0f} | {text}"
                       + (f", exception: {r['errors'][0]}" if r["errors"] else "") + f" | {verdict} |")
        out.append("")
    return "\n".join(out)


def missed(results: list[dict]) -> list[str]:
    """One line per missed target, saying why (from what the run measured)."""
    lines = []
    for r in results:
        checks = _checks(r)
        if all(ok is not False for _, ok in checks):
            continue
        if r["part"] == "version":
            lines.append(f"click → version ({r['backend']}): max {r['max_s']:.2f} s > {VERSION_TARGET_S:g} s; "
                         "the job "
                         f"waited {r['queue_wait_p50_s']:.2f} s for the worker (poll {r['poll_s']:g} s) and ran "
                         f"{r['job_run_p50_s']:.2f} s (plain fit {r['plain_fit_s']:.2f} s; the rest is loading the "
                         "50k-row dataset, baselines, evaluation and storing the model).")
        elif r["part"] == "rank":
            lines.append(f"next batch at {r['rows']:,} rows: {r['engine_ms']:.0f} ms > {RANK_TARGET_MS:g} ms; "
                         f"{r['reasons_ms']:.0f} ms of it formats a reason string for each of "
                         f"{r['reasons_formatted']:,} queued rows (hitl_core.active._row_reasons, a Python loop); "
                         f"the batch itself (query) takes {r['query_ms']:.1f} ms.")
        elif r["part"] == "pages":
            why = (f"exception {r['errors'][0]}" if r["errors"] else
                   f"rerun {r['rerun_p50_ms']:.0f} ms, after a decision {r['after_decision_p50_ms']:.0f} ms, of which "
                   f"~{r['apptest_floor_ms']:.0f} ms is AppTest itself")
            lines.append(f"{r['page']} at {r['rows']:,} rows: {why}.")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["commit", "version", "rank", "pages"],
                        choices=["commit", "version", "rank", "pages"])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--clicks", type=int, default=200, help="timed clicks per commit configuration")
    parser.add_argument("--repeats", type=int, default=5, help="repeats for versions, ranking and page reruns")
    parser.add_argument("--poll", type=float, default=0.2, help="the worker's --poll (CLI default 0.2 s)")
    parser.add_argument("--others", type=int, default=4, help="other people labelling during the busy version run")
    parser.add_argument("--think", type=float, default=0.25, help="seconds between two clicks of each other person")
    parser.add_argument("--rank-rows", type=int, default=RANK_ROWS)
    parser.add_argument("--page-rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="save the results as JSON")
    args = parser.parse_args(argv)

    print(f"# bench.review — python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hitl-bench-review-") as tmp_dir:
        tmp = Path(tmp_dir)
        if {"commit", "version"} & set(args.parts):
            with databases(args.backends, tmp) as makers:
                for backend, make in makers.items():
                    if "commit" in args.parts:
                        results += bench_commit(make(f"commit-{backend}"), backend, args.clicks, args.poll)
                    if "version" in args.parts:
                        results += bench_version(make(f"version-{backend}"), backend, args.repeats, args.poll,
                                                 args.others, args.think)
        if "rank" in args.parts:
            results += bench_rank(args.rank_rows, args.repeats)
        if "pages" in args.parts:
            results += bench_pages(args.page_rows, args.repeats, tmp)
    print()
    print(format_tables(results))
    lines = missed(results)
    if lines:
        print("## Missed targets\n")
        print("\n".join(f"* {line}" for line in lines))
    print(f"\n# load at the end {os.getloadavg()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": {"python": platform.python_version(), "cores": os.cpu_count(),
                                                  **{k: str(v) for k, v in vars(args).items()}},
                                         "results": results}, indent=2, default=str))
        print(f"# saved {args.json}")
    return 0 if not lines else 1


if __name__ == "__main__":
    sys.exit(main())
