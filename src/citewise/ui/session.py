"""Who is signed in: the API client and identity kept in Streamlit's session state.

The API's address comes from ``CITEWISE_UI__API_URL`` (set by `citewise ui`); the
credentials from ``CITEWISE_UI__API_KEY`` or the sign-in form. A page calls
`require_client` (or `require_admin`) first; it stops the page with a sentence
when nobody, or nobody allowed, is signed in.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from citewise.ui.client import ApiError, CitewiseClient

DEFAULT_API_URL = "http://127.0.0.1:8000"


def api_url() -> str:
    """The API's base URL (the environment of the UI process, else the local default)."""
    return os.environ.get("CITEWISE_UI__API_URL", DEFAULT_API_URL).rstrip("/")


def sign_in(api_key: str) -> str | None:
    """Check the key against the API and keep it for this browser session; an error or None."""
    client = CitewiseClient(api_url(), api_key)
    try:
        me = client.me()
    except ApiError as exc:
        client.close()
        return str(exc)
    sign_out()
    st.session_state["client"] = client
    st.session_state["me"] = me
    return None


def sign_out() -> None:
    """Forget the credentials and everything fetched with them."""
    client = st.session_state.get("client")
    if isinstance(client, CitewiseClient):
        client.close()
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current() -> tuple[CitewiseClient, dict[str, Any]] | None:
    """The signed-in client and identity, if any."""
    client = st.session_state.get("client")
    me = st.session_state.get("me")
    if isinstance(client, CitewiseClient) and isinstance(me, dict):
        return client, me
    return None


def require_client() -> tuple[CitewiseClient, dict[str, Any]]:
    """The signed-in client and identity; stops the page when nobody is signed in."""
    signed = current()
    if signed is None:
        st.info("Sign in with your Citewise API key to continue.")
        st.stop()
    return signed


def require_admin() -> tuple[CitewiseClient, dict[str, Any]]:
    """Like `require_client`, for administrator pages: a user key sees why it cannot."""
    client, me = require_client()
    if me.get("role") != "admin":
        st.warning(
            "This page is for administrators. Your key is a user key of tenant "
            f"“{me.get('tenant', '')}”; ask an administrator for access."
        )
        st.stop()
    return client, me


def show_error(error: ApiError) -> None:
    """Show an API failure as the sentence it carries."""
    st.error(str(error), icon=":material/error:")
