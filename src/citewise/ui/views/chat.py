"""Ask: a conversation with Citewise, answers streamed, every claim cited."""

from __future__ import annotations

from typing import Any

import streamlit as st

from citewise.ui import session
from citewise.ui.answer_view import render_answer
from citewise.ui.client import ApiError, CitewiseClient

Json = dict[str, Any]

client, me = session.require_client()
state = st.session_state
state.setdefault("conversation_id", None)
state.setdefault("turns", [])


def open_conversation(conversation_id: str | None) -> None:
    """Show a stored conversation (None: a new, empty one)."""
    state["conversation_id"] = conversation_id
    state["turns"] = []
    if conversation_id is None:
        return
    try:
        detail = client.conversation(conversation_id)
    except ApiError as exc:
        session.show_error(exc)
        state["conversation_id"] = None
        return
    for message in detail["messages"]:
        if message["role"] == "user":
            state["turns"].append({"role": "user", "content": message["content"]})
        else:
            state["turns"].append({"role": "assistant", "answer": message})


def stream_answer(client: CitewiseClient, question: str) -> Json | None:
    """Ask in the current conversation, showing tokens as they come; the final answer."""
    status = st.empty()
    text_box = st.empty()
    status.caption(":material/search: Searching your documents…")
    text = ""
    try:
        for event in client.ask_stream(question, conversation_id=state["conversation_id"]):
            if event.name == "meta":
                found = len(event.data.get("passages", []))
                status.caption(f":material/edit_note: Read {found} passages; writing the answer…")
            elif event.name == "token":
                text += str(event.data.get("text", ""))
                text_box.markdown(text + " ▌")
            elif event.name == "fallback":
                if event.data.get("discard"):
                    text = ""
                    text_box.empty()
                nxt = event.data.get("next")
                status.caption(
                    f":material/sync: “{event.data.get('tier')}” could not answer; "
                    + (f"trying “{nxt}”…" if nxt else "no other service is left.")
                )
            elif event.name == "final":
                status.empty()
                text_box.empty()
                return event.data
            elif event.name == "error":
                status.empty()
                st.error(
                    "The answer could not be completed: "
                    f"{event.data.get('message', 'unknown error')}. Try again."
                )
                return None
    except ApiError as exc:
        status.empty()
        session.show_error(exc)
        return None
    status.empty()
    st.error("The answer stopped before it was complete. Try again.")
    return None


def ask(question: str) -> None:
    """Put the question to Citewise in the current conversation (started if needed)."""
    if state["conversation_id"] is None:
        try:
            state["conversation_id"] = client.new_conversation()["id"]
        except ApiError as exc:
            session.show_error(exc)
            return
    state["turns"].append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        answer = stream_answer(client, question)
    if answer is not None:
        state["turns"].append({"role": "assistant", "answer": answer})
        st.rerun()


with st.sidebar:
    if st.button("New chat", icon=":material/add_comment:", width="stretch"):
        open_conversation(None)
    st.caption("Recent conversations")
    try:
        recent = client.conversations(limit=20)
    except ApiError as exc:
        recent = []
        st.caption(f"Your history could not be loaded: {exc}")
    if not recent:
        st.caption("None yet: your questions are kept here.")
    for conversation in recent:
        current = conversation["id"] == state["conversation_id"]
        if st.button(
            conversation["title"] or "Untitled",
            key=f"conv-{conversation['id']}",
            type="secondary" if current else "tertiary",
            width="stretch",
        ):
            open_conversation(conversation["id"])

st.title("Ask Citewise")
if not state["turns"]:
    st.write(
        "Ask a question about your organisation's documents. Every answer cites the "
        "passages it comes from; when the documents do not say, Citewise tells you so."
    )

last_question = ""
for index, turn in enumerate(state["turns"]):
    with st.chat_message(turn["role"]):
        if turn["role"] == "user":
            last_question = turn["content"]
            st.markdown(turn["content"])
        else:
            render_answer(client, turn["answer"], key=f"turn-{index}")
            is_last = index == len(state["turns"]) - 1
            if (
                is_last
                and last_question
                and st.button("Regenerate", icon=":material/refresh:", key=f"regen-{index}")
            ):
                state["pending_question"] = last_question
                st.rerun()

question = st.chat_input("Ask a question about your documents")
pending = state.pop("pending_question", None)
if question or pending:
    ask(str(question or pending))
