"""New data batches: a bad batch is refused with a message and nothing written, a good one joins the pool,
is scored, queued, tagged and trains the next version; drift and the override rate per batch."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hitl_core import actions, active, batches, jobs, loop
from hitl_core.actions import InvalidAction
from hitl_core.data import DataError, Dataset, check
from hitl_core.records import Batch, DecisionRequest, Project
from hitl_core.samples import load_sample
from hitl_core.store import DatasetRow, Store
from hitl_core.users import PermissionDenied
from tests.core.helpers import pool
from tests.support.databases import database_url, pg_server  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]
N_BASE = 2000  # loan rows the project starts with; the other 400 arrive as a batch
ACTOR = "ana"


@pytest.fixture(scope="module")
def loan_frame() -> pd.DataFrame:
    return load_sample("loan").frame


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:  # noqa: F811 (the fixture imported above)
    store = Store(database_url)
    yield store
    store.engine.dispose()


def start_loan(store: Store, frame: pd.DataFrame, **settings) -> Project:
    """A logistic-regression project on the first ``N_BASE`` loan rows, version 1 trained."""
    sample = load_sample("loan")
    schema, _ = check(frame, sample.target, id_column=sample.id_column, sensitive=sample.sensitive, pii=sample.pii)
    project, _ = actions.create_project(store, ACTOR, name="loan", source="sample:loan", frame=frame.iloc[:N_BASE],
                                        schema=schema, model_kind="logreg", **settings)
    return project


def new_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The loan rows the project has not seen, unlabeled (no target column), as a file would bring them."""
    return frame.iloc[N_BASE:].drop(columns=["approved"]).reset_index(drop=True)


def _written(store: Store, project_id: int) -> tuple:
    """Everything a batch would change: the project's dataset, its batches, tags and events."""
    project = store.project(project_id)
    return (project.dataset_hash, store.batches(project_id), len(store.batch_rows(project_id)),
            len(store.events(project_id)), len(store.load_dataset(project).frame))


