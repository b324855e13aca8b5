"""Structured logging (structlog) for every entry point: console or JSON lines."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

from citewise.core.tenancy import Principal

_REDACTIONS = [
    # Secrets first: key=value pairs, bearer tokens, well-known key shapes.
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|token|access[_-]?key)(\s*[:=]\s*)\S+"
        ),
        r"\1\2[REDACTED]",
    ),
    (
        re.compile(r"(?i)\b(authorization|x-api-key)(\s*[:=]\s*)(?:(bearer|basic)\s+)?\S+"),
        r"\1\2[REDACTED]",
    ),
    (re.compile(r"(?i)\bbearer\s+[a-z0-9._~+/-]{8,}=*"), "Bearer [REDACTED]"),
    (re.compile(r"\bcw_[a-z0-9]{8}_[A-Za-z0-9_-]{16,}"), "[REDACTED-KEY]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "[REDACTED-JWT]"),
    (re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{16,}\b"), "[REDACTED-KEY]"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "[REDACTED-KEY]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "[REDACTED-KEY]"),
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[EMAIL]"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[CARD]"),
    (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), "[SSN]"),
    (re.compile(r"\(\d{3}\)\s?\d{3}[ .-]\d{4}\b"), "[PHONE]"),
    (re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}\b"), "[PHONE]"),
    (re.compile(r"(?<![\w.])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]\d{3,4}\b"), "[PHONE]"),
]


def redact(text: str) -> str:
    """`text` with e-mail addresses, phone, card and social-security numbers and secrets masked."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


_REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("citewise_request_log", default=None)


@contextmanager
def request_fields(**fields: Any) -> Iterator[dict[str, Any]]:
    """Add `fields` to every log line inside the block (one HTTP request).

    The fields live in one dict shared by every context copied from this one
    (threadpool calls, tasks), so what `bind_principal` adds from a sync
    dependency's worker thread shows on the request's later lines too.
    """
    shared = dict(fields)
    token = _REQUEST.set(shared)
    try:
        yield shared
    finally:
        _REQUEST.reset(token)


def bind_principal(principal: Principal) -> None:
    """Name the authenticated principal on the request's log lines.

    Tenant, user and credential id (an API key's prefix, never the key). Call it
    where the principal is resolved from credentials; the request middleware
    also puts tenant and credential on the request's span.
    """
    fields = {
        "tenant_id": principal.tenant_id,
        "user_id": principal.user_id,
        "credential_id": principal.credential_id,
    }
    shared = _REQUEST.get()
    if shared is not None:
        shared.update(fields)
    else:
        structlog.contextvars.bind_contextvars(**fields)


def _merge_request(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: the current request's fields (`request_fields`) on the event."""
    shared = _REQUEST.get()
    if shared:
        for key, value in shared.items():
            event.setdefault(key, value)
    return event


def _redact_event(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: redact every string value of the event."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def log_processors(*, redact: bool = True) -> list[structlog.typing.Processor]:
    """Processors of every log line before rendering: context, request, level, time, redaction."""
    return [
        structlog.contextvars.merge_contextvars,
        _merge_request,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        *([_redact_event] if redact else []),
    ]


def configure_logging(level: str = "INFO", *, json: bool = False, redact: bool = True) -> None:
    """Route structlog and stdlib logging to stderr at `level`.

    Args:
        level: Minimum level name (``DEBUG``, ``INFO``, ...).
        json: One JSON object per line (for log shippers) instead of console text.
        redact: Mask personal data and secrets in every string field (`redact`).
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*log_processors(redact=redact), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, force=True)
    for noisy in ("httpx", "httpcore", "sentence_transformers", "transformers", "unstructured"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
