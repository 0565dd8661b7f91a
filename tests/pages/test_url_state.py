"""Reload and shared links keep the project and the reviewer's name: both live in the URL."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from hitl_core import actions
from hitl_core.data import check
from hitl_core.samples import load_sample
from hitl_core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _second_project(database_url: str) -> int:
    store = Store(database_url)
    try:
        wine = load_sample("wine")
        schema, _ = check(wine.frame, wine.target)
        project, _ = actions.create_project(store, "ana", name="Wine second", source="sample:wine", frame=wine.frame,
                                            schema=schema, model_kind="logreg")
        return project.id
    finally:
        store.engine.dispose()


def _project_box(at: AppTest):
    return next(box for box in at.selectbox if box.label == "Project")


def _open(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def test_a_link_to_the_first_project_opens_it_although_a_newer_one_exists(start_app, database_url) -> None:
    start_app()  # the demo project, id 1
    newest = _second_project(database_url)
    at = _open({"project": "1"})
    assert not at.exception
    assert _project_box(at).value == 1 and newest == 2
    assert at.query_params["project"] == "1"


def test_without_a_project_in_the_link_the_newest_opens_and_the_url_names_it(start_app, database_url) -> None:
    start_app()
    newest = _second_project(database_url)
    at = _open({})
    assert _project_box(at).value == newest and at.query_params["project"] == str(newest)


def test_the_reviewers_name_comes_back_from_the_url(start_app) -> None:
    at = start_app()
    at.text_input(key="user_input").set_value("Dr. Ana").run()
    assert at.query_params["user"] == "Dr. Ana"
    reloaded = _open({"project": "1", "user": "Dr. Ana"})  # a reload: new session, same address
    assert reloaded.text_input(key="user_input").value == "Dr. Ana"


def test_choosing_another_project_in_the_sidebar_puts_it_in_the_url(start_app, database_url) -> None:
    start_app()
    _second_project(database_url)
    at = _open({"project": "2"})
    box = _project_box(at)
    box.set_value(1).run()
    assert at.query_params["project"] == "1"