BAD_BATCHES = {
    "missing column": (lambda f: f.drop(columns=["income"]), "lacks column(s) 'income'"),
    "extra column": (lambda f: f.assign(notes="x"), "has column(s) 'notes' that the project's data does not"),
    "text in a number column": (lambda f: f.assign(income=f["income"].astype(object).where(f.index != 3, "lots")),
                                "Column 'income' should hold numbers"),
    "ids the project has": (lambda f: f.assign(application_id=[*f["application_id"].iloc[:-1], 100874]),
                            "1 row(s) of the batch have IDs the project already has"),
    "repeated ids": (lambda f: f.assign(application_id=[*f["application_id"].iloc[:-1], f["application_id"].iloc[0]]),
                     "repeats ID(s)"),
    "unknown class": (lambda f: f.assign(approved=["maybe", *[None] * (len(f) - 1)]), "not a class of this project"),
    "empty file": (lambda f: f.iloc[:0], "The batch has no rows"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_a_bad_batch_is_refused_with_a_message_and_nothing_is_written(store: Store, loan_frame: pd.DataFrame,
                                                                      case: str) -> None:
    project = start_loan(store, loan_frame)
    assert "100874" in store.load_dataset(project).frame.index  # the ID the "ids the project has" case reuses
    make, message = BAD_BATCHES[case]
    before = _written(store, project.id)
    with pytest.raises(InvalidAction, match=re.escape(message)):
        actions.add_batch(store, project.id, ACTOR, make(new_rows(loan_frame)), source="bad.csv")
    assert _written(store, project.id) == before


def test_a_good_batch_joins_the_pool_scored_queued_and_tagged(store: Store, loan_frame: pd.DataFrame) -> None:
    project = start_loan(store, loan_frame)
    old, old_hash = store.load_dataset(project), project.dataset_hash
    batch = actions.add_batch(store, project.id, ACTOR, new_rows(loan_frame), source="april.csv")
    keys = pd.Index(loan_frame["application_id"].iloc[N_BASE:].astype(str))
    assert (batch.number, batch.n_rows, batch.source, batch.created_by) == (1, 400, "april.csv", ACTOR)

    project = store.project(project.id)
    data = store.load_dataset(project)
    assert project.dataset_hash != old_hash and not store.has_dataset(old_hash) and len(data.frame) == 2400
    assert data.split.loc[old.split.index].equals(old.split)  # the old split is unchanged
    assert (data.split.loc[keys] == "train").all() and data.labels.loc[keys].isna().all()
    scored = pool(store, project)  # the current model's view of the review pool
    assert keys.isin(scored.index).all() and scored.loc[keys, "confidence"].between(0, 1).all()
    ranked = active.rank_pool("least_confident", scored[[f"p({c})" for c in project.schema.classes]],
                              labels=scored["label"], batch_size=len(scored), seed=0)
    assert ranked.loc[keys, "rank"].notna().all()  # every new row is in the queue
    assert store.batch_rows(project.id).loc[keys].eq(1).all()
    event = store.events(project.id).iloc[-1]
    assert event["action"] == "batch_added" and json.loads(event["after"])["new_rows"] == 400


def test_the_replaced_dataset_is_deleted_unless_another_project_uses_it(store: Store,
                                                                         loan_frame: pd.DataFrame) -> None:
    first, second = start_loan(store, loan_frame), start_loan(store, loan_frame)
    shared = first.dataset_hash
    assert second.dataset_hash == shared  # same content: one stored dataset
    actions.add_batch(store, first.id, ACTOR, new_rows(loan_frame), source="a.csv")
    assert store.has_dataset(shared) and len(store.load_dataset(store.project(second.id)).frame) == N_BASE
    actions.add_batch(store, second.id, ACTOR, new_rows(loan_frame), source="b.csv")
    assert not store.has_dataset(shared)
    with store._read() as session:  # noqa: SLF001 - the table itself, to see nothing is left behind
        assert session.query(DatasetRow).count() == 1  # both projects now hold the same rows and split


def test_a_label_on_a_batch_row_trains_the_next_version(store: Store, loan_frame: pd.DataFrame) -> None:
    project = start_loan(store, loan_frame, retrain_policy="manual")
    v1 = store.current_version(project.id)
    actions.add_batch(store, project.id, ACTOR, new_rows(loan_frame), source="april.csv")
    key = str(loan_frame["application_id"].iloc[N_BASE + 7])
    row = pool(store, store.project(project.id)).loc[key]
    actions.record_decision(store, project.id, ACTOR, DecisionRequest(
        key, "no", expected=None, predicted_label=row["predicted"], confidence=row["confidence"], model_version=1))
    v2 = jobs.run_now(store, project.id, ACTOR)
    assert v2.version == 2 and v2.status == "current" and v2.n_train == v1.n_train + 1
    data = store.load_dataset(store.project(project.id))
    labels = loop.labels_at(data, store.decisions(project.id), v2)
    training_rows = labels.loc[data.rows("train")].dropna()
    assert training_rows.loc[key] == "no"


def test_rows_without_an_id_column_get_keys_after_the_highest_one(wine) -> None:
    schema, _ = check(wine.frame, wine.target)
    dataset = Dataset.create("wine", wine.frame.iloc[:150], schema)
    rows = batches.conform(dataset, wine.frame.iloc[150:].drop(columns=[wine.target]))
    assert list(rows.index[:2]) == ["150", "151"] and rows[wine.target].isna().all()
    frame, split = batches.appended(dataset, rows)
    assert frame.index.is_unique and len(frame) == 178 and (split.loc[rows.index] == "train").all()
    assert (frame.dtypes == dataset.frame.dtypes).all()


def test_labelled_batch_rows_keep_their_labels_and_text_codes_stay_text(loan_frame: pd.DataFrame) -> None:
    sample = load_sample("loan")
    schema, _ = check(loan_frame, sample.target, id_column=sample.id_column, pii=sample.pii)
    dataset = Dataset.create("loan", loan_frame.iloc[:N_BASE], schema)
    incoming = loan_frame.iloc[N_BASE:].reset_index(drop=True).assign(group=7)  # a code a file reads as a number
    rows = batches.conform(dataset, incoming)
    assert rows["group"].iloc[0] == "7" and rows["group"].dtype == dataset.frame["group"].dtype
    assert rows[schema.target].equals(loan_frame[schema.target].iloc[N_BASE:].set_axis(rows.index))


def _shifted(frame: pd.DataFrame) -> pd.DataFrame:
    return new_rows(frame).assign(income=lambda f: f["income"] * 3)


def test_drift_on_a_shifted_batch_flags_that_column_and_not_an_unchanged_one(store: Store,
                                                                              loan_frame: pd.DataFrame) -> None:
    project = start_loan(store, loan_frame)
    batch = actions.add_batch(store, project.id, ACTOR, _shifted(loan_frame), source="shifted.csv")
    assert batch.drifted == ["income"]
    assert batch.drift["features"]["income"]["psi"] > 1 and batch.drift["features"]["income"]["p_value"] < 1e-6
    assert not batch.drift["features"]["age"]["drifted"]
    assert batch.drift["n_reference"] == int((store.load_dataset(store.project(project.id)).split == "train").sum()
                                             - 400)
    assert batch.drift["prediction_shift"]["version"] == 1
    assert set(batch.drift["prediction_shift"]["classes"]) == {"no", "yes"}
    sentence = batches.drift_sentence(store.batches(project.id)[0])
    assert sentence.startswith("income drifted in batch 1 (PSI ")
    table = batches.drift_table(store.batches(project.id))
    assert set(table.loc[table["drifted"], "feature"]) == {"income"} and len(table) == len(project.schema.features)


def test_the_sentence_names_several_drifted_features_largest_first() -> None:
    features = {"age": {"psi": 0.27, "p_value": 0.001, "drifted": True},
                "income": {"psi": 0.41, "p_value": 1e-9, "drifted": True},
                "score": {"psi": 0.02, "p_value": 0.5, "drifted": False}}
    batch = Batch(1, 1, 3, "x.csv", 10, "ana", pd.Timestamp.now(tz="UTC"),
                  {"features": features, "drifted": ["income", "age"]})
    assert batches.drift_sentence(batch) == "income and age drifted in batch 3 (PSI 0.41, 0.27)."
    quiet = Batch(2, 1, 4, "y.csv", 10, "ana", pd.Timestamp.now(tz="UTC"),
                  {"features": {"score": features["score"]}, "drifted": []})
    assert batches.drift_sentence(quiet) == "No feature drifted in batch 4 (largest PSI 0.02, score)."


def test_override_rate_counts_the_reviewed_rows_of_each_batch_whose_prediction_was_changed() -> None:
    decisions = pd.DataFrame({
        "id": [1, 2, 3, 4, 5, 6],
        "row_key": ["a", "b", "b", "c", "d", "e"],
        "action": ["override", "override", "accept", "accept", "override", "override"],
        "new_label": ["yes", "yes", "no", "no", "yes", "no"],
        "predicted_label": ["no", "no", "no", "no", None, "no"],
    })
    batch_of = pd.Series({"b": 1, "c": 1, "d": 1, "e": 2})
    rates = batches.override_rates(decisions, batch_of, [0, 1, 2, 3])
    # batch 0: a changed (1/1); batch 1: b re-decided to the prediction, c accepted, d overridden without a
    # prediction (counted by its action): 1/3; batch 2: e kept the prediction: 0/1; batch 3: nobody reviewed
    assert list(rates["reviewed"]) == [1, 3, 1, 0] and list(rates["overridden"]) == [1, 1, 0, 0]
    assert rates["override_rate"].iloc[:3].tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    assert np.isnan(rates["override_rate"].iloc[3])


def test_monitoring_frame_has_each_batch_with_shares_confidence_and_overrides(store: Store,
                                                                             loan_frame: pd.DataFrame) -> None:
    project = start_loan(store, loan_frame, retrain_policy="manual")
    actions.add_batch(store, project.id, ACTOR, new_rows(loan_frame).iloc[:200], source="may.csv")
    actions.add_batch(store, project.id, ACTOR, _shifted(loan_frame).iloc[200:], source="june.csv")
    project = store.project(project.id)
    scored = pool(store, project)
    batch_of = store.batch_rows(project.id)
    for key in batch_of[batch_of == 2].index[:4]:  # override the model on 4 rows of batch 2
        row = scored.loc[key]
        flipped = "no" if row["predicted"] == "yes" else "yes"
        actions.record_decision(store, project.id, ACTOR, DecisionRequest(
            key, flipped, expected=None, predicted_label=row["predicted"], model_version=1))
    key = batch_of[batch_of == 1].index[0]  # and accept it on one row of batch 1
    actions.record_decision(store, project.id, ACTOR, DecisionRequest(
        key, scored.loc[key, "predicted"], expected=None, predicted_label=scored.loc[key, "predicted"]))
    frame = batches.monitoring_frame(store.batches(project.id), batch_of, scored, store.decisions(project.id),
                                     project.schema.classes)
    assert list(frame.index) == [0, 1, 2] and list(frame["rows"].iloc[1:]) == [200, 200]
    assert frame["rows"].sum() == len(scored)
    assert np.allclose(frame[["share(no)", "share(yes)"]].sum(axis=1), 1.0)
    assert list(frame["override_rate"].iloc[1:]) == [0.0, 1.0] and np.isnan(frame["override_rate"].iloc[0])
    assert list(frame["drifted"].iloc[1:]) == [0, 1] and frame["source"].iloc[2] == "june.csv"
    figure = batches.batch_lines(frame, project.schema.classes)
    assert [t.name for t in figure.data][-1] == "override rate"
    heat = batches.psi_heatmap(batches.drift_table(store.batches(project.id)), threshold=0.1)
    assert heat.data[0].y[-1] == "income"  # largest PSI on top


def test_a_viewer_may_not_add_data(store: Store, loan_frame: pd.DataFrame) -> None:
    project = start_loan(store, loan_frame)
    actions.add_user(store, "local", name="root", role="admin")
    actions.add_user(store, "root", name="vic", role="viewer")
    before = _written(store, project.id)
    with pytest.raises(PermissionDenied, match="viewer may not add data"):
        actions.add_batch(store, project.id, "vic", new_rows(loan_frame), source="x.csv")
    assert _written(store, project.id) == before


def _cli(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hitl_core", *args, "--db", db], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                                                       "PATH": "/usr/bin:/bin"})


def test_cli_batch_add_exits_2_on_a_bad_file_and_adds_a_good_one(tmp_path: Path, loan_frame: pd.DataFrame) -> None:
    db = f"sqlite:///{tmp_path / 'hitl.db'}"
    store = Store(db)
    try:
        project = start_loan(store, loan_frame)
    finally:
        store.engine.dispose()
    new_rows(loan_frame).drop(columns=["age"]).to_csv(tmp_path / "bad.csv", index=False)
    new_rows(loan_frame).to_csv(tmp_path / "good.csv", index=False)
    bad = _cli("batch", "add", "--project", str(project.id), str(tmp_path / "bad.csv"), db=db)
    assert bad.returncode == 2 and "lacks column(s) 'age'" in bad.stderr and bad.stdout == ""
    good = _cli("batch", "add", "--project", str(project.id), str(tmp_path / "good.csv"), db=db)
    assert good.returncode == 0, good.stderr
    result = json.loads(good.stdout)
    assert (result["batch"], result["rows"], result["drifted"]) == (1, 400, [])
    assert result["sentence"].startswith("No feature drifted in batch 1")


def test_conform_refuses_an_empty_id(loan_frame: pd.DataFrame) -> None:
    sample = load_sample("loan")
    schema, _ = check(loan_frame, sample.target, id_column=sample.id_column, pii=sample.pii)
    dataset = Dataset.create("loan", loan_frame.iloc[:N_BASE], schema)
    incoming = new_rows(loan_frame).astype({"application_id": float})
    incoming.loc[2, "application_id"] = np.nan
    with pytest.raises(DataError, match="empty in row 3"):
        batches.conform(dataset, incoming)
