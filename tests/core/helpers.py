"""Small builders shared by the store and loop tests (SQLite and PostgreSQL run the same scenarios)."""
from __future__ import annotations

import pandas as pd

from hitl_core import loop
from hitl_core.data import Schema
from hitl_core.records import Decision, ModelVersion, Project
from hitl_core.samples import Sample
from hitl_core.store import Store


def start_wine(store: Store, wine: Sample, schema: Schema, **settings) -> tuple[Project, ModelVersion]:
    """A logistic-regression project on the wine sample, version 1 trained."""
    settings = {"model_kind": "logreg", **settings}
    return loop.start_project(store, name="wine", source="sample:wine", frame=wine.frame, schema=schema, **settings)


def pool(store: Store, project: Project) -> pd.DataFrame:
    """The review pool as the latest model sees it."""
    latest = store.latest_version(project.id)
    assert latest is not None
    model = store.load_model(project.id, latest.version)
    return loop.pool_predictions(model, store.load_dataset(project), store.decisions(project.id))


def corrections(store: Store, project: Project, n: int, *, user: str = "ana", skip: int = 0) -> list[Decision]:
    """Override ``n`` pool rows with a class other than the predicted one."""
    rows = pool(store, project).iloc[skip:skip + n]
    classes = project.schema.classes
    new = pd.Series([classes[(classes.index(p) + 1) % len(classes)] for p in rows["predicted"]], index=rows.index)
    latest = store.latest_version(project.id)
    return loop.decisions_for(rows, new_labels=new, user=user, model_version=latest.version if latest else None)
