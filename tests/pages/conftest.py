"""AppTest fixtures: each test gets its own SQLite file and empty Streamlit caches."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _clear_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    monkeypatch.setenv("HITL_DATABASE_URL", url)
    monkeypatch.setenv("HITL_DATA_DIR", str(tmp_path))
    _clear_caches()
    yield url
    _clear_caches()


@pytest.fixture
def start_app(database_url: str) -> Callable[[], AppTest]:
    """Start the app as a fresh server would: empty caches, state only from the database."""

    def start(page: str | None = "pages/data.py") -> AppTest:
        """``page``: where the session opens (these tests were written on the Data page; ``None``: the default
        page, Overview)."""
        _clear_caches()
        at = AppTest.from_file(APP, default_timeout=120)
        return (at.switch_page(page) if page else at).run()

    return start
