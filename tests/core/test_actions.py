"""The one write path: validation, conflicts instead of silent overwrites, an event per change, one current model."""
from __future__ import annotations

import json

import pytest

from hitl_core import actions, jobs, loop
from hitl_core.data import Schema
from hitl_core.records import DecisionRequest, Project
from hitl_core.samples import Sample
from hitl_core.store import Store


@pytest.fixture
def project(store: Store, wine: Sample, wine_schema: Schema) -> Project:
    project, _ = actions.create_project(store, "ana", name="wine", source="sample:wine", frame=wine.frame,
                                        schema=wine_schema, model_kind="logreg", retrain_policy="manual")
    return project


def _row(store: Store, project: Project, i: int = 0) -> tuple[str, str]:
    keys, given = store.pool_rows(project)
    return str(keys[i]), str(given[keys[i]])


def _other(project: Project, label: str) -> str:
    classes = project.schema.classes
    return classes[(classes.index(label) + 1) % len(classes)]


def test_a_decision_stores_the_true_previous_label_and_one_event(store: Store, project: Project) -> None:
    key, given = _row(store, project)
    outcome = actions.record_decision(store, project.id, "bob", DecisionRequest(key, _other(project, given),
                                                                                expected=given, note="looked twice"))
    saved = outcome.saved[0]
    decisions, events = store.decisions(project.id), store.events(project.id)
    assert decisions["old_label"].tolist() == [given] and decisions["user"].tolist() == ["bob"]
    decision_events = events[events["object"] == f"row {key}"]
    assert len(decision_events) == 1
    event = decision_events.iloc[0]
    assert event["actor"] == "bob" and event["note"] == "looked twice"
    assert json.loads(event["before"]) == {"label": given}
    assert json.loads(event["after"]) == {"label": _other(project, given), "decision": saved.id}


def test_a_changed_row_is_refused_with_who_changed_it_to_what(store: Store, project: Project) -> None:
    key, given = _row(store, project)
    first = _other(project, given)
    actions.record_decision(store, project.id, "ana", DecisionRequest(key, first, expected=given))
    with pytest.raises(actions.ConflictError) as refused:
        actions.record_decision(store, project.id, "bob", DecisionRequest(key, _other(project, first), expected=given))
    conflict = refused.value.conflicts[0]
    assert (conflict.changed_by, conflict.current, conflict.expected) == ("ana", first, given)
    assert f"changed by ana to {first}" in str(refused.value)
    assert store.decisions(project.id)["new_label"].tolist() == [first]  # nothing overwritten


def test_apply_anyway_succeeds_once_the_person_has_seen_the_other_label(store: Store, project: Project) -> None:
    key, given = _row(store, project)
    first = _other(project, given)
    actions.record_decision(store, project.id, "ana", DecisionRequest(key, first, expected=given))
    outcome = actions.record_decision(store, project.id, "bob", DecisionRequest(key, given, expected=first))
    assert outcome.saved[0].old_label == first
    assert outcome.saved[0].message() == f"Changed row {key}: {first} → {given} (given: {given})."[:-1]


def test_a_batch_saves_the_unchanged_rows_and_returns_the_conflicts(store: Store, project: Project) -> None:
    (k1, g1), (k2, g2) = _row(store, project, 0), _row(store, project, 1)
    actions.record_decision(store, project.id, "ana", DecisionRequest(k1, _other(project, g1), expected=g1))
    outcome = actions.record_decisions(store, project.id, "bob", [DecisionRequest(k1, g1, expected=g1),
                                                                 DecisionRequest(k2, g2, expected=g2)])
    assert [s.row_key for s in outcome.saved] == [k2]
    assert [c.row_key for c in outcome.conflicts] == [k1]
    assert "1 refused because someone changed them first" in outcome.message()


@pytest.mark.parametrize("request_kwargs, message", [
    ({"row_key": "0", "new_label": "not_a_class"}, "is not a class of"),
    ({"row_key": "no-such-row", "new_label": "class_0"}, "is not in this project's review pool"),
    ({"row_key": "0", "new_label": "class_0", "note": "x" * (actions.MAX_NOTE + 1)}, "keep it under"),
])
def test_impossible_decisions_are_refused_and_nothing_is_written(store: Store, project: Project, request_kwargs,
                                                                 message: str) -> None:
    key, _ = _row(store, project)
    request_kwargs = {**request_kwargs, "row_key": key if request_kwargs["row_key"] == "0" else request_kwargs["row_key"]}
    with pytest.raises(actions.InvalidAction, match=message):
        actions.record_decisions(store, project.id, "bob", [DecisionRequest(**request_kwargs)])
    assert store.count_decisions(project.id) == 0


