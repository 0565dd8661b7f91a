"""Sign-in: local mode says it has no login; one account makes every session sign in, and the role is enforced."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from hitl_core import actions
from hitl_core.store import Store
from tests.pages.conftest import APP


def _accounts(database_url: str) -> None:
    store = Store(database_url)
    try:
        actions.add_user(store, "local", name="root", role="admin", password="root password")
        actions.add_user(store, "root", name="ann", role="annotator", password="ann password")
    finally:
        store.engine.dispose()


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    boxes = {box.label: box for box in at.text_input}
    boxes["Name"].input(name)
    boxes["Password"].input(password)
    return at.get("form_submit_button")[0].click().run()


def test_local_mode_has_a_name_box_and_says_there_is_no_login(start_app) -> None:
    at = start_app()
    assert [box.label for box in at.sidebar.text_input] == ["Your name"]
    assert any("Local mode: no login" in c.value for c in at.sidebar.caption)


def test_with_accounts_nothing_runs_before_a_sign_in(start_app, database_url) -> None:
    start_app()  # the demo project, made in local mode
    _accounts(database_url)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert at.title[0].value == "Sign in to HITL Workbench"
    assert not [box for box in at.selectbox if box.label == "Project"]  # no project, no page behind the form
    at = _sign_in(at, "ann", "wrong password")
    assert "do not match an account" in at.error[0].value
    at = _sign_in(at, "ann", "ann password")
    assert not at.error
    assert any("Signed in as **ann** · annotator" in m.value for m in at.sidebar.markdown)
    assert [box.label for box in at.sidebar.text_input] == []  # the name comes from the account, not a box


def test_an_annotator_cannot_manage_people_and_an_admin_can(start_app, database_url) -> None:
    start_app()
    _accounts(database_url)
    at = _sign_in(AppTest.from_file(APP, default_timeout=120).run(), "ann", "ann password")
    at = at.switch_page("pages/people.py").run()
    assert "Only an admin manages accounts" in at.info[0].value and not at.get("form")
    at = _sign_in(AppTest.from_file(APP, default_timeout=120).run(), "root", "root password")
    at = at.switch_page("pages/people.py").run()
    assert {row for row in at.dataframe[0].value["name"]} == {"ann", "root"}


def test_the_first_account_made_on_the_people_page_keeps_its_maker_signed_in(start_app, database_url) -> None:
    at = start_app("pages/people.py")
    assert "Local mode" in at.info[0].value
    boxes = {box.label.split(" (")[0]: box for box in at.text_input}
    boxes["Name"].input("root")
    boxes["Password"].input("a long password")
    boxes["Password again"].input("a long password")
    at = at.get("form_submit_button")[0].click().run()
    store = Store(database_url)
    try:
        assert [(u.name, u.role) for u in store.users()] == [("root", "admin")]
    finally:
        store.engine.dispose()
    assert at.session_state["signed_in"] == "root"  # (AppTest drops the sidebar after a page switch)
    assert list(at.dataframe[0].value["name"]) == ["root"] and not at.info  # the admin's view of the page


def test_with_auth_configured_the_form_offers_the_organisations_sign_in(start_app, database_url) -> None:
    start_app()
    _accounts(database_url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "hitl", "client_secret": "secret",
                          "server_metadata_url": "https://id.example.org/.well-known/openid-configuration"}
    at.run()
    assert "Sign in with your organisation's account" in [b.label for b in at.button]
    assert any("must also be added here by an admin" in c.value for c in at.caption)
