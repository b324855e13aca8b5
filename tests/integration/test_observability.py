"""Observability over real requests: /metrics after a session, spans, request ids, logs.

The app runs on the sample runtime with an LLM tier on the loopback test server
(``echo``: a grounded, cited sentence with real usage figures) before the
extractive tier. Spans go to an in-memory exporter attached like the app's own.
The metrics registry is the process's, shared with other tests, so every
assertion compares values before and after this module's session.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from citewise.answer.pipeline import QAPipeline
from citewise.answer.tiers import build_chat_tier
from citewise.api.app import create_app
from citewise.core.logging import log_processors
from citewise.core.settings import LLMTier, ObservabilitySettings
from citewise.core.tracing import Tracing, configure_tracing, tracer
from tests.auth import admin_headers, bearer, create_key
from tests.broken_llm import BrokenLLM, primary

pytestmark = pytest.mark.integration

QUESTION = "How long must my password be?"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> Samples:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def llm() -> Iterator[BrokenLLM]:
    server = BrokenLLM("echo").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing = Tracing(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown()


@pytest.fixture(scope="module")
def app_client(demo_runtime, llm: BrokenLLM, spans) -> Iterator[tuple[TestClient, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """The API with tiers primary (loopback LLM) -> extractive, and a user key of ``demo``."""
    tiers = [primary(llm), LLMTier(name="extractive", kind="extractive")]
    pipeline = QAPipeline(
        demo_runtime.settings.answer.model_copy(update={"tiers": tiers}),
        retriever=demo_runtime.retriever,
        embedder=demo_runtime.embedder,
        chat_tiers={"primary": build_chat_tier(tiers[0])},
    )
    runtime = dataclasses.replace(demo_runtime, pipeline=pipeline)
    with TestClient(create_app(demo_runtime.settings, runtime=runtime)) as client:
        yield client, bearer(create_key(demo_runtime.db, "demo"))


def _stream(client: TestClient, headers: dict[str, str], question: str) -> list[str]:
    events = []
    with client.stream(
        "POST", "/v1/ask/stream", json={"question": question, "use_llm": False}, headers=headers
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
    return events


def _wait_for_job(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "partial", "failed", "dead"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_metrics_show_every_series_after_a_session(app_client, demo_runtime) -> None:  # type: ignore[no-untyped-def]
    client, user = app_client
    before = scrape(client)

    ask = {"question": QUESTION, "use_llm": False}
    for _ in range(2):
        body = client.post("/v1/ask", json=ask, headers=user).json()
        assert body["tier"] == "extractive" and not body["declined"]
    declined = client.post(
        "/v1/ask",
        json={"question": "What is the CEO's annual salary?", "use_llm": False},
        headers=user,
    ).json()
    assert declined["declined"]
    llm_answer = client.post("/v1/ask", json={"question": QUESTION}, headers=user).json()
    assert llm_answer["tier"] == "primary", llm_answer["attempts"]
    assert _stream(client, user, QUESTION)[-1] == "final"
    assert client.get("/v1/no-such-route").status_code == 404

    admin = admin_headers(demo_runtime, "obs")
    upload = client.post(
        "/v1/tenants/obs/documents",
        files={"files": ("note.txt", b"Badges are renewed every two years at reception.")},
        headers=admin,
    )
    assert upload.status_code == 202, upload.text
    assert _wait_for_job(client, upload.json()["id"], admin)["status"] == "succeeded"

    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    latency = "citewise_http_request_duration_seconds_count"
    assert grew(latency, route="/v1/ask", method="POST", status="2xx") == 4
    assert grew(latency, route="/v1/ask/stream", method="POST", status="2xx") == 1
    assert grew(latency, route="unmatched", method="GET", status="4xx") == 1
    assert grew(latency, route="/v1/jobs/{job_id}", method="GET", status="2xx") >= 1
    assert (
        grew(
            "citewise_http_request_duration_seconds_sum",
            route="/v1/ask/stream",
            method="POST",
            status="2xx",
        )
        > 0
    )

    stage = "citewise_stage_duration_seconds_count"
    assert grew(stage, stage="retrieval") == 5  # every question, streamed or not
    assert grew(stage, stage="generation") == 1  # the one LLM answer
    assert grew(stage, stage="verification") == 4  # not the gate decline
    assert grew(stage, stage="extractive") == 3
    assert grew(stage, stage="rank") == 5

    ttft = "citewise_time_to_first_token_seconds_count"
    assert grew(ttft, tier="extractive") == 3 and grew(ttft, tier="primary") == 1
    assert grew("citewise_time_to_first_token_seconds_sum", tier="primary") > 0

    tokens = "citewise_llm_tokens_total"
    assert grew(tokens, tier="primary", direction="prompt") == llm_answer["usage"]["prompt_tokens"]
    assert (
        grew(tokens, tier="primary", direction="completion")
        == (llm_answer["usage"]["completion_tokens"])
    )
    assert llm_answer["usage"]["completion_tokens"] > 0

    answers = "citewise_answers_total"
    assert grew(answers, tier="extractive", decline_reason="none") == 3
    assert grew(answers, tier="primary", decline_reason="none") == 1
    assert grew(answers, tier="gate", decline_reason="gate") == 1

    assert grew("citewise_groundedness_score_count") == 4
    assert 0 < grew("citewise_groundedness_score_sum") <= 4

    assert grew("citewise_ingest_jobs_finished_total", status="succeeded") == 1
    assert value(after, "citewise_ingest_jobs", status="succeeded") >= 1
    assert value(after, "citewise_ingest_jobs", status="queued") == 0
    assert ("citewise_ingest_jobs", (("status", "dead"),)) in after  # every status, 0 included

    assert ("citewise_breaker_state", (("tier", "primary"),)) in after
    assert value(after, "citewise_breaker_state", tier="primary") == 0  # closed


def test_spans_form_a_tree_under_the_request_span(app_client, spans: InMemorySpanExporter) -> None:  # type: ignore[no-untyped-def]
    client, user = app_client
    spans.clear()
    response = client.post("/v1/ask", json={"question": QUESTION, "use_llm": False}, headers=user)
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    (server,) = by_name["POST /v1/ask"]
    assert server.kind == SpanKind.SERVER and server.parent is None
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/ask"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["citewise.request_id"] == response.headers["x-request-id"]
    assert server.attributes["citewise.tenant_id"] == "demo"
    assert server.attributes["citewise.credential_id"] == user["Authorization"].split("_")[1]
    (answer,) = by_name["answer"]
    assert answer.context.trace_id == server.context.trace_id
    by_id = {span.context.span_id: span for span in finished}
    ancestors, parent = [], answer.parent
    while parent is not None:
        ancestors.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    assert ancestors == ["fastapi.endpoint", "POST /v1/ask"]  # FastAPI's endpoint span between
    assert answer.attributes is not None
    assert answer.attributes["citewise.tenant"] == "demo"
    assert answer.attributes["citewise.tier"] == "extractive"
    stages = [
        s for s in finished if s.parent is not None and s.parent.span_id == answer.context.span_id
    ]
    names = [s.name for s in sorted(stages, key=lambda s: s.start_time or 0)]
    assert names[:3] == ["rewrite", "retrieval", "rank"] and "verification" in names
    retrieval = by_name["retrieval"][0]
    assert retrieval.attributes is not None and retrieval.attributes["citewise.passages"] > 0
    for span in stages:
        assert span.start_time is not None and span.end_time is not None
        assert server.start_time <= span.start_time <= span.end_time <= server.end_time  # type: ignore[operator]
    # Counts and labels only: the question never appears in a span.
    text = json.dumps([dict(s.attributes or {}) for s in finished])
    assert "password" not in text


def test_request_ids_are_echoed_and_logged(app_client) -> None:  # type: ignore[no-untyped-def]
    client, user = app_client
    with structlog.testing.capture_logs(processors=log_processors()) as logs:
        given = client.post(
            "/v1/ask",
            json={"question": QUESTION, "use_llm": False},
            headers={**user, "X-Request-ID": "req-42.a_b"},
        )
        made = client.get("/healthz", headers={"X-Request-ID": "bad id; " + "x" * 70})
    assert given.headers["x-request-id"] == "req-42.a_b"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    line = next(e for e in logs if e["event"] == "http_request" and e["route"] == "/v1/ask")
    assert line["request_id"] == "req-42.a_b" and line["method"] == "POST"
    assert line["status"] == 200 and line["duration_ms"] > 0
    prefix = user["Authorization"].split("_")[1]  # cw_<prefix>_<secret>: only the prefix is logged
    assert line["tenant_id"] == "demo" and line["credential_id"] == prefix
    # Every line of the request carries its id.
    assert all(e.get("request_id") == "req-42.a_b" for e in logs if e.get("route") == "/v1/ask")
    assert not any(user["Authorization"].split()[1] in json.dumps(e, default=str) for e in logs)


def test_metrics_token_is_required_when_configured(demo_runtime) -> None:  # type: ignore[no-untyped-def]
    settings = demo_runtime.settings.model_copy(
        update={"observability": ObservabilitySettings(traces="off", metrics_token="s3cret-scrape")}
    )
    with TestClient(create_app(settings, runtime=demo_runtime)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
        assert "citewise_answers" in client.get("/metrics", headers=bearer("s3cret-scrape")).text


def test_console_traces_are_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ObservabilitySettings()
    assert settings.traces == "console"
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    tracing = configure_tracing(settings)
    with (
        tracer("tests").start_as_current_span("outer"),
        tracer("tests").start_as_current_span("inner", attributes={"citewise.tier": "x"}),
    ):
        pass
    tracing.shutdown()  # the batch is exported, not lost
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert [line["name"] for line in lines] == ["inner", "outer"]
    assert lines[0]["parent_id"] == lines[1]["context"]["span_id"]
    assert lines[1]["resource"]["attributes"]["service.name"] == "citewise"
