"""Several reviewers per row: every vote kept, the majority trains, ties go to the lead, leases share the queue."""
from __future__ import annotations

import pytest

from hitl_core import actions, consensus, loop
from hitl_core.records import DecisionRequest
from hitl_core.store import Store
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401 (fixtures)


@pytest.fixture
def voting(database_url: str):  # noqa: F811
    store = Store(database_url)
    project = create_project(store, retrain_policy="manual")
    project = actions.change_settings(store, project.id, "ana", overlap=3)
    yield store, project
    store.engine.dispose()


def _effective(store: Store, project, key: str):
    return loop.effective_labels(store.load_dataset(project).labels, store.decisions(project.id))[key]


def test_every_vote_is_kept_and_the_majority_is_the_label(voting) -> None:
    store, project = voting
    key = str(store.pool_rows(project)[0][0])
    a, b = project.schema.classes[:2]
    for person, label in (("ann", a), ("bob", b), ("cat", a)):
        saved = actions.record_decision(store, project.id, person, DecisionRequest(key, label, expected="stale"))
        assert saved.saved  # a vote is never a conflict: nobody's label is overwritten
    decisions = store.decisions(project.id)
    assert list(decisions["kind"]) == ["vote"] * 3 and list(decisions["user"]) == ["ann", "bob", "cat"]
    assert _effective(store, project, key) == a
    row = consensus.row_consensus(decisions).loc[key]
    assert (row["n_votes"], row["majority"], round(row["agreement"], 3), row["needs_adjudication"]) == (3, a, 0.667,
                                                                                                       False)
    actions.record_decision(store, project.id, "cat", DecisionRequest(key, b))  # cat changes her mind: her vote moves
    assert _effective(store, project, key) == b
    assert consensus.row_consensus(store.decisions(project.id)).loc[key, "n_votes"] == 3


def test_a_tie_goes_to_the_lead_and_the_adjudication_trains(voting) -> None:
    store, project = voting
    keys = [str(k) for k in store.pool_rows(project)[0][:2]]
    given = store.load_dataset(project).labels
    a, b = project.schema.classes[:2]
    actions.record_decision(store, project.id, "ann", DecisionRequest(keys[0], a))
    actions.record_decision(store, project.id, "bob", DecisionRequest(keys[0], b))
    assert _effective(store, project, keys[0]) == given[keys[0]]  # no consensus: the given label stays
    queue = consensus.adjudication_queue(store.decisions(project.id))
    assert list(queue.index) == [keys[0]] and bool(queue.loc[keys[0], "tie"])
    assert queue.loc[keys[0], "votes"] == f"ann: {a}, bob: {b}"
    saved = actions.adjudicate(store, project.id, "lee", row_key=keys[0], label=b, note="guideline 3")
    assert saved.action == "adjudication" and _effective(store, project, keys[0]) == b
    assert consensus.adjudication_queue(store.decisions(project.id)).empty
    assert list(store.decisions(project.id)["kind"]) == ["vote", "vote", "adjudication"]  # each vote on record
    event = store.events(project.id).iloc[-1]
    assert (event["actor"], event["action"]) == ("lee", "adjudicate")


def test_leases_hand_each_row_to_overlap_people_and_expire(voting) -> None:
    store, project = voting
    project = actions.change_settings(store, project.id, "ana", overlap=2)
    keys = [str(k) for k in store.pool_rows(project)[0][:6]]
    ann = actions.lease_rows(store, project.id, "ann", keys, n=3)
    bob = actions.lease_rows(store, project.id, "bob", keys, n=3)
    cat = actions.lease_rows(store, project.id, "cat", keys, n=3)
    assert ann == bob == keys[:3] and cat == keys[3:]  # overlap 2: two people per row, the third gets others
    actions.record_decision(store, project.id, "ann", DecisionRequest(keys[0], project.schema.classes[0]))
    assert keys[0] not in actions.lease_rows(store, project.id, "ann", keys, n=3)  # never your own labelled row
    actions.lease_rows(store, project.id, "bob", keys, n=3, seconds=-1)  # bob's leases expire at once
    assert actions.lease_rows(store, project.id, "dan", keys, n=2) == keys[:2]  # ann's label + dan: row 0 full


def test_one_reviewer_per_row_keeps_the_latest_decision_rule(database_url: str) -> None:  # noqa: F811
    store = Store(database_url)
    try:
        project = create_project(store, retrain_policy="manual")
        key = str(store.pool_rows(project)[0][0])
        a, b = project.schema.classes[:2]
        actions.record_decision(store, project.id, "ann", DecisionRequest(key, a))
        actions.record_decision(store, project.id, "bob", DecisionRequest(key, b))
        assert _effective(store, project, key) == b and consensus.adjudication_queue(store.decisions(project.id)).empty
    finally:
        store.engine.dispose()


def test_an_override_names_a_reason_from_the_list(voting) -> None:
    store, project = voting
    project = actions.set_guidelines(store, project.id, "lee", guidelines="# Rules\nLook at **alcohol** first.",
                                     reasons=["model ignored alcohol", "data entry error", " "])
    assert project.reasons == ("model ignored alcohol", "data entry error")
    key = str(store.pool_rows(project)[0][0])
    a, b = project.schema.classes[:2]
    with pytest.raises(actions.InvalidAction, match="say why you override"):
        actions.record_decision(store, project.id, "ann", DecisionRequest(key, b, predicted_label=a))
    with pytest.raises(actions.InvalidAction, match="not one of this project's override reasons"):
        actions.record_decision(store, project.id, "ann", DecisionRequest(key, b, predicted_label=a, reason="gut"))
    actions.record_decision(store, project.id, "ann", DecisionRequest(key, b, predicted_label=a,
                                                                      reason="data entry error"))
    assert store.decisions(project.id)["reason"].tolist() == ["data entry error"]
    assert store.events(project.id).iloc[-2]["action"] == "guidelines"
