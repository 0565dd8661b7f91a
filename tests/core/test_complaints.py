"""Complaints and recourse: anyone flags a decision, the row is asked about first, and the answer (kept or changed,
by whom, why, when) is stored with the row, in the exports and in the audit trail."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hitl_core import actions, active, complaints, export, loop, users
from hitl_core.samples import Sample
from hitl_core.data import Schema
from hitl_core.store import Store
from tests.core.helpers import ACTOR, pool, start_wine
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]


def _ranked(store: Store, project) -> pd.DataFrame:
    """The Review page's ranking: margin sampling over the current version's pool, complaints first."""
    frame = pool(store, project)
    ranked = active.rank_pool("margin", frame[[f"p({c})" for c in project.schema.classes]], labels=frame["label"],
                              batch_size=5, seed=project.seed)
    return complaints.prioritise(ranked, complaints.open_rows(store.complaints(project.id)))


def _last_in_queue(store: Store, project) -> str:
    """A pool row the strategy would never ask about: labelled, so out of its queue altogether."""
    ranked = _ranked(store, project)
    return str(ranked.index[ranked["rank"].isna()][-1])


def test_a_complaint_reaches_the_queue_first(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    before = _ranked(store, project)
    key = _last_in_queue(store, project)

    actions.complain(store, project.id, "vic", key, "the label of my wine is wrong")

    after = _ranked(store, project)
    first = after.sort_values("rank").index[0]
    assert first == key and after.loc[key, "rank"] == 1 and bool(after.loc[key, "in_batch"])
    assert after.loc[key, "reason"].startswith("open complaint")
    strategy_batch = before.index[before["in_batch"]]
    assert list(after.loc[strategy_batch, "rank"]) == list(before.loc[strategy_batch, "rank"] + 1)  # still next


def test_complaints_are_asked_in_the_order_they_came_and_leave_once_answered(store: Store, wine: Sample,
                                                                                wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    keys, _ = store.pool_rows(project)
    first = actions.complain(store, project.id, "vic", keys[7], "one")
    actions.complain(store, project.id, "ann", keys[3], "two")
    actions.complain(store, project.id, "bob", keys[7], "three, same row")
    assert complaints.open_rows(store.complaints(project.id)) == [keys[7], keys[3]]

    actions.resolve_complaint(store, project.id, ACTOR, first.id, outcome="kept", reason="checked the lab sheet")
    # the row's oldest open complaint is now the third, younger than the second: it waits behind it
    assert complaints.open_rows(store.complaints(project.id)) == [keys[3], keys[7]]
    ranked = _ranked(store, project)
    assert list(ranked.sort_values("rank").index[:2]) == [keys[3], keys[7]]


def test_kept_resolution_is_recorded_and_in_both_exports(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    key = str(store.pool_rows(project)[0][0])
    raised = actions.complain(store, project.id, "vic", key, "  my wine is not class_0  ")
    assert raised.reason == "my wine is not class_0" and raised.status == "open"

    kept = actions.resolve_complaint(store, project.id, "lena", raised.id, outcome="kept",
                                     reason="the assay confirms it")

    assert (kept.status, kept.resolution, kept.resolved_by, kept.resolution_note, kept.decision_id) == (
        "resolved", "kept", "lena", "the assay confirms it", None)
    assert kept.resolved_at >= kept.created_at and store.decisions(project.id).empty  # kept: no new decision
    table = export.export(store, project.id, "complaints")
    assert table.loc[0, ["row_key", "created_by", "reason", "resolution", "resolved_by", "resolution_note"]].tolist() \
        == [key, "vic", "my wine is not class_0", "kept", "lena", "the assay confirms it"]
    labels = export.export(store, project.id, "labels").set_index("row_key")
    assert labels.loc[key, ["complaints", "open_complaints", "complaint_outcome", "complaint_resolved_by",
                            "complaint_note"]].tolist() == [1, 0, "kept", "lena", "the assay confirms it"]
    others = labels.drop(index=key)
    assert (others["complaints"] == 0).all() and (others["complaint_outcome"] == "").all()
    events = store.events(project.id)
    trail = events[events["object"] == f"row {key}"][["actor", "action", "note"]].values.tolist()
    assert trail == [["vic", "complaint", "my wine is not class_0"],
                     ["lena", "complaint_resolved", "the assay confirms it"]]


def test_changed_resolution_records_the_decision_in_the_same_transaction(database_url: str) -> None:  # noqa: F811
    store = Store(database_url)
    try:
        project = create_project(store, retrain_policy="manual")
        frame = pool(store, project)
        key = str(frame.index[0])
        was = frame.loc[key, "label"]
        new = next(c for c in project.schema.classes if c != was)
        raised = actions.complain(store, project.id, "vic", key, "wrong class")

        changed = actions.resolve_complaint(store, project.id, "lena", raised.id, outcome="changed",
                                            reason="re-measured", new_label=new)

        decisions = store.decisions(project.id)
        assert len(decisions) == 1 and changed.decision_id == int(decisions.loc[0, "id"])
        assert decisions.loc[0, ["row_key", "user", "old_label", "new_label", "action"]].tolist() == [
            key, "lena", was, new, "override"]
        assert decisions.loc[0, "note"] == f"complaint #{raised.id}: re-measured"
        labels = loop.effective_labels(store.load_dataset(project).labels, decisions)
        assert labels[key] == new
        row = export.export(store, project.id, "labels").set_index("row_key").loc[key]
        assert (row["effective_label"], row["complaint_outcome"], row["decided_by"]) == (new, "changed", "lena")
        resolved = json.loads(store.events(project.id).query("action == 'complaint_resolved'").iloc[0]["after"])
        assert resolved == {"complaint": raised.id, "outcome": "changed", "decision": changed.decision_id}
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("kwargs, message", [
    ({"outcome": "kept", "new_label": "class_1"}, "leaves the label as it is"),
    ({"outcome": "changed"}, "needs the new label"),
    ({"outcome": "changed", "new_label": "class_9"}, "needs the new label"),
    ({"outcome": "maybe"}, "Unknown outcome 'maybe'"),
    ({"outcome": "kept", "reason": " "}, "resolution note is empty"),
])
def test_a_resolution_that_makes_no_sense_is_refused(store: Store, wine: Sample, wine_schema: Schema, kwargs: dict,
                                                     message: str) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    raised = actions.complain(store, project.id, "vic", str(store.pool_rows(project)[0][0]), "wrong")
    with pytest.raises(actions.InvalidAction, match=message):
        actions.resolve_complaint(store, project.id, ACTOR, raised.id, **{"reason": "why", **kwargs})
    assert store.complaints(project.id)[0].status == "open" and store.decisions(project.id).empty


def test_complaints_are_refused_with_a_message_saying_what_to_do(store: Store, wine: Sample,
                                                                  wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    dataset = store.load_dataset(project)
    key = str(dataset.rows("train")[0])
    with pytest.raises(actions.InvalidAction, match="reason is empty"):
        actions.complain(store, project.id, "vic", key, "   ")
    with pytest.raises(actions.InvalidAction, match="keep it under 2,000"):
        actions.complain(store, project.id, "vic", key, "x" * 2001)
    with pytest.raises(actions.InvalidAction, match="No row 'nope' in project"):
        actions.complain(store, project.id, "vic", "nope", "wrong")
    with pytest.raises(actions.InvalidAction, match="validation or held-out test split"):
        actions.complain(store, project.id, "vic", str(dataset.rows("test")[0]), "wrong")
    raised = actions.complain(store, project.id, "vic", key, "x" * 2000)
    actions.resolve_complaint(store, project.id, ACTOR, raised.id, outcome="kept", reason="fine")
    with pytest.raises(actions.InvalidAction, match=f"#{raised.id} was already resolved by {ACTOR}"):
        actions.resolve_complaint(store, project.id, ACTOR, raised.id, outcome="kept", reason="again")
    with pytest.raises(actions.InvalidAction, match="No complaint #99"):
        actions.resolve_complaint(store, project.id, ACTOR, 99, outcome="kept", reason="fine")
    current = loop.effective_labels(dataset.labels, store.decisions(project.id))[key]
    later = actions.complain(store, project.id, "vic", key, "still")
    with pytest.raises(actions.InvalidAction, match="already labelled"):
        actions.resolve_complaint(store, project.id, ACTOR, later.id, outcome="changed", reason="x", new_label=current)


def test_a_viewer_can_complain_but_not_resolve(store: Store, wine: Sample, wine_schema: Schema) -> None:
    project, _ = start_wine(store, wine, wine_schema)
    actions.add_user(store, "local", name="root", role="admin")
    actions.add_user(store, "root", name="vic", role="viewer")
    actions.add_user(store, "root", name="ann", role="annotator")
    key = str(store.pool_rows(project)[0][0])

    raised = actions.complain(store, project.id, "vic", key, "I was refused a loan for no reason")

    assert raised.created_by == "vic"
    with pytest.raises(users.PermissionDenied, match="permission denied: viewer may not resolve complaint"):
        actions.resolve_complaint(store, project.id, "vic", raised.id, outcome="kept", reason="mine")
    with pytest.raises(users.PermissionDenied, match="has no account, so may not complain"):
        actions.complain(store, project.id, "stranger", key, "hello")
    assert actions.resolve_complaint(store, project.id, "ann", raised.id, outcome="kept",
                                     reason="documented").resolved_by == "ann"


def test_cli_complain_then_list_as_json(tmp_path: Path, wine: Sample, wine_schema: Schema) -> None:
    url = f"sqlite:///{(tmp_path / 'hitl.db').as_posix()}"
    store = Store(url)
    project, _ = start_wine(store, wine, wine_schema)
    key = str(store.pool_rows(project)[0][0])
    store.engine.dispose()

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hitl_core", *args, "--project", str(project.id), "--db", url,
                               "--as", "vic"], cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin"})

    done = cli("complain", "--row", key, "--reason", "=cmd|' /C calc'!A0 is my complaint")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"complaint": 1, "row": key, "status": "open"}
    listed = json.loads(cli("complaints", "--json").stdout)
    assert [(c["id"], c["row_key"], c["status"], c["created_by"]) for c in listed] == [(1, key, "open", "vic")]
    bad = cli("complain", "--row", "no-such-row", "--reason", "x")
    assert bad.returncode == 2 and "No row 'no-such-row'" in bad.stderr and "Traceback" not in bad.stderr
    resolved = cli("resolve", "--complaint", "1", "--outcome", "kept", "--reason", "checked")
    assert resolved.returncode == 0 and json.loads(resolved.stdout)["outcome"] == "kept"
    assert cli("complaints", "--open").stdout.startswith("no open complaints")
