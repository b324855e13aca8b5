"""API keys of the tenant: list, create (the secret shown once), revoke."""

from __future__ import annotations

import streamlit as st

from citewise.ui import session, tables
from citewise.ui.client import ApiError

client, me = session.require_admin()
tenant = str(me["tenant"])
own_prefix = str(me.get("credential") or "")

st.title("API keys")
st.caption(
    "Keys sign people and programs in to this tenant. A user key reads the documents of "
    "its groups; an admin key also manages documents and keys."
)

created = st.session_state.get("keys_created")
if isinstance(created, dict):
    with st.container(border=True):
        st.success(f"Key “{created.get('name') or created.get('prefix')}” created.")
        st.warning(
            "Copy the key now and keep it somewhere safe: it will not be shown again.",
            icon=":material/warning:",
        )
        st.code(str(created.get("key", "")), language=None)
        if st.button("I have stored it", key="keys_created_done"):
            st.session_state.pop("keys_created", None)
            st.rerun()

with st.expander("Create a key", expanded=not isinstance(created, dict), icon=":material/add:"):
    with st.form("create_key", clear_on_submit=True, border=False):
        name = st.text_input("Name", max_chars=200, placeholder="e.g. Jana's laptop, HR chatbot")
        role = st.radio(
            "Role",
            ["user", "admin"],
            horizontal=True,
            help="user: asks questions. admin: also uploads and deletes documents and "
            "manages keys.",
        )
        groups_text = st.text_input(
            "Groups",
            placeholder="e.g. hr, finance",
            help="Comma-separated ACL groups whose documents the key may read "
            "(documents without groups are readable by every key).",
        )
        create = st.form_submit_button("Create key", type="primary", icon=":material/key:")
    if create:
        try:
            new_key = client.create_key(
                tenant,
                name=name.strip(),
                role=str(role),
                groups=tables.parse_groups(groups_text),
            )
        except ApiError as exc:
            session.show_error(exc)
        else:
            st.session_state["keys_created"] = new_key
            st.rerun()

try:
    with st.spinner("Loading keys…"):
        keys = client.keys(tenant)
except ApiError as exc:
    session.show_error(exc)
    st.stop()

show_revoked = st.toggle("Show revoked keys", key="keys_show_revoked")
listed = [k for k in keys if show_revoked or not k.get("revoked_at")]
if not listed:
    st.info("No keys yet: create one above.")
    st.stop()
st.dataframe(tables.key_rows(listed, own_prefix), hide_index=True, width="stretch")

active = {str(k["prefix"]): k for k in keys if not k.get("revoked_at")}
if not active:
    st.stop()

st.subheader("Revoke a key")
prefix = st.selectbox(
    "Key",
    list(active),
    index=None,
    key="keys_revoke_choice",
    placeholder="Choose a key to revoke",
    format_func=lambda p: tables.key_label(active[p]),
)
if prefix is not None:
    if prefix == own_prefix:
        st.warning("This is the key you are signed in with: revoking it signs you out.")
    st.write(
        f"Revoking **{tables.key_label(active[prefix])}** refuses its next request at once. "
        "It cannot be undone; create a new key instead."
    )
    if st.button("Revoke", type="primary", icon=":material/block:", key="keys_revoke"):
        try:
            client.revoke_key(tenant, prefix)
        except ApiError as exc:
            session.show_error(exc)
        else:
            st.session_state.pop("keys_revoke_choice", None)
            if prefix == own_prefix:
                session.sign_out()
            st.toast(f"Key {prefix} revoked.", icon=":material/block:")
            st.rerun()
