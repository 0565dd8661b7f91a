"""Withdrawal of a data subject's rows: gone from the data, every row table, the audit trail, old model files and
the database file's bytes; the next version trains without them; only an admin may do it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import MetaData, func, select

from hitl_core import actions, complaints, export, jobs, loop, users, withdraw
from hitl_core.data import check
from hitl_core.records import DecisionRequest
from hitl_core.samples import load_sample
from hitl_core.store import Store
from tests.support.databases import database_url, pg_server  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]
PLANTED = "Zyxwv-Quarry-Welder"  # a job title only the withdrawn people have: a one-hot category in the model
SUBJECTS = ["subject-7f3a-0001", "subject-7f3a-0002", "subject-7f3a-0003"]


def _loan_with_subjects() -> tuple[pd.DataFrame, object]:
    """The loan sample with three people given distinctive IDs and an occupation nobody else has."""
    sample = load_sample("loan")
    frame = sample.frame.copy()
    frame["application_id"] = frame["application_id"].astype(str)
    labelled = frame.index[frame[sample.target].notna()][:40]
    chosen = labelled[[3, 17, 29]]
    frame.loc[chosen, "application_id"] = SUBJECTS
    frame.loc[chosen, "employment_type"] = PLANTED
    schema, _ = check(frame, sample.target, id_column=sample.id_column, sensitive=sample.sensitive, pii=sample.pii)
    return frame, schema


def _project(store: Store, *, name: str = "loan", actor: str = "ana"):
    frame, schema = _loan_with_subjects()
    project, _ = actions.create_project(store, actor, name=name, source="sample:loan", frame=frame, schema=schema,
                                        model_kind="logreg", retrain_policy="manual")
    return project


def _touch_every_table(store: Store, project) -> None:
    """Decisions, a complaint, its resolution, events and a second version, all about the subjects' rows."""
    pool_keys, given = store.pool_rows(project)
    in_pool = [k for k in SUBJECTS if k in pool_keys]
    assert in_pool, "the fixture needs a subject in the review pool"
    key = in_pool[0]
    other = "yes" if given[key] != "yes" else "no"
    actions.record_decisions(store, project.id, "ana", [DecisionRequest(
        row_key=key, new_label=other, note=f"called {key}, works as {PLANTED}")])
    complaint = actions.complain(store, project.id, "vic", key, f"I am {key} and the decision is wrong")
    actions.resolve_complaint(store, project.id, "ana", complaint.id, outcome="kept", reason=f"{PLANTED} rule holds")
    actions.complain(store, project.id, "vic", key, "still wrong")
    actions.retrain(store, project.id, "ana", trigger="manual")


def _row_records(store: Store, project_id: int, keys: list[str]) -> dict[str, int]:
    """Rows about ``keys`` in every table with project_id and row_key, read from the database itself."""
    metadata = MetaData()
    metadata.reflect(bind=store.engine)
    with store.engine.connect() as connection:
        return {t.name: connection.execute(select(func.count()).select_from(t).where(
            t.c.project_id == project_id, t.c.row_key.in_(keys))).scalar() for t in withdraw.row_tables(metadata)}


def test_after_withdrawal_no_byte_of_the_rows_remains_in_the_sqlite_file_or_its_wal(tmp_path: Path) -> None:
    db = tmp_path / "hitl.db"
    store = Store(f"sqlite:///{db.as_posix()}")
    project = _project(store)
    _touch_every_table(store, project)
    secrets = [PLANTED.encode(), *(k.encode() for k in SUBJECTS)]

    def raw() -> bytes:
        return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())

    assert all(s in raw() for s in secrets[:2])  # the check can fail: the values are there before

    done = actions.withdraw_rows(store, project.id, "ana", SUBJECTS, f"request by {SUBJECTS[0]}")

    assert done.compacted and done.n_rows == 3
    leftovers = [s for s in secrets if s in raw()]
    assert leftovers == [], f"found {leftovers} in the database file after the withdrawal"
    assert Path(f"{db}-wal").stat().st_size == 0 if Path(f"{db}-wal").exists() else True
    store.engine.dispose()


def test_the_next_version_trains_without_the_rows_and_is_current(store: Store) -> None:
    project = _project(store)
    _touch_every_table(store, project)
    before = store.current_version(project.id)
    data_before = store.load_dataset(project)
    in_train = [k for k in SUBJECTS if data_before.split[k] == "train"]

    done = actions.withdraw_rows(store, project.id, "ana", SUBJECTS, "data subject's request")

    project = store.project(project.id)
    data = store.load_dataset(project)
    assert not data.frame.index.isin(SUBJECTS).any() and not data.split.index.isin(SUBJECTS).any()
    assert len(data.frame) == len(data_before.frame) - 3
    assert PLANTED not in set(data.frame["employment_type"])
    current = store.current_version(project.id)
    assert current.version == done.new_versions[project.id] == before.version + 1
    assert current.n_train == before.n_train - len(in_train)  # every subject was labelled
    model = store.load_model(project.id, current.version)
    assert PLANTED not in " ".join(map(str, model.estimator[:-1].get_feature_names_out()))
    retrained = actions.retrain(store, project.id, "ana", trigger="manual")  # and the one after that too
    assert retrained.n_train == current.n_train
    assert store.decisions(project.id).empty and store.complaints(project.id) == []


