"""One database per test on each backend the app supports: a SQLite file, or a fresh PostgreSQL database.

The concurrency and crash tests run every scenario on both, because the two serialise writers
differently (SQLite: ``BEGIN IMMEDIATE`` on the whole file; PostgreSQL: ``SELECT ... FOR UPDATE`` on
the project row) and a bug in one is invisible in the other.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hitl_core import actions
from hitl_core.data import check
from hitl_core.records import Project
from hitl_core.samples import load_sample
from hitl_core.store import Store

from .postgres import DB_USER, PostgresServer, postgres_server

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throwaway server per test module that imports this (start-up ~1 s); skipped without
    PostgreSQL's binaries unless HITL_REQUIRE_PG=1, which turns the skip into an error."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database: a SQLite file in ``tmp_path``, or a new database on the shared server."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'hitl.db').as_posix()}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return new_database(server)


def new_database(server: PostgresServer) -> str:
    """Create an empty database on ``server``; each test gets its own, so ids and tables start clean."""
    name = f"hitl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host="127.0.0.1", port=server.port, user=DB_USER, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def create_project(store: Store, sample: str = "wine", *, model_kind: str = "logreg",
                   retrain_policy: str = "every") -> Project:
    """A project on a bundled sample through the one write path, version 1 trained."""
    s = load_sample(sample)
    schema, _ = check(s.frame, s.target, id_column=s.id_column, sensitive=s.sensitive, pii=s.pii)
    project, _ = actions.create_project(store, "ana", name=sample, source=f"sample:{sample}", frame=s.frame,
                                        schema=schema, model_kind=model_kind, retrain_policy=retrain_policy)
    return project
