"""Evaluation: the tenant's runs, one run's metrics and questions, and two runs side by side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from citewise.ui import eval_views as views
from citewise.ui import session
from citewise.ui.client import ApiError, CitewiseClient

Json = dict[str, Any]
CACHE = "eval_cache"
SCORE = st.column_config.NumberColumn(format="%.3f", width="small")
ROW_PX = 35  # a dataframe row's height

client, me = session.require_admin()
tenant = str(me["tenant"])


def cached(key: tuple[str, ...], keep: bool, fetch: Callable[[], Json]) -> Json:
    """`fetch()` once per session for finished runs (`keep`); unfinished ones are read afresh."""
    store: dict[tuple[str, ...], Json] = st.session_state.setdefault(CACHE, {})
    if key in store:
        return store[key]
    value = fetch()
    if keep:
        store[key] = value
    return value


def load_runs(api: CitewiseClient) -> list[Json] | None:
    """The tenant's runs, newest first; None (after showing why) when the API failed."""
    try:
        with st.spinner("Loading evaluation runs…"):
            return api.eval_runs(tenant)
    except ApiError as exc:
        session.show_error(exc)
        return None


def empty_state() -> None:
    """What to do when the tenant has no runs yet."""
    st.info(
        f"Tenant **{tenant}** has no evaluation runs yet. An evaluation asks every question of "
        "a dataset through the real answering pipeline and scores the answers against the "
        "reference answers. Run it on the machine that serves this API (same data directory):",
        icon=":material/science:",
    )
    st.code(f"citewise eval qa --dataset samples/kestrel-qa.jsonl --tenant {tenant}", "bash")
    st.caption(
        "Add `--limit 10` for a quick first run. Change a setting, run it again, and compare "
        "the two runs here. Refresh this page when a run has finished."
    )


def run_details(api: CitewiseClient, runs: list[Json]) -> None:
    """One run: headline tiles, all metrics, per-question distributions and the questions."""
    by_id = {str(r["run_id"]): r for r in runs}
    run_id = st.selectbox(
        "Run", list(by_id), format_func=lambda r: views.run_label(by_id[r]), key="eval_run"
    )
    if run_id is None:
        return
    try:
        with st.spinner("Loading the run and its questions…"):
            run = cached(
                ("run", tenant, run_id),
                views.finished(by_id[run_id]),
                lambda: api.eval_run(tenant, run_id),
            )
    except ApiError as exc:
        session.show_error(exc)
        return
    results: list[Json] = run.get("results") or []
    summary: Json = run.get("summary") or {}
    config: Json = run.get("config") or {}
    started, ended = views.when(run.get("started_at")), views.when(run.get("finished_at"))
    st.caption(
        f"Dataset **{views.dataset_name(run)}** · started {started}"
        + (f" · finished {ended}" if ended else "")
        + f" · configuration `{run.get('config_hash', '')}`"
        + (f" · prompt `{config['prompt_version']}`" if config.get("prompt_version") else "")
    )
    if not views.finished(run):
        st.warning(
            f"This run has not finished (it was interrupted or is still running): "
            f"{len(results)} questions are answered so far and there are no summary figures "
            "yet. Run the same command with `--run-id "
            f"{run_id}` to resume it.",
            icon=":material/hourglass_top:",
        )

    tiles = views.headline(summary)
    if tiles:
        # Three tiles a row: long metric names stay readable at 1280 px and narrower.
        columns = [c for _ in range(0, len(tiles), 3) for c in st.columns(3)]
        for column, (key, name, value) in zip(columns, tiles, strict=False):
            unit = " ms" if key.startswith("latency") else ""
            column.metric(
                name,
                f"{value:.0f}{unit}" if unit else f"{value:.3f}",
                help=views.HELP.get(key),
                border=True,
            )

    st.subheader("Metrics")
    if summary:
        figures = views.summary_table(summary)
        st.dataframe(
            figures,
            hide_index=True,
            height=ROW_PX * (len(figures) + 1) + 3,  # every figure, no inner scrolling
            column_order=["Group", "Metric", "Value", "Better"],
            column_config={
                "Better": st.column_config.TextColumn(help="Which direction is an improvement"),
            },
            key="eval_summary",
        )
    else:
        st.info("No summary figures yet: they are written when the run finishes.")

    st.subheader("Per-question distributions")
    values = views.metric_values(results)
    if values.empty:
        st.info("No per-question metrics in this run.")
    else:
        chart = views.scores_chart(values)
        if chart is not None:
            st.altair_chart(chart, width="stretch")
        names = views.metric_names(results)
        metric = st.selectbox(
            "Distribution of", names, format_func=views.label, key="eval_hist_metric"
        )
        histogram = views.histogram(values, metric) if metric else None
        if histogram is not None:
            st.altair_chart(histogram, width="stretch")

    st.subheader("Questions")
    table = views.questions_table(results)
    search, status, tag = st.columns([2, 1, 1])
    text = search.text_input(
        "Search", placeholder="Words in the id, question or answer", key="eval_q_text"
    )
    state = status.selectbox("Show", views.STATUS_FILTERS, key="eval_q_status")
    chosen = tag.multiselect("Tags", views.tags(results), key="eval_q_tags")
    shown = views.filter_questions(table, text=text, status=state or "", tags=chosen)
    st.caption(f"{len(shown)} of {len(table)} questions")
    if shown.empty:
        st.info("No question matches these filters.")
    else:
        st.dataframe(
            shown,
            hide_index=True,
            column_config={
                "Question": st.column_config.TextColumn(width="large"),
                "Answer": st.column_config.TextColumn(width="large"),
                **{name: SCORE for name in views.metric_names(results)},
                "latency_ms": st.column_config.NumberColumn("latency ms", format="%.0f"),
                "tokens": st.column_config.NumberColumn(format="%d"),
            },
            key="eval_questions",
        )

    with st.expander("Configuration snapshot", icon=":material/tune:"):
        st.json(config, expanded=1)


