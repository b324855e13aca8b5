"""Documents of the tenant: search, status, versions and passages; re-ingest, delete, download."""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from citewise.ui import progress, session, tables
from citewise.ui.client import ApiError


def _label(doc: dict[str, Any]) -> str:
    doc_id, title = str(doc["doc_id"]), str(doc.get("title") or "")
    return f"{title} ({doc_id})" if title and title != doc_id else doc_id


client, me = session.require_admin()
tenant = str(me["tenant"])

st.title("Documents")

query_col, status_col = st.columns([3, 2])
query = query_col.text_input(
    "Search",
    placeholder="File name, title or document id",
    key="documents_query",
    icon=":material/search:",
)
status_choice = status_col.selectbox(
    "Status",
    ["all (not deleted)", *tables.DOCUMENT_STATUSES],
    key="documents_status",
    help="Deleted documents are listed only when you choose “deleted”.",
)
status = None if status_choice.startswith("all") else status_choice

try:
    with st.spinner("Loading documents…"):
        page = client.documents(tenant, status=status, limit=500)
except ApiError as exc:
    session.show_error(exc)
    st.stop()

documents: list[dict[str, Any]] = page.get("items") or []
total = int(page.get("total") or len(documents))

if not documents and status is None:
    st.info("No documents yet — upload some on the Upload page.", icon=":material/inbox:")
    with contextlib.suppress(StreamlitAPIException):  # outside the app's navigation (tests)
        st.page_link("views/upload.py", label="Upload documents", icon=":material/upload_file:")
    st.stop()

shown = tables.filter_documents(documents, query)
caption = f"{len(shown)} of {total} document{'s' * (total != 1)}"
if total > len(documents):
    caption += f" (the first {len(documents)} are searched)"
st.caption(caption)

if not shown:
    st.info("No document matches. Try fewer words, or another status.")
    st.stop()

event = st.dataframe(
    tables.document_rows(shown),
    hide_index=True,
    width="stretch",
    key="documents_table",
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "Version": st.column_config.NumberColumn(format="%d"),
        "Passages": st.column_config.NumberColumn(format="%d"),
    },
)

# A row picked in the table chooses the document below (the chooser also works alone).
ids = [str(doc["doc_id"]) for doc in shown]
rows = list(event.selection.rows) if event is not None else []
if rows and rows != st.session_state.get("documents_rows") and rows[0] < len(ids):
    st.session_state["documents_choice"] = ids[rows[0]]
st.session_state["documents_rows"] = rows
if st.session_state.get("documents_choice") not in ids:
    st.session_state.pop("documents_choice", None)

by_id = {str(doc["doc_id"]): doc for doc in shown}
chosen = st.selectbox(
    "Document to manage",
    ids,
    index=None,
    key="documents_choice",
    placeholder="Select a row above, or choose here",
    format_func=lambda doc_id: _label(by_id[doc_id]),
)
if chosen is None:
    st.stop()

doc = by_id[chosen]
with st.container(border=True):
    st.markdown(f"**{doc.get('title') or chosen}**  \n`{chosen}`")
    st.caption(
        f"{doc.get('status')} · version {doc.get('version') or '–'} · "
        f"{doc.get('chunk_count') or 0} passages · readable by "
        f"{tables.groups_text(doc.get('acl_groups'))} · "
        f"updated {tables.when(doc.get('updated_at'))}"
    )
    if doc.get("error"):
        st.warning(progress.file_problem({"error": doc["error"]}))

    if doc.get("status") == "deleted":
        st.info("This document was deleted; upload its file again to bring it back.")
        st.stop()

    reingest_col, source_col, delete_col = st.columns(3)
    reingest = reingest_col.button(
        "Re-ingest",
        icon=":material/refresh:",
        key="reingest",
        help="Read and index the stored file again, as a new version.",
        width="stretch",
    )
    fetch_source = source_col.button(
        "Get the original file",
        icon=":material/download:",
        key="get_source",
        width="stretch",
    )
    delete = delete_col.button("Delete…", icon=":material/delete:", key="delete", width="stretch")

    if fetch_source:
        try:
            with st.spinner("Fetching the file…"):
                st.session_state["documents_source"] = (chosen, *client.source(chosen))
        except ApiError as exc:
            session.show_error(exc)
    source = st.session_state.get("documents_source")
    if isinstance(source, tuple) and source[0] == chosen:
        _doc_id, data, filename, media = source
        st.download_button(
            f"Download {filename}",
            data,
            file_name=filename,
            mime=media,
            key="download_source",
            icon=":material/file_download:",
            on_click="ignore",
        )

    if delete:
        st.session_state["documents_delete"] = chosen
    if st.session_state.get("documents_delete") == chosen:
        st.warning(
            f"Delete “{chosen}”? Its passages leave the index at once and its stored file "
            "is removed; this cannot be undone."
        )
        yes_col, no_col = st.columns(2)
        if yes_col.button("Yes, delete it", type="primary", key="delete_confirm"):
            st.session_state.pop("documents_delete", None)
            try:
                client.delete_document(tenant, chosen)
            except ApiError as exc:
                session.show_error(exc)
            else:
                st.session_state.pop("documents_choice", None)
                st.toast(f"Deleted {chosen}.", icon=":material/delete:")
                st.rerun()
        if no_col.button("Cancel", key="delete_cancel"):
            st.session_state.pop("documents_delete", None)
            st.rerun()

    if reingest:
        try:
            job = client.reingest(tenant, chosen)
        except ApiError as exc:
            session.show_error(exc)
        else:
            st.caption("Re-ingesting; the job also appears under Upload → Latest jobs.")
            last = progress.watch_job(client, job, limit_s=120)
            if last is not None and progress.is_finished(last):
                # Any click reruns the page, which reloads the table.
                st.button("Refresh the table", icon=":material/refresh:", key="refresh")