def test_the_event_counts_the_withdrawal_but_names_no_row_or_value(store: Store) -> None:
    project = _project(store)
    _touch_every_table(store, project)
    actions.set_current_version(store, project.id, "ana", version=1, reason=f"{SUBJECTS[2]} complained; "
                                                                           f"{PLANTED}s look off, not {PLANTED}X")
    done = actions.withdraw_rows(store, project.id, "ana", SUBJECTS, f"{SUBJECTS[1]} asked on the phone")

    events = store.events(project.id)
    trail = events.to_json(date_format="iso")
    assert not any(s in trail for s in (PLANTED, *SUBJECTS))
    event = events[events["action"] == "withdrawal"].iloc[-1]
    after = json.loads(event["after"])
    assert event["actor"] == "ana" and after["withdrawn"] == 3
    assert after["records_deleted"] == 3  # a decision and two complaints
    assert event["note"] == f"{withdraw.REDACTED} asked on the phone"
    assert done.events_redacted == 1  # the rollback's reason: about the project, so kept, with the values redacted
    assert events.query("action == 'rollback'")["note"].tolist() == [
        f"{withdraw.REDACTED} complained; {withdraw.REDACTED}s look off, not {withdraw.REDACTED}X"]
    assert not (events["object"].str.startswith("row ") & events["object"].str[4:].isin(SUBJECTS)).any()
    labels = export.export(store, project.id, "labels")
    assert not labels["row_key"].isin(SUBJECTS).any()


def test_older_versions_lose_their_model_file_and_cannot_be_restored(store: Store) -> None:
    project = _project(store)
    _touch_every_table(store, project)
    done = actions.withdraw_rows(store, project.id, "ana", SUBJECTS, "request")

    assert done.dropped_versions[project.id] == [1, 2] and store.withdrawn_versions(project.id) == [1, 2]
    with pytest.raises(withdraw.ModelWithdrawn, match="dropped when rows were withdrawn"):
        store.load_model(project.id, 1)
    with pytest.raises(actions.InvalidAction, match="v1 cannot be made current: its model file was dropped"):
        actions.set_current_version(store, project.id, "ana", version=1, reason="go back")
    listed = {v.version: v for v in store.model_versions(project.id)}
    assert set(listed) == {1, 2, 3} and "model file dropped" in listed[1].status_reason
    assert listed[3].status == "current"


def test_a_project_sharing_the_stored_dataset_loses_the_rows_too(store: Store) -> None:
    first = _project(store, name="first")
    second = _project(store, name="second")
    assert first.dataset_hash == second.dataset_hash

    done = actions.withdraw_rows(store, first.id, "ana", SUBJECTS[:1], "request")

    assert done.project_ids == (first.id, second.id) and "shared one stored dataset" in done.message()
    for project in (store.project(first.id), store.project(second.id)):
        assert SUBJECTS[0] not in store.load_dataset(project).frame.index
        assert store.current_version(project.id).version == 2
    assert store.project(first.id).dataset_hash == store.project(second.id).dataset_hash != first.dataset_hash


def test_unknown_rows_are_refused_naming_them_and_nothing_changes(store: Store) -> None:
    project = _project(store)
    with pytest.raises(actions.InvalidAction, match="No row nobody-1 in this project's data"):
        actions.withdraw_rows(store, project.id, "ana", [SUBJECTS[0], "nobody-1"], "request")
    with pytest.raises(actions.InvalidAction, match="give at least one row key"):
        actions.withdraw_rows(store, project.id, "ana", [" "], "request")
    assert store.project(project.id).dataset_hash == project.dataset_hash
    assert store.current_version(project.id).version == 1


def test_only_an_admin_may_withdraw(store: Store) -> None:
    project = _project(store)
    actions.add_user(store, "local", name="root", role="admin")
    actions.add_user(store, "root", name="annie", role="annotator")
    with pytest.raises(users.PermissionDenied, match="permission denied: annotator may not withdraw"):
        actions.withdraw_rows(store, project.id, "annie", SUBJECTS, "request")
    assert SUBJECTS[0] in store.load_dataset(store.project(project.id)).frame.index
    assert actions.withdraw_rows(store, project.id, "root", SUBJECTS, "request").n_rows == 3


def test_cli_withdraw_exits_4_for_an_annotator_and_withdraws_for_an_admin(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'hitl.db').as_posix()}"
    store = Store(url)
    project = _project(store)
    actions.add_user(store, "local", name="root", role="admin")
    actions.add_user(store, "root", name="annie", role="annotator")
    store.engine.dispose()

    def cli(actor: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hitl_core", "withdraw", "--project", str(project.id),
                               "--row", SUBJECTS[0], "--row", SUBJECTS[1], "--db", url, "--as", actor], cwd=REPO,
                              capture_output=True, text=True, timeout=300,
                              env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin"})

    refused = cli("annie")
    assert refused.returncode == 4 and refused.stderr.strip() == "permission denied: annotator may not withdraw"
    done = cli("root")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows"] == 2 and result["compacted"] is True and SUBJECTS[0] not in done.stdout


