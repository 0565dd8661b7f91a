"""Fixtures shared by the hitl_core tests: small bundled samples and a SQLite store in a temp folder."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hitl_core.data import Schema, check
from hitl_core.samples import Sample, load_sample
from hitl_core.store import Store


@pytest.fixture(scope="session")
def wine() -> Sample:
    """178 rows, three classes, numeric only: the smallest multiclass sample (do not mutate its frame)."""
    return load_sample("wine")


@pytest.fixture(scope="session")
def wine_schema(wine: Sample) -> Schema:
    return check(wine.frame, wine.target)[0]


@pytest.fixture(scope="session")
def loan() -> Sample:
    """2,400 synthetic loan rows with pending (unlabeled) ones, categoricals and an ID column."""
    return load_sample("loan")


@pytest.fixture(scope="session")
def loan_schema(loan: Sample) -> Schema:
    return check(loan.frame, loan.target, id_column=loan.id_column, sensitive=loan.sensitive, pii=loan.pii)[0]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'hitl.db').as_posix()}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    yield store
    store.engine.dispose()
