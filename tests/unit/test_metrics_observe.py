"""Units of observability: request ids, log fields and redaction, stage labels, timer laps."""

from __future__ import annotations

import re

import pytest
import structlog

from citewise.answer.observe import stage_of
from citewise.api.middleware import request_id_of
from citewise.core.logging import bind_principal, log_processors, redact, request_fields
from citewise.core.tenancy import Principal
from citewise.core.timing import StageTimer

KEY = "cw_ab12cd34_" + "Zx9-" * 11


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (b"abc-123.X_y", True),
        (b"a" * 64, True),
        (b"a" * 65, False),
        (b"has space", False),
        (b"semi;colon", False),
        (b"", False),
        ("caf\u00e9".encode(), False),
    ],
)
def test_request_ids_are_taken_only_when_safe(header: bytes, kept: bool) -> None:
    scope = {"headers": [(b"x-request-id", header)]}
    request_id = request_id_of(scope)
    if kept:
        assert request_id == header.decode()
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_of({"headers": []}))


def test_credentials_are_redacted() -> None:
    for secret in (
        f"Authorization: Bearer {KEY}",
        "authorization=Basic dXNlcjpwYXNzd29yZA==",
        f"X-API-Key: {KEY}",
        f"the key {KEY} was revoked",
        "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJl",
    ):
        masked = redact(secret)
        assert "Zx9-" not in masked and "dXNlcj" not in masked and "eyJzdWIi" not in masked, masked
    assert redact("keys are listed by prefix ab12cd34") == "keys are listed by prefix ab12cd34"


def test_principal_and_request_fields_reach_every_line() -> None:
    principal = Principal(tenant_id="acme", user_id="u1", credential_id="ab12cd34")
    with structlog.testing.capture_logs(processors=log_processors()) as logs:
        with request_fields(request_id="r1", method="GET") as fields:
            structlog.get_logger("t").info("before")
            bind_principal(principal)
            structlog.get_logger("t").info("after", note=f"sent {KEY}")
        structlog.get_logger("t").info("outside")
    before, after, outside = logs
    assert before["request_id"] == "r1" and "tenant_id" not in before
    assert after["tenant_id"] == "acme" and after["credential_id"] == "ab12cd34"
    assert after["user_id"] == "u1" and fields["tenant_id"] == "acme"
    assert "Zx9-" not in after["note"]
    assert "request_id" not in outside and "tenant_id" not in outside


def test_timer_laps_map_to_stage_labels() -> None:
    timer = StageTimer()
    for lap in ("rewrite", "retrieve", "rerank", "generate_local", "verify", "verify"):
        timer.lap(lap)
    assert [name for name, _, _ in timer.stages] == [
        "rewrite",
        "retrieve",
        "rerank",
        "generate_local",
        "verify",
        "verify",
    ]
    assert all(start <= end for _, start, end in timer.stages)
    assert timer.stages[0][1] == timer.started
    assert [stage_of(name) for name, _, _ in timer.stages[1:4]] == [
        ("retrieval", None),
        ("rerank", None),
        ("generation", "local"),
    ]
    assert stage_of("verify") == ("verification", None)
