"""The Evaluation page against a real `citewise serve`, with two real runs on its disk."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from citewise.eval.runs import RunDir, summarize
from citewise.ui.client import CitewiseClient
from tests.ui.conftest import LiveApi
from tests.ui.eval_data import BASE_ID, HEAD_ID, comparison, write_run

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[2] / "src" / "citewise" / "ui" / "views" / "evaluation.py"


@pytest.fixture(scope="module")
def runs_root(live_api: LiveApi) -> Path:
    """The server's ``eval-runs`` folder with a base and a head run of tenant acme."""
    root = Path(live_api.server.env["CITEWISE_DATA_DIR"]) / "eval-runs"
    for variant, run_id in (("base", BASE_ID), ("head", HEAD_ID)):
        if not (root / run_id / "run.json").is_file():
            write_run(root, variant)
    return root


@pytest.fixture
def admin(live_api: LiveApi, runs_root: Path) -> Iterator[CitewiseClient]:
    client = live_api.client(live_api.admin_key)
    yield client
    client.close()


def _page(client: CitewiseClient) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=90)
    at.session_state["client"] = client
    at.session_state["me"] = client.me()
    return at.run()


def _frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe on the page with this column."""
    for element in at.dataframe:
        frame = element.value
        if column in frame.columns:
            return frame
    raise AssertionError(f"no table with a {column!r} column")


def _texts(elements: Iterable[Any]) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_lists_both_runs_and_the_metrics_of_a_run(admin: CitewiseClient, runs_root: Path) -> None:
    at = _page(admin)
    assert not at.exception and not at.error
    runs = _frame(at, "Run")
    assert list(runs["Run"]) == [HEAD_ID, BASE_ID]  # newest first
    assert list(runs["Questions"]) == [14, 14]

    at.selectbox(key="eval_run").set_value(BASE_ID).run()
    assert not at.exception
    expected = summarize(RunDir(runs_root / BASE_ID).results())
    figures = _frame(at, "Raw")
    assert dict(zip(figures["Key"], figures["Raw"], strict=True)) == expected
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["ROUGE-L"] == f"{expected['rouge_l']:.3f}"
    assert tiles["Correct declines"] == "1.000"

    questions = _frame(at, "Answer")
    assert len(questions) == 14
    assert "14 of 14 questions" in _texts(at.caption)
    assert len(at.get("vega_lite_chart")) == 2  # box plots of every metric, one histogram


def test_question_filters(admin: CitewiseClient) -> None:
    at = _page(admin)
    at.selectbox(key="eval_run").set_value(BASE_ID).run()
    at.selectbox(key="eval_q_status").set_value("Declined").run()
    declined = _frame(at, "Answer")
    assert len(declined) == 5 and declined["Declined"].all()
    at.selectbox(key="eval_q_status").set_value("All questions").run()
    at.text_input(key="eval_q_text").input("parking spaces").run()
    assert list(_frame(at, "Answer")["Id"]) == ["un-03"]
    at.text_input(key="eval_q_text").input("zebra crossings on the moon").run()
    assert "0 of 14 questions" in _texts(at.caption)
    assert "No question matches these filters." in _texts(at.info)


def test_compares_two_runs_side_by_side(admin: CitewiseClient, runs_root: Path) -> None:
    at = _page(admin)
    at.segmented_control(key="eval_view").set_value("Compare runs").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="eval_base").value == BASE_ID
    assert at.selectbox(key="eval_head").value == HEAD_ID

    expected = comparison(runs_root)
    table = _frame(at, "95% CI")
    changes = dict(zip(table["Key"], table["Change"], strict=True))
    assert changes == pytest.approx({m.metric: m.delta for m in expected.metrics})
    verdicts = dict(zip(table["Key"], table["Verdict"], strict=True))
    assert verdicts["rouge_l"] == "better"
    assert verdicts["latency_ms"] == "worse"
    assert "Over 14 questions answered in both runs" in _texts(at.markdown)
    assert len(at.get("vega_lite_chart")) == 1  # the chart of the deltas

    changed = _frame(at, "Declined (head)")
    assert list(changed["Id"]) == [q.id for q in expected.changed]
    config = _frame(at, "Setting")
    top_k = config[config["Setting"] == "top_k"].iloc[0]
    assert (top_k["Base"], top_k["Head"]) == ("8", "12")

    at.selectbox(key="eval_base").set_value(HEAD_ID).run()
    assert "Choose two different runs to compare." in _texts(at.warning)


def test_a_tenant_without_runs_is_told_how_to_make_one(live_api: LiveApi, runs_root: Path) -> None:
    client = live_api.client(live_api.server.create_key("other", "admin"))
    try:
        at = _page(client)
    finally:
        client.close()
    assert not at.exception and not at.error
    assert "Tenant **other** has no evaluation runs yet" in _texts(at.info)
    assert [c.value for c in at.code] == [
        "citewise eval qa --dataset samples/kestrel-qa.jsonl --tenant other"
    ]
    assert not at.dataframe


def test_a_user_key_is_refused(live_api: LiveApi, runs_root: Path) -> None:
    client = live_api.client(live_api.user_key)
    try:
        at = _page(client)
    finally:
        client.close()
    assert "This page is for administrators" in _texts(at.warning)
    assert not at.dataframe and not at.metric


def test_api_errors_read_as_sentences(live_api: LiveApi, runs_root: Path) -> None:
    client = live_api.client(live_api.admin_key)
    me = client.me()
    client.close()
    stale = CitewiseClient(live_api.url, "cw_nope_notakey")
    try:
        at = AppTest.from_file(str(PAGE), default_timeout=90)
        at.session_state["client"] = stale
        at.session_state["me"] = me
        at.run()
    finally:
        stale.close()
    assert not at.exception
    assert "Your API key was not accepted" in _texts(at.error)