def compare(api: CitewiseClient, runs: list[Json]) -> None:
    """Two runs side by side: deltas with intervals, the questions that moved, config changes."""
    if len(runs) < 2:
        st.info(
            "Comparing needs two runs of this tenant. Change a setting (a model, `top_k`, "
            "the fusion, the chunking), run `citewise eval qa` again on the same dataset, "
            "and come back.",
            icon=":material/compare_arrows:",
        )
        return
    by_id = {str(r["run_id"]): r for r in runs}
    ids = list(by_id)
    left, right = st.columns(2)
    base = left.selectbox(
        "Base run (before)",
        ids,
        index=1,
        format_func=lambda r: views.run_label(by_id[r]),
        key="eval_base",
    )
    head = right.selectbox(
        "Head run (after)",
        ids,
        index=0,
        format_func=lambda r: views.run_label(by_id[r]),
        key="eval_head",
    )
    if base is None or head is None:
        return
    if base == head:
        st.warning("Choose two different runs to compare.")
        return
    keep = views.finished(by_id[base]) and views.finished(by_id[head])
    try:
        with st.spinner("Comparing the runs (paired bootstrap)…"):
            comparison = cached(
                ("compare", tenant, base, head), keep, lambda: api.eval_compare(tenant, base, head)
            )
    except ApiError as exc:
        session.show_error(exc)
        return

    if not comparison.get("dataset_match", True):
        st.warning(
            "The two runs used different datasets: only the questions they share are compared.",
            icon=":material/warning:",
        )
    st.write(views.verdict_sentence(comparison))
    table = views.comparison_table(comparison)
    if not table.empty:
        st.dataframe(
            table,
            hide_index=True,
            column_order=[c for c in table.columns if c != "Key"],
            column_config={
                "Base": SCORE,
                "Head": SCORE,
                "Change": st.column_config.NumberColumn(format="%+.4f"),
                "95% CI": st.column_config.TextColumn(help="95% paired bootstrap interval"),
            },
            key="eval_compare_metrics",
        )
        chart = views.delta_chart(comparison)
        if chart is not None:
            st.altair_chart(chart, width="stretch")

    changes = views.summary_changes(comparison)
    if not changes.empty:
        with st.expander("Rates, latency and tokens", icon=":material/speed:"):
            st.dataframe(
                changes,
                hide_index=True,
                column_order=["Group", "Metric", "Base", "Head", "Change", "Better"],
                column_config={
                    "Base": st.column_config.NumberColumn(format="%.4g"),
                    "Head": st.column_config.NumberColumn(format="%.4g"),
                    "Change": st.column_config.NumberColumn(format="%+.4g"),
                },
                key="eval_compare_summary",
            )

    st.subheader("Questions that changed most")
    changed: list[Json] = comparison.get("changed") or []
    if not changed:
        st.info("No question's answer or scores changed between these runs.")
    else:
        st.dataframe(
            views.changed_table(comparison),
            hide_index=True,
            column_config={
                "Question": st.column_config.TextColumn(width="large"),
                "Change": st.column_config.NumberColumn(format="%.3f"),
            },
            key="eval_changed",
        )
        for question in changed:
            with st.expander(f"{question.get('id', '')}: {question.get('question', '')}"):
                before, after = st.columns(2)
                for column, side, title in ((before, "a", "Base"), (after, "b", "Head")):
                    column.markdown(f"**{title}**")
                    if question.get(f"declined_{side}"):
                        column.caption("Declined")
                    column.write(question.get(f"answer_{side}") or "—")
                st.dataframe(
                    views.metric_pairs(question),
                    hide_index=True,
                    column_config={"Base": SCORE, "Head": SCORE},
                )

    st.subheader("Configuration changes")
    config = views.config_table(comparison)
    if config.empty:
        st.success("Both runs used the same configuration.", icon=":material/check:")
    else:
        st.dataframe(config, hide_index=True, key="eval_config_changes")


st.title("Evaluation")
st.caption(
    f"Offline evaluation runs of tenant **{tenant}** (`citewise eval qa`): answer quality, "
    "retrieval, declines and latency, and what changed between two runs."
)
if st.button("Refresh", icon=":material/refresh:", key="eval_refresh"):
    st.session_state.pop(CACHE, None)

runs = load_runs(client)
if runs is None:
    st.stop()
elif not runs:
    empty_state()
    st.stop()
else:
    st.subheader("Runs")
    st.dataframe(
        views.runs_table(runs),
        hide_index=True,
        column_config={
            "Run": st.column_config.TextColumn(pinned=True),
            **{
                views.label(k): st.column_config.NumberColumn(
                    format="%.0f" if k.startswith("latency") else "%.3f"
                )
                for k in views.HEADLINE
            },
        },
        key="eval_runs",
    )
    view = st.segmented_control(
        "View",
        ["Run details", "Compare runs"],
        default="Run details",
        required=True,
        key="eval_view",
        label_visibility="collapsed",
    )
    if view == "Compare runs":
        compare(client, runs)
    else:
        run_details(client, runs)
