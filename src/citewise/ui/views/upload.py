"""Upload documents: several files at once, with ACL groups, and their live progress."""

from __future__ import annotations

import streamlit as st

from citewise.ui import progress, session, tables
from citewise.ui.client import ApiError

ACCEPTED = ["pdf", "docx", "pptx", "xlsx", "html", "htm", "md", "markdown", "txt", "eml", "csv"]
ACCEPTED += ["zip"]

client, me = session.require_admin()
tenant = str(me["tenant"])

st.title("Upload documents")
st.caption(
    f"Files are read, split into passages and indexed for tenant **{tenant}**. "
    "A file uploaded again under the same name becomes a new version."
)

with st.form("upload", clear_on_submit=True, border=True):
    files = st.file_uploader(
        "Files",
        type=ACCEPTED,
        accept_multiple_files=True,
        help="PDF, Word, PowerPoint, Excel, HTML, Markdown, text, e-mail (.eml) and CSV; "
        "ZIP archives are unpacked.",
    )
    groups_text = st.text_input(
        "Readable by groups",
        placeholder="e.g. hr, finance",
        help="Comma-separated ACL groups whose members may read these documents. "
        "Leave empty and everyone in the tenant may read them.",
    )
    submitted = st.form_submit_button("Upload", type="primary", icon=":material/upload:")

if submitted:
    if not files:
        st.warning("Choose one or more files first.")
    else:
        groups = tables.parse_groups(groups_text)
        try:
            with st.spinner(f"Sending {len(files)} file{'s' * (len(files) != 1)}…"):
                job = client.upload(
                    tenant, [(f.name, f.getvalue()) for f in files], acl_groups=groups
                )
        except ApiError as exc:
            session.show_error(exc)
        else:
            st.session_state["upload_job"] = job
            st.session_state["upload_refused"] = sorted(progress.refused_positions(job))

progress_area = st.container()

with st.expander("Latest jobs of this tenant", icon=":material/history:"):
    try:
        jobs = client.jobs(tenant, limit=20)
    except ApiError as exc:
        session.show_error(exc)
    else:
        if jobs:
            st.dataframe(tables.job_rows(jobs), hide_index=True, width="stretch")
        else:
            st.info("No jobs yet: the first upload starts one.")

watched = st.session_state.get("upload_job")
if isinstance(watched, dict):
    refused = frozenset(st.session_state.get("upload_refused") or [])
    with progress_area:
        st.subheader("Progress")
        if progress.is_finished(watched):
            progress.render(watched, refused)
        else:
            last = progress.watch_job(client, watched, refused)
            if last is None:
                st.session_state.pop("upload_job", None)  # unreadable: do not retry on every run
            elif progress.is_finished(last):
                st.session_state["upload_job"] = last
                st.rerun()  # once more, so the jobs list shows how it ended
