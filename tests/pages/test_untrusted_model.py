"""A model whose stored bytes were changed is refused on every page with a message, never run."""
from __future__ import annotations

import sqlite3

from hitl_core.store import Store


def _tamper(database_url: str) -> None:
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        blob = bytearray(connection.execute("SELECT model_blob FROM model_versions WHERE version = 1").fetchone()[0])
        blob[len(blob) // 2] ^= 0xFF
        connection.execute("UPDATE model_versions SET model_blob = ? WHERE version = 1", (bytes(blob),))


def test_a_tampered_model_is_refused_with_a_message_on_the_review_page(start_app, database_url) -> None:
    start_app()  # the demo project and its version 1
    Store(database_url).engine.dispose()
    _tamper(database_url)
    at = start_app()
    at.switch_page("pages/review.py").run()
    assert not at.exception
    assert any("sha256" in e.value and "Nothing in it was run" in e.value for e in at.error)
