"""Who is at the keyboard: the sign-in form when accounts exist, the name box in local mode."""
from __future__ import annotations

import time

import streamlit as st

from hitl_core import users
from hitl_ui import state
from hitl_ui.text import md_escape

MAX_FAILURES = 5
LOCKOUT_SECONDS = 60


def required() -> bool:
    """With accounts in the database, the only page until the person signs in is :func:`page`."""
    return state.accounts_on() and state.signed_in() is None


def stand_ins(pages: list) -> list:
    """The sign-in form under every page's address, so a link to /review still opens Review after sign-in
    (``pages[0]`` is the app's default page)."""
    return [st.Page(page, title="Sign in", icon=":material/login:", default=not i,
                    url_path=None if not i else real.url_path) for i, real in enumerate(pages)]


def page() -> None:
    """The sign-in page: a password form, and "Sign in with …" when OIDC is configured."""
    with st.columns([1, 2, 1])[1]:  # a form-sized column, not a bar across a projector
        _sign_in_form()


def _sign_in_form() -> None:
    st.title("Sign in to HITL Workbench")
    st.caption("This workbench has accounts: every decision is stored under the account that made it.")
    if state.oidc_configured():
        st.button("Sign in with your organisation's account", on_click=st.login, type="primary",
                  icon=":material/login:")
        st.caption("Your organisation's account must also be added here by an admin "
                   "(`python -m hitl_core users add EMAIL --role …`).")
        if st.user.get("is_logged_in", False):
            st.error(md_escape(f"{st.user.get('email') or st.user.get('name')} has no account on this workbench "
                               "yet: ask an admin to add it."))
    failures, until = st.session_state.get("_sign_in_failures", (0, 0.0))
    with st.form("sign_in"):
        name = st.text_input("Name", key="sign_in_name")  # keyed: the same widget on every page's run
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if time.time() < until:
            st.error(f"Too many wrong passwords: wait {int(until - time.time()) + 1} s and try again.")
        elif state.sign_in(name, password):
            st.session_state.pop("_sign_in_failures", None)
            st.rerun()
        else:
            failures += 1
            locked = time.time() + LOCKOUT_SECONDS if failures >= MAX_FAILURES else 0.0
            st.session_state["_sign_in_failures"] = (0 if locked else failures, locked)
            st.error("That name and password do not match an account. Names are case-sensitive; an admin can "
                     "reset a password with `python -m hitl_core users set NAME --password-stdin`.")


def sidebar_identity() -> None:
    """The signed-in account and its role, or (local mode) the name box with a plain word that it is unverified."""
    if state.accounts_on():
        role = state.role()
        st.markdown(f"Signed in as **{md_escape(state.user())}** · {role}")
        st.caption(users.ROLE_TEXT.get(role or "", ""))
        st.button("Sign out", on_click=state.sign_out, icon=":material/logout:")
        return
    st.text_input("Your name", value=state.user(), key="user_input", on_change=state.remember_user,
                  help="Stored with every decision you make (the audit trail); kept in the address, so a reload "
                       "keeps it.")
    st.caption("Local mode: no login, names are not verified. Add an account "
               "(`python -m hitl_core users add NAME --role admin`) and the app asks everyone to sign in.")
