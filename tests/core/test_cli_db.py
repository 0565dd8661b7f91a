"""The database commands, run as a user would: separate processes, exit codes, one-line messages."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hitl_core.samples import load_sample
from hitl_core.store import Store

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, db: str, actor: str = "local") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hitl_core", *args, "--db", db, "--as", actor], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin"})


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    db = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'hitl.db'}"
    done = cli("project", "create", "sample:wine", "--target", "target", "--policy", "manual", db=db, actor="ana")
    assert done.returncode == 0, done.stderr
    return db, json.loads(done.stdout)["project"]


def _pool_row(db: str, project_id: int) -> tuple[str, str]:
    store = Store(db)
    try:
        keys, given = store.pool_rows(store.project(project_id))
        return str(keys[0]), str(given[keys[0]])
    finally:
        store.engine.dispose()


def test_project_create_prints_the_project_and_its_first_version(made) -> None:
    db, project_id = made
    versions = json.loads(cli("versions", "--project", str(project_id), "--json", db=db).stdout)
    assert [(v["version"], v["status"], v["n_decisions"]) for v in versions][:1] == [(1, "current", 0)]


def test_label_then_a_stale_label_exits_3_naming_who_changed_it(made) -> None:
    db, project_id = made
    key, given = _pool_row(db, project_id)
    first = cli("label", "--project", str(project_id), "--row", key, "--label", "class_2", "--expect", given,
                "--note", "rechecked", db=db, actor="ana")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["old_label"] == given and json.loads(first.stdout)["new_label"] == "class_2"
    stale = cli("label", "--project", str(project_id), "--row", key, "--label", "class_1", "--expect", given,
                db=db, actor="bob")
    assert stale.returncode == 3
    lines = stale.stderr.strip().splitlines()
    assert len(lines) == 1 and "changed by ana to class_2" in lines[0] and "Traceback" not in stale.stderr


@pytest.mark.parametrize("row, label, message", [("no-such-row", "class_0", "review pool"),
                                                 (None, "class_9", "is not a class")])
def test_an_unknown_row_or_label_exits_2_with_one_line(made, row, label, message) -> None:
    db, project_id = made
    row = row or _pool_row(db, project_id)[0]
    done = cli("label", "--project", str(project_id), "--row", row, "--label", label, db=db)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_retrain_is_queued_and_a_worker_once_makes_it_current(made) -> None:
    db, project_id = made
    queued = json.loads(cli("retrain", "--project", str(project_id), db=db).stdout)
    assert queued["status"] == "queued"
    worked = cli("worker", "--once", db=db)
    assert worked.returncode == 0 and json.loads(worked.stdout)["jobs"] == 1
    versions = json.loads(cli("versions", "--project", str(project_id), "--json", db=db).stdout)
    assert versions[-1]["status"] == "current" and versions[-1]["n_decisions"] >= 1
    assert versions[0]["status"] == "older"


def test_retrain_wait_trains_here_when_no_worker_runs(made) -> None:
    db, project_id = made
    done = cli("retrain", "--project", str(project_id), "--wait", db=db)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "current"


def test_unknown_project_exits_2(made) -> None:
    db, _ = made
    done = cli("versions", "--project", "999", "--json", db=db)
    assert done.returncode == 2 and "No project 999" in done.stderr


def test_rollback_and_predict_use_the_chosen_version(made, tmp_path: Path) -> None:
    db, project_id = made
    cli("retrain", "--project", str(project_id), "--wait", db=db)
    done = cli("rollback", "--project", str(project_id), "--to", "1", "--reason", "back to the start", db=db,
               actor="lead")
    assert done.returncode == 0 and json.loads(done.stdout)["current"] == 1
    versions = json.loads(cli("versions", "--project", str(project_id), "--json", db=db).stdout)
    assert [v["version"] for v in versions if v["status"] == "current"] == [1]


    table = tmp_path / "new.csv"
    load_sample("wine").frame.drop(columns="target").head(7).to_csv(table, index=False)
    out = tmp_path / "pred.csv"
    scored = cli("predict", "--project", str(project_id), str(table), "--out", str(out), db=db)
    assert scored.returncode == 0 and json.loads(scored.stdout) == {"rows": 7, "version": 1, "out": str(out)}

    frame = pd.read_csv(out)
    assert list(frame.columns[:3]) == ["row", "predicted", "confidence"] and len(frame) == 7
    assert (frame[["p(class_0)", "p(class_1)", "p(class_2)"]].sum(axis=1).round(9) == 1).all()


def test_predict_on_a_table_without_the_features_exits_2_naming_them(made, tmp_path: Path) -> None:
    db, project_id = made
    table = tmp_path / "other.csv"
    table.write_text("a,b\n1,2\n")
    done = cli("predict", "--project", str(project_id), str(table), "--out", str(tmp_path / "x.csv"), db=db)
    assert done.returncode == 2 and "lacks the model's feature column(s)" in done.stderr
