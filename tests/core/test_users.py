"""Accounts and roles: the write path refuses what a role may not do, on both backends and from the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_core import actions, users
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def team(database_url: str):  # noqa: F811
    store = Store(database_url)
    project = create_project(store)  # local mode: no account yet, anyone may
    actions.add_user(store, "setup", name="root", role="admin", password="correct horse")
    for name, role in (("lee", "lead"), ("ann", "annotator"), ("vic", "viewer")):
        actions.add_user(store, "root", name=name, role=role)
    yield store, project
    store.engine.dispose()


def _row(store: Store, project) -> str:
    return str(store.pool_rows(project)[0][0])


def test_local_mode_allows_everything_and_says_admin(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hitl.db'}")
    try:
        with store.write() as tx:
            assert users.authorise(tx, "anyone at all", "withdraw") == "admin"
        assert not store.has_users()
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("actor, allowed", [("root", True), ("lee", True), ("ann", True), ("vic", False),
                                            ("stranger", False)])
def test_labelling_is_checked_in_the_write_path(team, actor: str, allowed: bool) -> None:
    store, project = team
    request = DecisionRequest(_row(store, project), project.schema.classes[0])
    before = len(store.decisions(project.id))
    if allowed:
        assert actions.record_decision(store, project.id, actor, request).saved
    else:
        with pytest.raises(users.PermissionDenied, match="permission denied: .* may not label"):
            actions.record_decision(store, project.id, actor, request)
    assert len(store.decisions(project.id)) == before + allowed


@pytest.mark.parametrize("actor, call, action", [
    ("ann", lambda s, p, a: actions.request_retrain(s, p.id, a), "retrain"),
    ("ann", lambda s, p, a: actions.change_settings(s, p.id, a, threshold=0.5), "change settings"),
    ("vic", lambda s, p, a: actions.set_current_version(s, p.id, a, version=1, reason="x"), "rollback"),
    ("lee", lambda s, p, a: actions.record_export(s, p.id, a, what="labels", rows=3), "export"),
    ("lee", lambda s, p, a: actions.add_user(s, a, name="eve", role="admin"), "manage users"),
])
def test_each_role_is_held_to_its_job(team, actor, call, action) -> None:
    store, project = team
    events = len(store.events(project.id))
    with pytest.raises(users.PermissionDenied) as refused:
        call(store, project, actor)
    assert str(refused.value) == f"permission denied: {store.user(actor).role} may not {action}"
    assert len(store.events(project.id)) == events  # nothing written


def test_a_lead_retrains_and_an_admin_exports_with_an_event(team) -> None:
    store, project = team
    assert actions.request_retrain(store, project.id, "lee").status == "queued"
    actions.record_export(store, project.id, "root", what="labels (csv)", rows=12)
    last = store.events(project.id).iloc[-1]
    assert (last["actor"], last["action"]) == ("root", "export")


def test_the_first_account_must_be_an_admin_and_the_last_admin_stays(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hitl.db'}")
    try:
        with pytest.raises(actions.InvalidAction, match="first account must be an admin"):
            actions.add_user(store, "local", name="ann", role="annotator")
        actions.add_user(store, "local", name="root", role="admin")
        with pytest.raises(actions.InvalidAction, match="last admin"):
            actions.set_user(store, "root", name="root", role="viewer")
        with pytest.raises(actions.InvalidAction, match="already an account"):
            actions.add_user(store, "root", name="root", role="lead")
        with pytest.raises(actions.InvalidAction, match="Unknown role 'boss'"):
            actions.add_user(store, "root", name="x", role="boss")
    finally:
        store.engine.dispose()


def test_passwords_are_argon2_hashes_checked_by_the_library(team) -> None:
    store, _ = team
    stored = store.password_hash("root")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert users.verify_password(stored, "correct horse")
    assert not users.verify_password(stored, "correct horse ")
    assert not users.verify_password(store.password_hash("ann"), "")  # no password: cannot sign in with one
    with pytest.raises(ValueError, match="at least 8"):
        users.hash_password("short")


def _cli(*args: str, db: str, actor: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hitl_core", *args, "--db", db, "--as", actor], cwd=REPO,
                          input=stdin, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin"})


def test_cli_users_and_exit_4(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hitl.db'}"
    made = _cli("project", "create", "sample:wine", "--target", "target", "--policy", "manual", db=db, actor="ana")
    project = json.loads(made.stdout)["project"]
    added = _cli("users", "add", "root", "--role", "admin", "--password-stdin", db=db, actor="local",
                 stdin="a long password\n")
    assert added.returncode == 0 and json.loads(added.stdout) == {"user": "root", "role": "admin", "password": True}
    assert _cli("users", "add", "vic", "--role", "viewer", db=db, actor="root").returncode == 0
    assert _cli("users", "add", "ann", "--role", "annotator", db=db, actor="root").returncode == 0
    listed = json.loads(_cli("users", "list", "--json", db=db, actor="vic").stdout)
    assert [(u["name"], u["role"], u["password"]) for u in listed] == [
        ("ann", "annotator", False), ("root", "admin", True), ("vic", "viewer", False)]
    store = Store(db)
    row = str(store.pool_rows(store.project(project))[0][0])
    store.engine.dispose()
    label = _cli("label", "--project", str(project), "--row", row, "--label", "class_0", db=db, actor="vic")
    assert (label.returncode, label.stderr.strip()) == (4, "permission denied: viewer may not label")
    out = tmp_path / "labels.csv"
    export = _cli("export", "--project", str(project), "--what", "labels", "--out", str(out), db=db, actor="ann")
    assert (export.returncode, export.stderr.strip()) == (4, "permission denied: annotator may not export")
    assert not out.exists()
    stranger = _cli("label", "--project", str(project), "--row", row, "--label", "class_0", db=db, actor="local")
    assert stranger.returncode == 4 and "'local' has no account" in stranger.stderr
    assert _cli("label", "--project", str(project), "--row", row, "--label", "class_0", db=db,
                actor="ann").returncode == 0