def test_withdrawal_deletes_every_record_on_each_backend(database_url: str) -> None:  # noqa: F811
    store = Store(database_url)
    try:
        project = _project(store)
        _touch_every_table(store, project)
        assert sum(_row_records(store, project.id, SUBJECTS).values()) >= 3  # decisions and complaints exist

        actions.withdraw_rows(store, project.id, "ana", SUBJECTS, "request")

        assert _row_records(store, project.id, SUBJECTS) == {t: 0 for t in _row_records(store, project.id, SUBJECTS)}
        with store.engine.connect() as connection:
            datasets = connection.exec_driver_sql("SELECT hash FROM datasets").scalars().all()
        assert datasets == [store.project(project.id).dataset_hash]  # the old copy of the rows is gone
        trail = store.events(project.id).to_json(date_format="iso")
        trail += json.dumps([v.validation for v in store.model_versions(project.id)])
        assert not any(s in trail for s in (PLANTED, *SUBJECTS))
    finally:
        store.engine.dispose()


# --------------------------------------------------------------------------- the pure helpers
def test_vanishing_values_are_the_keys_and_the_categories_only_those_rows_have() -> None:
    frame, schema = _loan_with_subjects()
    frame.index = frame["application_id"].astype(str)
    values = withdraw.vanishing_values(frame, SUBJECTS, schema)
    assert PLANTED in values and set(SUBJECTS) <= set(values)
    assert not set(schema.classes) & set(values) and "full_time" not in values


def test_short_values_are_redacted_as_whole_tokens_and_long_ones_anywhere() -> None:
    secrets = withdraw.pattern(["12", "L-104", "Welder"])
    assert withdraw.redact("row 12 and L-104, not 120 or AL-1041; Welders", secrets) == \
        "row [withdrawn] and [withdrawn], not 120 or AL-1041; [withdrawn]s"
    assert withdraw.redact({"groups": ["12", 12, {"L-104": 1}]}, secrets) == \
        {"groups": ["[withdrawn]", 12, {"[withdrawn]": 1}]}


def test_values_are_searched_as_stored_text_and_json_escapes() -> None:
    assert withdraw.search_terms(["Zoë", "plain"]) == ["Zoë", "Zo\\u00eb", "plain"]
    assert json.dumps({"group": "Zoë"}).find(withdraw.search_terms(["Zoë"])[1]) > 0


def test_row_tables_are_found_from_the_schema_not_a_list(store: Store) -> None:
    metadata = MetaData()
    metadata.reflect(bind=store.engine)
    names = {t.name for t in withdraw.row_tables(metadata)}
    assert {"annotations", "complaints"} <= names and "events" not in names and "projects" not in names


def test_a_withdrawn_row_leaves_the_complaint_queue(store: Store) -> None:
    project = _project(store)
    keys, _ = store.pool_rows(project)
    key = next(k for k in SUBJECTS if k in keys)
    actions.complain(store, project.id, "vic", key, "wrong")
    actions.withdraw_rows(store, project.id, "ana", [key], "request")
    assert complaints.open_rows(store.complaints(project.id)) == []
    assert loop.effective_labels(store.load_dataset(store.project(project.id)).labels,
                                 store.decisions(project.id)).index.isin([key]).sum() == 0


def test_a_version_trained_on_the_old_rows_while_withdrawing_is_discarded(store: Store) -> None:
    project = _project(store)
    job = actions.request_retrain(store, project.id, "ana")
    claimed = jobs.claim(store, "worker-1")
    assert claimed is not None and claimed.id == job.id
    stale = loop.train_snapshot(store, store.project(project.id))  # the worker read the rows before they went

    done = actions.withdraw_rows(store, project.id, "ana", SUBJECTS, "request")

    assert actions.record_version(store, project.id, stale, actor="worker-1", trigger="correction", job=claimed,
                                  worker="worker-1") is None
    assert store.current_version(project.id).version == done.new_versions[project.id]
    assert [j.status for j in store.jobs(project.id)] == ["failed"]
    assert "withdrawn" in store.jobs(project.id)[0].error


def test_a_direct_retrain_on_the_old_rows_is_refused_after_a_withdrawal(store: Store) -> None:
    project = _project(store)
    stale = loop.train_snapshot(store, store.project(project.id))
    actions.withdraw_rows(store, project.id, "ana", SUBJECTS, "request")
    with pytest.raises(actions.InvalidAction, match="rows changed while this version trained"):
        actions.record_version(store, project.id, stale, actor="ana", trigger="manual",
                               trained_on=project.dataset_hash)
    assert store.current_version(project.id).version == 2
