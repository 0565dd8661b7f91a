"""The live workshop vote: leads run rounds, everyone votes once per round, votes are labels consensus counts."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from hitl_core import actions, agreement, consensus, users, workshop
from hitl_core.store import Store
from tests.support.databases import create_project, database_url, pg_server  # noqa: F401 (fixtures)

PEOPLE = {"root": "admin", "lea": "lead", "ann": "annotator", "vic": "viewer", "val": "viewer"}


@pytest.fixture
def room(database_url: str):  # noqa: F811
    """A wine project (manual retrains) with an account per role."""
    store = Store(database_url)
    project = create_project(store, retrain_policy="manual")
    for name, role in PEOPLE.items():
        actions.add_user(store, "local" if name == "root" else "root", name=name, role=role)
    yield store, project
    store.engine.dispose()


def _pool_key(store: Store, project, i: int = 0) -> str:
    return str(store.pool_rows(project)[0][i])


def test_a_viewer_votes_and_an_annotator_cannot_open_a_round(room) -> None:
    store, project = room
    key = _pool_key(store, project)
    with pytest.raises(users.PermissionDenied, match="permission denied: annotator may not run workshop"):
        actions.open_round(store, project.id, "ann", key)
    with pytest.raises(users.PermissionDenied, match="viewer may not run workshop"):
        actions.open_round(store, project.id, "vic", key)
    opened = actions.open_round(store, project.id, "lea", key)
    events = len(store.events(project.id))
    with pytest.raises(users.PermissionDenied, match="'eve' has no account, so may not vote"):
        actions.cast_vote(store, project.id, "eve", opened.id, project.schema.classes[0])
    assert len(store.events(project.id)) == events and store.workshop_round(project.id).n_votes == 0
    voted = actions.cast_vote(store, project.id, "vic", opened.id, project.schema.classes[0])
    assert voted.n_votes == 1 and voted.status == "voting"
    for verb in (actions.reveal_round, actions.close_round):
        with pytest.raises(users.PermissionDenied, match="viewer may not run workshop"):
            verb(store, project.id, "vic", opened.id)


def test_one_vote_per_person_per_round_and_a_second_vote_replaces_the_first(room) -> None:
    store, project = room
    a, b = project.schema.classes[:2]
    key = _pool_key(store, project)
    opened = actions.open_round(store, project.id, "lea", key)
    actions.cast_vote(store, project.id, "vic", opened.id, a)
    actions.cast_vote(store, project.id, "vic", opened.id, a)  # the same vote again writes nothing
    now = actions.cast_vote(store, project.id, "vic", opened.id, b)
    assert now.n_votes == 1
    assert list(store.workshop_votes(opened.id)["label"]) == [b]
    decisions = store.decisions(project.id)
    assert list(decisions["new_label"]) == [a, b] and set(decisions["kind"]) == {"workshop"}
    assert store.workshop_vote(opened.id, "vic") == b and store.workshop_vote(opened.id, "val") is None


def test_votes_are_workshop_labels_that_consensus_and_agreement_count(room) -> None:
    store, project = room
    a, b = project.schema.classes[:2]
    key = _pool_key(store, project)
    opened = actions.open_round(store, project.id, "lea", key)
    for person, label in (("vic", a), ("val", a), ("ann", b), ("lea", a)):
        actions.cast_vote(store, project.id, person, opened.id, label)
    decisions = store.decisions(project.id)
    row = consensus.row_consensus(decisions).loc[key]
    assert (row["n_votes"], row["majority"], row["agreement"]) == (4, a, 0.75)
    assert consensus.decided_labels(decisions)[key] == a
    ratings = agreement.rating_table(agreement.votes(decisions))
    assert list(ratings.row_keys) == [key] and ratings.people == ("ann", "lea", "val", "vic")


def test_votes_are_refused_once_the_round_is_closed_and_accepted_after_the_reveal(room) -> None:
    store, project = room
    a, b = project.schema.classes[:2]
    opened = actions.open_round(store, project.id, "lea", _pool_key(store, project))
    actions.cast_vote(store, project.id, "vic", opened.id, a)
    revealed = actions.reveal_round(store, project.id, "lea", opened.id)
    assert revealed.status == "revealed" and revealed.predicted_label in project.schema.classes
    assert 0 < revealed.confidence <= 1 and revealed.model_version == 1
    actions.cast_vote(store, project.id, "val", opened.id, b)  # after the reveal: the prediction seen is recorded
    seen = store.decisions(project.id).set_index("user")
    assert pd.isna(seen.loc["vic", "predicted_label"])
    assert seen.loc["val", "predicted_label"] == revealed.predicted_label
    closed = actions.close_round(store, project.id, "lea", opened.id)
    assert closed.status == "closed" and closed.n_votes == 2
    with pytest.raises(actions.InvalidAction, match="is closed; vote on the row the lead has on the shared screen"):
        actions.cast_vote(store, project.id, "vic", opened.id, b)
    with pytest.raises(actions.InvalidAction, match="No workshop round #999"):
        actions.cast_vote(store, project.id, "vic", 999, b)


def test_opening_a_round_closes_the_open_one_and_refuses_a_test_row(room) -> None:
    store, project = room
    first = actions.open_round(store, project.id, "lea", _pool_key(store, project, 0))
    second = actions.open_round(store, project.id, "root", _pool_key(store, project, 1))
    assert store.workshop_round(project.id, first.id).status == "closed"
    assert store.workshop_round(project.id).id == second.id and second.status == "voting"
    test_key = str(store.load_dataset(project).rows("test")[0])
    with pytest.raises(actions.InvalidAction, match="validation or held-out test split"):
        actions.open_round(store, project.id, "lea", test_key)
    with pytest.raises(actions.InvalidAction, match="is not a class"):
        actions.cast_vote(store, project.id, "vic", second.id, "maybe")


def test_each_step_writes_an_event_with_the_tally(room) -> None:
    store, project = room
    a = project.schema.classes[0]
    key = _pool_key(store, project)
    opened = actions.open_round(store, project.id, "lea", key)
    actions.cast_vote(store, project.id, "vic", opened.id, a)
    actions.reveal_round(store, project.id, "lea", opened.id)
    actions.close_round(store, project.id, "lea", opened.id)
    events = store.events(project.id)
    events = events[events["action"].str.startswith("workshop")]
    assert list(zip(events["action"], events["actor"])) == [
        ("workshop_open", "lea"), ("workshop_vote", "vic"), ("workshop_reveal", "lea"), ("workshop_close", "lea")]
    assert set(events["object"]) == {f"row {key}"}  # withdrawing the row removes them
    closing = json.loads(events.iloc[-1]["after"])
    assert closing["votes"] == 1 and closing["tally"][a] == 1 and sum(closing["tally"].values()) == 1


def test_closing_a_round_with_votes_asks_the_retrain_policy_once(database_url: str) -> None:  # noqa: F811
    store = Store(database_url)
    try:
        project = create_project(store, retrain_policy="every")
        opened = actions.open_round(store, project.id, "lea", _pool_key(store, project))
        for person in ("p1", "p2", "p3"):
            actions.cast_vote(store, project.id, person, opened.id, project.schema.classes[0])
        assert not store.open_jobs(project.id)  # votes alone queue nothing: the round is still being discussed
        actions.close_round(store, project.id, "lea", opened.id)
        assert len(store.open_jobs(project.id)) == 1
    finally:
        store.engine.dispose()


def test_withdrawing_a_row_deletes_its_rounds_and_votes(room) -> None:
    store, project = room
    key = _pool_key(store, project)
    opened = actions.open_round(store, project.id, "lea", key)
    actions.cast_vote(store, project.id, "vic", opened.id, project.schema.classes[0])
    done = actions.withdraw_rows(store, project.id, "root", [key], "data subject asked")
    assert done.removed["workshop_rounds"] == 1 and done.removed["workshop_votes"] == 1
    assert store.workshop_round(project.id) is None


# --------------------------------------------------------------------------- the pure part
def _votes(*labels: str) -> pd.DataFrame:
    return pd.DataFrame({"user": [f"p{i}" for i in range(len(labels))], "label": list(labels)})


def test_the_sentence_names_the_majority_and_the_model() -> None:
    votes = _votes(*["yes"] * 7, "no", "no")
    result = workshop.Result(workshop.tally(votes, ("no", "yes")), workshop.pairwise_agreement(votes), "yes", 0.812)
    assert result.sentence() == "7 of 9 people say yes; the model says yes (0.81)."
    assert list(result.tally.items()) == [("no", 2), ("yes", 7)]
    assert result.agreement == pytest.approx((21 + 1) / 36)  # pairs agreeing: C(7,2) + C(2,2) of C(9,2)
    assert result.agreement_sentence() == "61% of pairs of people agree; the room agrees with the model."


def test_a_split_room_and_an_empty_one_are_said_plainly() -> None:
    votes = _votes("yes", "no", "maybe", "yes", "no")
    split = workshop.Result(workshop.tally(votes, ("yes", "no", "maybe")), workshop.pairwise_agreement(votes), "no",
                            0.5)
    assert split.majority is None
    assert split.sentence() == "The 5 people are split: 2 say yes, 2 say no, 1 says maybe; the model says no (0.50)."
    empty = workshop.Result(workshop.tally(_votes(), ("yes", "no")), workshop.pairwise_agreement(_votes()))
    assert empty.sentence() == "Nobody has voted yet; there is no model answer to compare."
    assert math.isnan(empty.agreement) and empty.agreement_sentence() == "Agreement needs at least two votes."
    alone = workshop.Result(workshop.tally(_votes("no"), ("yes", "no")), math.nan, "yes", 0.9)
    assert alone.sentence() == "1 person says no; the model says yes (0.90)."


def test_the_explanation_in_words_names_the_strongest_features_with_their_direction() -> None:
    contributions = pd.Series({"income": -0.9, "age": 1.4, "city": 0.1, "debt": 0.0})
    values = pd.Series({"income": 52000.0, "age": 23, "city": "<b>Oslo</b>", "debt": None})
    words = workshop.explanation_words(contributions, values, "approved")
    assert words == ("What moved the model most: age = 23 (towards approved); income = 52,000 (away from approved); "
                     "city = <b>Oslo</b> (towards approved).")


def test_the_poll_reads_the_count_and_a_watermark_that_moves_with_every_vote(room) -> None:
    store, project = room
    a, b = project.schema.classes[:2]
    opened = actions.open_round(store, project.id, "lea", _pool_key(store, project))
    assert (store.workshop_round(project.id).n_votes, store.workshop_round(project.id).last_vote) == (0, 0)
    actions.cast_vote(store, project.id, "vic", opened.id, a)
    first = store.workshop_round(project.id)
    actions.cast_vote(store, project.id, "vic", opened.id, b)  # a changed vote: same count, new watermark
    second = store.workshop_round(project.id)
    assert first.n_votes == second.n_votes == 1 and second.last_vote > first.last_vote


def test_the_tally_chart_escapes_class_names_and_marks_the_model() -> None:
    votes = _votes("<a href='x'>yes</a>", "no", "no")
    classes = ("no", "<a href='x'>yes</a>")
    fig = workshop.tally_chart(workshop.Result(workshop.tally(votes, classes), math.nan, "no", 0.7))
    bar = fig.data[0]
    assert list(bar.x) == ["no", "&lt;a href='x'&gt;yes&lt;/a&gt;"] and list(bar.y) == [2, 1]
    assert list(bar.marker.color) == ["#ff7f0e", "#1f77b4"]
