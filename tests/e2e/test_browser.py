"""End to end in a real browser: Debian's chromium, driven by Playwright, against `streamlit run app.py` with a
retrain worker beside it (as scripts/start.sh runs it), from an empty database through a restart.
"""
from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from hitl_core.store import Store
from tests.e2e.ui import (
    choose_label, metric, new_page, open_page, open_row, other_label, panel_prediction, panel_row, save_button, settle,
    shot, tracebacks, wait_until,
)
from tests.support.server import streamlit_server


def test_first_start_review_loop_every_page_and_a_restart(tmp_path: Path, page: Page, browser: Browser):
    db = f"sqlite:///{tmp_path / 'hitl.db'}"
    env = {"HITL_DATABASE_URL": db, "HITL_DATA_DIR": str(tmp_path)}
    with streamlit_server(env=env, worker=True, log_dir=tmp_path / "logs") as url:
        open_page(page, f"{url}/data", "Data")  # first start: the app creates the demo project and trains v1
        expect(page.get_by_text("Current project: Loan approvals")).to_be_visible()
        shot(page, "01-data")

        open_page(page, f"{url}/review", "Review predictions")
        expect(save_button(page)).to_be_visible()
        shot(page, "02-review")
        store = Store(db)
        project = store.projects()[0]
        assert project.retrain_policy == "every"
        decided: set[str] = set()

        def undecided_row() -> str | None:
            key = open_row(page)
            return key if key not in decided else None

        def caught_up():
            current = store.current_version(project.id)
            return current if current.last_decision_id == store.last_decision_id(project.id) else None

        for done in range(1, 4):  # each save queues a retrain; the worker trains it and the page follows
            settle(page)
            key = wait_until(undecided_row, "an undecided row is open")
            choose_label(page, other_label(list(project.schema.classes), panel_prediction(page)))
            save_button(page).click()
            expect(panel_row(page)).not_to_have_text(f"Row {key}")
            expect(metric(page, "Reviewed by people")).to_have_text(str(done))
            decided.add(key)
            current = wait_until(caught_up, f"the worker's version includes decision {done}")
            expect(page.get_by_text(re.compile(rf"^Model v{current.version} ·"))).to_be_visible()  # no reload
        decisions = store.decisions(project.id)
        assert sorted(decisions["row_key"]) == sorted(decided)
        assert set(decisions["action"]) == {"override"}
        assert current.version == 4 and current.n_human_labels == 3
        shot(page, "03-review-after-corrections")

        pages = {  # page → (title, something it must show), each without a traceback
            "metrics": ("Metrics", "Validation metrics as human labels come in"),
            "versions": ("Versions", None),
            "explain": ("Explain the model", "Global importance (mean |SHAP|)"),
            "fairness": ("Fairness", None),  # its content depends on the favourable outcome being chosen
            "simulation": ("Simulation", "Run simulation"),
            "audit": ("Audit trail", "Decisions (3 of 3)"),
        }
        for number, (path, (title, shows)) in enumerate(pages.items(), start=4):
            open_page(page, f"{url}/{path}", title)
            if shows:
                expect(page.get_by_text(shows).first).to_be_visible()
            settle(page)
            expect(tracebacks(page)).to_have_count(0)
            shot(page, f"{number:02d}-{path}")
        store.engine.dispose()

    with streamlit_server(env=env, worker=True, log_dir=tmp_path / "logs-restart") as url:
        fresh = new_page(browser)  # a new session on a restarted server, opened by a deep link
        try:
            open_page(fresh, f"{url}/review", "Review predictions")
            expect(metric(fresh, "Reviewed by people")).to_have_text("3")
            expect(fresh.get_by_text(re.compile(rf"^Model v{current.version} ·"))).to_be_visible()
            expect(tracebacks(fresh)).to_have_count(0)
            shot(fresh, "10-review-after-restart")
        finally:
            fresh.context.close()
