"""Sign in with an API key (or an OIDC access token)."""

from __future__ import annotations

import streamlit as st

from citewise.ui import session

st.title("Citewise")
st.write("Answers from your company's documents, with every claim cited.")

preset_error = st.session_state.get("sign_in_error")
if preset_error:
    st.error(preset_error)

with st.form("sign_in", border=True):
    api_key = st.text_input(
        "API key",
        type="password",
        placeholder="cw_…",
        help="Your administrator creates keys (`citewise keys create`, or the API keys page). "
        "Your tenant, role and groups come from the key.",
    )
    submitted = st.form_submit_button("Sign in", type="primary")

if submitted:
    if not api_key.strip():
        st.error("Enter your API key first.")
    else:
        error = session.sign_in(api_key)
        if error:
            st.error(error)
        else:
            st.rerun()
st.caption(f"API: {session.api_url()}")
