"""Small builders shared by the store and loop tests (SQLite and PostgreSQL run the same scenarios)."""
from __future__ import annotations

import pandas as pd

from hitl_core import actions, loop
from hitl_core.data import Dataset, Schema, content_hash
from hitl_core.records import DecisionRequest, ModelVersion, Project
from hitl_core.samples import Sample
from hitl_core.store import Store

ACTOR = "ana"


def start_wine(store: Store, wine: Sample, schema: Schema, **settings) -> tuple[Project, ModelVersion]:
    """A logistic-regression project on the wine sample, version 1 trained, created by ``ACTOR``."""
    settings = {"model_kind": "logreg", **settings}
    return actions.create_project(store, ACTOR, name="wine", source="sample:wine", frame=wine.frame, schema=schema,
                                  **settings)


def bare_project(store: Store, name: str, frame: pd.DataFrame, schema: Schema, *, seed: int = 0) -> Project:
    """A stored dataset and a project row with no model version yet (what a failed first fit leaves behind)."""
    dataset = Dataset.create(name, frame, schema, seed=seed)
    dataset_hash = store.save_dataset(dataset, content_hash(dataset.frame))
    with store.write() as tx:
        return tx.add_project(name=name, dataset_hash=dataset_hash, source=f"sample:{name}", schema=schema,
                              model_kind="logreg", seed=seed)


def pool(store: Store, project: Project) -> pd.DataFrame:
    """The review pool as the project's current model sees it."""
    current = store.current_version(project.id)
    assert current is not None
    model = store.load_model(project.id, current.version)
    return loop.pool_predictions(model, store.load_dataset(project), store.decisions(project.id))


def corrections(store: Store, project: Project, n: int, *, skip: int = 0) -> list[DecisionRequest]:
    """Override ``n`` pool rows with a class other than the predicted one, expecting the labels shown."""
    rows = pool(store, project).iloc[skip:skip + n]
    classes = project.schema.classes
    new = pd.Series([classes[(classes.index(p) + 1) % len(classes)] for p in rows["predicted"]], index=rows.index)
    current = store.current_version(project.id)
    return loop.decisions_for(rows, new_labels=new, model_version=current.version if current else None)
