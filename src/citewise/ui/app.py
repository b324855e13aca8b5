"""Citewise chat page (Streamlit). A first version: ask a question, read the cited answer.

This is a process of its own and talks to the API over HTTP only; it imports
nothing from the rest of Citewise. The full chat and admin UI comes later.
"""

from __future__ import annotations

import os

import httpx
import streamlit as st

API_URL = os.environ.get("CITEWISE_UI__API_URL", "http://127.0.0.1:8000")
API_KEY = os.environ.get("CITEWISE_UI__API_KEY", "")

st.set_page_config(page_title="Citewise", page_icon="📎")
st.title("Citewise")
st.caption("Answers from your documents, every claim cited.")

api_key = API_KEY or st.sidebar.text_input(
    "API key",
    type="password",
    help="A user key of your tenant (`citewise keys create --role user`); "
    "your tenant and groups come from it.",
)
use_llm = st.sidebar.toggle("Use the language model", value=True)

question = st.chat_input("Ask a question about your documents")
if question and not api_key:
    st.warning("Paste an API key in the sidebar first.")
elif question:
    st.chat_message("user").write(question)
    with st.chat_message("assistant"), st.spinner("Searching your documents..."):
        try:
            response = httpx.post(
                f"{API_URL}/v1/ask",
                json={"question": question, "use_llm": use_llm},
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=300,
            )
        except httpx.HTTPError as exc:
            st.error(f"The Citewise API at {API_URL} is not reachable: {exc}")
            st.stop()
        if response.status_code != 200:
            st.error(response.json().get("error", {}).get("message", response.text))
            st.stop()
        answer = response.json()
        if answer["declined"]:
            st.warning(answer["answer"])
            for passage in answer["passages"][:3]:  # the closest passages, to look at
                with st.expander(f"Closest passage: {passage['source']}"):
                    st.write(passage["passage"])
        else:
            st.markdown(answer["answer"])
        for citation in answer["citations"]:
            where = ", ".join(
                part
                for part in (
                    citation["source"],
                    f"page {citation['page']}" if citation["page"] else "",
                    citation["section"],
                )
                if part
            )
            with st.expander(f"[{citation['number']}] {where}"):
                st.write(citation["quote"] or citation["passage"])
        verification = answer.get("verification") or {}
        checked = (
            f" · verified ({verification['verifier']}): {verification['supported']} of "
            f"{verification['sentences']} sentences supported, score {verification['score']:.2f}"
            if verification
            else ""
        )
        total_ms = answer["timings_ms"].get("total", 0)
        st.caption(f"Answered by: {answer['tier']} · {total_ms:.0f} ms{checked}")
