"""The Overview page: the landing page, sentences that follow the numbers, charts, downloads of the model card."""
from __future__ import annotations

import re

from hitl_core import actions, jobs
from hitl_core.store import Store
from tests.core import helpers


def _text(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_a_fresh_project_lands_on_the_overview_and_says_what_to_do_next(start_app, database_url):
    at = start_app(page=None)
    assert not at.exception, at.exception
    assert at.title[0].value.startswith("Overview")
    text = _text(at)
    assert "Nobody has reviewed a prediction yet" in text
    assert "No SMART goal yet" in text or "SMART goal" in text
    assert len(at.get("plotly_chart")) >= 2
    assert [b.label for b in at.get("download_button")] == ["Model card (HTML, opens offline)",
                                                             "Model card (Markdown)"]