def test_a_validation_row_cannot_be_relabelled(store: Store, project: Project) -> None:
    validation = store.load_dataset(project).rows("validation")[0]
    with pytest.raises(actions.InvalidAction, match="review pool"):
        actions.record_decisions(store, project.id, "bob", [DecisionRequest(str(validation), "class_0")])


def test_an_empty_name_cannot_act(store: Store, project: Project) -> None:
    key, given = _row(store, project)
    with pytest.raises(actions.InvalidAction, match="name is empty"):
        actions.record_decisions(store, project.id, "  ", [DecisionRequest(key, given)])


def test_settings_changes_are_events_with_before_and_after(store: Store, project: Project) -> None:
    actions.change_settings(store, project.id, "lead", threshold=0.55, retrain_policy="every_n", retrain_every=3)
    event = store.events(project.id).iloc[-1]
    assert (event["actor"], event["action"]) == ("lead", "settings")
    assert json.loads(event["before"]) == {"threshold": 0.7, "retrain_policy": "manual", "retrain_every": 5}
    assert json.loads(event["after"]) == {"threshold": 0.55, "retrain_policy": "every_n", "retrain_every": 3}
    assert store.project(project.id).threshold == 0.55


def test_unchanged_settings_write_no_event(store: Store, project: Project) -> None:
    before = len(store.events(project.id))
    actions.change_settings(store, project.id, "lead", threshold=project.threshold)
    assert len(store.events(project.id)) == before


@pytest.mark.parametrize("changes, message", [
    ({"threshold": 1.5}, "between 0 and 1"), ({"model_kind": "svm"}, "Unknown model"),
    ({"retrain_policy": "sometimes"}, "Unknown retrain policy"), ({"retrain_every": 0}, "between 1 and 1,000"),
    ({"name": ""}, "1 to 200 characters"), ({"seed": 3}, "Cannot change"),
])
def test_bad_settings_are_refused_with_a_message(store: Store, project: Project, changes: dict, message: str) -> None:
    with pytest.raises(actions.InvalidAction, match=message):
        actions.change_settings(store, project.id, "lead", **changes)


def test_changing_the_model_queues_a_retrain_that_makes_the_new_family_current(store: Store, project: Project) -> None:
    actions.change_settings(store, project.id, "lead", model_kind="hgb")
    assert [j.trigger for j in store.open_jobs(project.id)] == ["model changed to hgb"]
    jobs.work(store, once=True)
    assert store.current_version(project.id).model_kind == "hgb"


def test_retrain_requests_coalesce_into_one_waiting_job(store: Store, project: Project) -> None:
    first = actions.request_retrain(store, project.id, "ana")
    second = actions.request_retrain(store, project.id, "bob")
    assert first.id == second.id and len(store.open_jobs(project.id)) == 1
    after = [json.loads(a) for a in store.events(project.id).query("action == 'retrain_requested'")["after"]]
    assert [a["joined_waiting_request"] for a in after] == [False, True]


def test_policy_every_queues_a_retrain_after_a_decision(store: Store, project: Project) -> None:
    actions.change_settings(store, project.id, "lead", retrain_policy="every")
    key, given = _row(store, project)
    outcome = actions.record_decision(store, project.id, "bob", DecisionRequest(key, _other(project, given)))
    assert outcome.retrain is not None and outcome.retrain.status == "queued"
    jobs.work(store, once=True)
    current = store.current_version(project.id)
    assert current.version == 2 and current.last_decision_id == outcome.saved[0].id and current.n_human_labels == 1


def test_a_stale_retrain_is_stored_as_superseded_and_never_becomes_current(store: Store, project: Project) -> None:
    stale = loop.train_snapshot(store, project)  # starts before the corrections
    pool = store.pool_rows(project)
    requests = [DecisionRequest(str(k), _other(project, str(pool[1][k]))) for k in pool[0][:20]]
    actions.record_decisions(store, project.id, "ana", requests)
    newer = actions.retrain(store, project.id, "ana", trigger="manual")
    late = actions.record_version(store, project.id, stale, actor="worker", trigger="correction")
    assert newer.status == "current" and late.status == "superseded"
    assert "already includes decisions" in late.status_reason
    assert store.current_version(project.id).version == newer.version
    assert [v.status for v in store.model_versions(project.id)] == ["older", "current", "superseded"]


