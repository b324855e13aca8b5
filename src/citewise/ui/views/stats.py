"""Statistics of the tenant: its corpus, ingestion jobs, answers served and their feedback."""

from __future__ import annotations

import streamlit as st

from citewise.ui import session, stats_views
from citewise.ui.client import ApiError

TILES_PER_ROW = 4

client, me = session.require_admin()
tenant = str(me["tenant"])

st.title("Statistics")

try:
    with st.spinner("Counting…"):
        stats = client.stats(tenant)
except ApiError as exc:
    session.show_error(exc)
    st.stop()

st.caption(f"Tenant **{tenant}**. {stats_views.freshness(stats)}")

tiles = stats_views.tiles(stats)
for start in range(0, len(tiles), TILES_PER_ROW):
    row = tiles[start : start + TILES_PER_ROW]
    # Columns wrap into one per line on narrow screens; the last row is padded to keep widths.
    for column, tile in zip(st.columns(TILES_PER_ROW), row, strict=False):
        column.metric(tile.label, tile.value, help=tile.help, border=True)

documents = stats_views.by_status(stats, "documents")
jobs = stats_views.by_status(stats, "jobs")
if not documents and not jobs:
    st.info(
        "Nothing to chart yet: upload documents on the Upload page, and their figures appear here."
    )
    st.stop()

left, right = st.columns(2)
with left:
    st.subheader("Documents by status")
    if documents:
        st.bar_chart(
            {"documents": documents}, horizontal=True, x_label="", y_label="documents", height=180
        )
    else:
        st.caption("No documents yet.")
with right:
    st.subheader("Jobs by status")
    if jobs:
        st.bar_chart({"jobs": jobs}, horizontal=True, x_label="", y_label="jobs", height=180)
    else:
        st.caption("No ingestion jobs yet.")
