"""Citewise's web UI (Streamlit): sign in, then chat; administrators also manage documents.

A process of its own that talks to the API over HTTP only (`citewise.ui.client`);
it imports nothing else from Citewise. `citewise ui` starts it, and `citewise serve
--ui` starts it beside the API.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from citewise.ui import session

PAGES = Path(__file__).with_name("views")

st.set_page_config(page_title="Citewise", page_icon=":material/verified:", layout="wide")

if session.current() is None and not st.session_state.get("auto_tried"):
    st.session_state["auto_tried"] = True
    preset = os.environ.get("CITEWISE_UI__API_KEY", "")
    if preset:
        error = session.sign_in(preset)
        if error:
            st.session_state["sign_in_error"] = f"The configured API key could not sign in: {error}"

signed = session.current()
if signed is None:
    navigation = st.navigation(
        [st.Page(PAGES / "sign_in.py", title="Sign in", icon=":material/login:")]
    )
else:
    _client, me = signed
    sections = {
        "Chat": [st.Page(PAGES / "chat.py", title="Ask", icon=":material/chat:", default=True)]
    }
    if me.get("role") == "admin":
        sections["Administration"] = [
            st.Page(PAGES / "upload.py", title="Upload", icon=":material/upload_file:"),
            st.Page(PAGES / "documents.py", title="Documents", icon=":material/description:"),
            st.Page(PAGES / "keys.py", title="API keys", icon=":material/key:"),
            st.Page(PAGES / "stats.py", title="Statistics", icon=":material/monitoring:"),
            st.Page(PAGES / "evaluation.py", title="Evaluation", icon=":material/science:"),
        ]
    navigation = st.navigation(sections)
    with st.sidebar:
        st.caption(
            f"Signed in to **{me.get('tenant', '')}** as {me.get('user') or 'unknown user'} "
            f"({me.get('role', 'user')})"
        )
        if st.button("Sign out", icon=":material/logout:"):
            session.sign_out()
            st.session_state["auto_tried"] = True  # do not sign the preset key in again
            st.rerun()
navigation.run()