def test_labels_at_a_version_are_the_labels_it_was_trained_on(store: Store, project: Project) -> None:
    key, given = _row(store, project)
    new = _other(project, given)
    actions.record_decision(store, project.id, "ana", DecisionRequest(key, new))
    v2 = actions.retrain(store, project.id, "ana", trigger="manual")
    actions.record_decision(store, project.id, "ana", DecisionRequest(key, given))
    dataset, decisions = store.load_dataset(project), store.decisions(project.id)
    v1 = store.model_versions(project.id)[0]
    assert loop.labels_at(dataset, decisions, v1)[key] == given
    assert loop.labels_at(dataset, decisions, v2)[key] == new
    assert loop.effective_labels(dataset.labels, decisions)[key] == given


def test_creating_a_project_is_an_event(store: Store, project: Project) -> None:
    created = store.events(project.id).iloc[0]
    assert (created["actor"], created["action"]) == ("ana", "project_created")
    assert json.loads(created["after"])["rows"] == 178
    assert store.project(project.id).current_version == 1


def test_a_direct_retrain_after_a_worker_version_on_the_same_labels_becomes_current(store: Store,
                                                                                      project: Project) -> None:
    jobs.run_now(store, project.id, "ana")  # v2 by a job
    actions.change_settings(store, project.id, "lead", retrain_policy="manual")
    v3 = actions.retrain(store, project.id, "lead", trigger="manual")
    assert v3.status == "current" and store.current_version(project.id).version == 3


def test_a_project_whose_first_fit_fails_leaves_nothing_behind(store: Store, wine: Sample, wine_schema: Schema) -> None:
    one_class = wine.frame.assign(target="class_0")
    with pytest.raises(ValueError):
        actions.create_project(store, "ana", name="broken", source="test", frame=one_class, schema=wine_schema,
                               model_kind="logreg")
    assert store.projects() == [] and store.events().empty


def test_a_rollback_makes_the_earlier_version_current_and_predicts_exactly_as_it_did(store: Store,
                                                                                    project: Project) -> None:
    dataset = store.load_dataset(project)
    v1_before = store.load_model(project.id, 1).estimator.predict_proba(dataset.features)
    key, given = _row(store, project)
    actions.record_decision(store, project.id, "ana", DecisionRequest(key, _other(project, given)))
    actions.retrain(store, project.id, "ana", trigger="manual")
    rolled = actions.set_current_version(store, project.id, "lead", version=1, reason="v2 is worse on group b")
    assert rolled.status == "current" and store.current_version(project.id).version == 1
    after = store.load_model(project.id, store.current_version_number(project.id)).estimator.predict_proba(
        dataset.features)
    assert (after == v1_before).all()
    event = store.events(project.id).iloc[-1]
    assert (event["action"], event["actor"], event["note"]) == ("rollback", "lead", "v2 is worse on group b")
    assert json.loads(event["before"]) == {"current": 2} and json.loads(event["after"]) == {"current": 1}


def test_a_superseded_version_can_be_promoted_with_a_reason(store: Store, project: Project) -> None:
    stale = loop.train_snapshot(store, project)
    key, given = _row(store, project)
    actions.record_decision(store, project.id, "ana", DecisionRequest(key, _other(project, given)))
    actions.retrain(store, project.id, "ana", trigger="manual")
    late = actions.record_version(store, project.id, stale, actor="worker", trigger="correction")
    promoted = actions.set_current_version(store, project.id, "lead", version=late.version, reason="checked by hand")
    assert promoted.status == "current" and store.events(project.id).iloc[-1]["action"] == "promote"


@pytest.mark.parametrize("version, reason, message", [(9, "why", "has no version 9"), (1, "", "needs a reason"),
                                                      (1, "same", "already the current version")])
def test_a_rollback_needs_an_existing_other_version_and_a_reason(store: Store, project: Project, version: int,
                                                                 reason: str, message: str) -> None:
    with pytest.raises(actions.InvalidAction, match=message):
        actions.set_current_version(store, project.id, "lead", version=version, reason=reason)
