"""People: the accounts and their roles (admins), or how to turn sign-in on (local mode)."""
import pandas as pd
import streamlit as st

from hitl_core import actions, users
from hitl_ui import state

state.through_frame(__file__)
st.title("People")

if not state.accounts_on():
    st.info("Local mode: there is no login and the name in the sidebar is not verified. Add the first account "
            "(an admin) to make everyone sign in; you stay signed in as it.", icon=":material/lock_open:")
elif not users.can(state.role(), "manage users"):
    st.info(f"Only an admin manages accounts. You are signed in as **{state.user()}** ({state.role()}): "
            f"{users.ROLE_TEXT[state.role()]}.")
    st.stop()

accounts = state.store().users()
if accounts:
    st.dataframe(pd.DataFrame([{"name": u.name, "role": u.role, "can": users.ROLE_TEXT[u.role],
                                "password": "set" if u.has_password else "none (OIDC or CLI only)",
                                "added by": u.created_by, "added": u.created_at} for u in accounts]),
                 hide_index=True, width="stretch")

first = not accounts
with st.form("add_account", clear_on_submit=True):
    st.subheader("Add the first account (admin)" if first else "Add an account")
    name = st.text_input("Name (or the e-mail address people sign in with through OIDC)")
    role = "admin" if first else st.selectbox("Role", users.ROLES, index=2,
                                              format_func=lambda r: f"{r}: {users.ROLE_TEXT[r]}")
    password = st.text_input("Password (at least 8 characters; leave empty for OIDC-only accounts)", type="password")
    again = st.text_input("Password again", type="password")
    if st.form_submit_button("Add account", type="primary"):
        if password != again:
            st.error("The two passwords differ; type the same password twice.")
        elif first and not password:
            st.error("The first admin needs a password, or nobody could sign in to manage the others.")
        else:
            try:
                added = actions.add_user(state.store(), state.user(), name=name, role=role, password=password or None)
            except (actions.ActionError, users.PermissionDenied) as exc:
                st.error(str(exc))
            else:
                if first:
                    st.session_state[state.SIGNED_IN_KEY] = added.name  # the creator stays in, as that admin
                st.success(f"Added {added.name} ({added.role}).")
                st.rerun()

if accounts:
    with st.form("change_account"):
        st.subheader("Change a role or reset a password")
        name = st.selectbox("Account", [u.name for u in accounts])
        role = st.selectbox("New role", ["(keep)", *users.ROLES])
        password = st.text_input("New password (empty: keep)", type="password")
        if st.form_submit_button("Save"):
            try:
                changed = actions.set_user(state.store(), state.user(), name=name,
                                           role=None if role == "(keep)" else role, password=password or None)
            except (actions.ActionError, users.PermissionDenied) as exc:
                st.error(str(exc))
            else:
                st.success(f"{changed.name} is now {changed.role}.")
