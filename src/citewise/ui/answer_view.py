"""How an answer is shown: its text, groundedness, citations with their passages, feedback."""

from __future__ import annotations

from typing import Any

import streamlit as st

from citewise.ui import wording
from citewise.ui.client import ApiError, CitewiseClient
from citewise.ui.session import show_error

Json = dict[str, Any]

LEVEL_ICONS = {"good": ":material/verified:", "partial": ":material/warning:"}


def render_answer(client: CitewiseClient, answer: Json, *, key: str) -> None:
    """An answer (a served Answer or a stored assistant message) with everything around it."""
    if answer.get("declined"):
        st.warning(wording.decline_sentence(str(answer.get("decline_reason", ""))))
        passages = answer.get("passages") or []
        if passages:
            with st.expander("The closest passages, in case they help"):
                for passage in passages[:3]:
                    st.caption(wording.where(passage))
                    st.write(passage.get("passage", ""))
    else:
        st.markdown(_answer_text(answer))
        level, sentence = wording.groundedness(answer)
        if level == "good":
            st.caption(f":green[{LEVEL_ICONS[level]} Grounded] · {sentence}")
        else:
            st.caption(f":orange[{LEVEL_ICONS['partial']} Partly grounded] · {sentence}")
    if answer.get("degraded"):
        st.info(wording.tier_sentence(answer), icon=":material/info:")
    citations = answer.get("citations") or []
    if citations:
        st.caption("Sources: open one to read the passage.")
        with st.container(gap=None):
            for citation in citations:
                label = f"[{citation['number']}] {wording.where(citation)}"
                if st.button(label, key=f"{key}-cite-{citation['number']}", type="tertiary"):
                    show_citation(client, citation)
    answer_id = answer.get("answer_id")
    if answer_id:
        render_feedback(client, str(answer_id), key=key)


def _answer_text(answer: Json) -> str:
    """The answer, with sentences that failed verification marked (policy "mark")."""
    sentences = answer.get("sentences") or []
    if sentences and any(not s.get("supported", True) for s in sentences):
        parts = []
        for sentence in sentences:
            text = str(sentence.get("text", ""))
            parts.append(text if sentence.get("supported", True) else f":orange[{text} ⚠]")
        return " ".join(parts)
    return str(answer.get("answer") or answer.get("content") or "")


@st.dialog("Cited passage", width="large")
def show_citation(client: CitewiseClient, citation: Json) -> None:
    """The cited passage with its supporting text highlighted, and the source document."""
    st.subheader(str(citation.get("title") or citation.get("source", "")))
    details = [f"File: {citation.get('source', '')}"]
    if citation.get("page"):
        details.append(f"page {citation['page']}")
    if citation.get("section"):
        details.append(f"section “{citation['section']}”")
    details.append(f"version {citation.get('version', '?')}")
    st.caption(" · ".join(details))
    st.markdown(
        f"<div class='citewise-passage'>{wording.marked_passage(citation)}</div>",
        unsafe_allow_html=True,
    )
    st.write("")
    try:
        content, filename, media = client.source(str(citation["doc_id"]))
    except ApiError as exc:
        st.caption(f"The source file cannot be downloaded: {exc}")
        return
    st.download_button(
        "Download the source document",
        data=content,
        file_name=filename,
        mime=media,
        icon=":material/download:",
        on_click="ignore",
    )


def render_feedback(client: CitewiseClient, answer_id: str, *, key: str) -> None:
    """Thumbs up or down, then an optional comment; sent once per answer."""
    sent = st.session_state.setdefault("feedback_sent", {})
    if answer_id in sent:
        st.caption(f"Thanks, your feedback ({sent[answer_id]}) was recorded.")
        return
    rating = st.feedback("thumbs", key=f"{key}-thumbs")
    if rating is None:
        return
    label = "up" if rating == 1 else "down"
    with st.form(f"{key}-feedback", border=False):
        comment = st.text_input(
            "What was good or wrong? (optional)",
            max_chars=2000,
            placeholder="e.g. the dates are from last year's policy",
        )
        if st.form_submit_button("Send feedback"):
            try:
                client.feedback(answer_id, label, comment)
            except ApiError as exc:
                show_error(exc)
                return
            sent[answer_id] = f"thumbs {label}"
            st.rerun()
