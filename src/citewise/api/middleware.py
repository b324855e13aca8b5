"""Per-request observability: request id, structured log fields, latency metric.

A pure ASGI middleware (not ``BaseHTTPMiddleware``), so a streamed response is
measured until its last byte and nothing buffers it. For each HTTP request it

- takes ``X-Request-ID`` from the request when it is 1-64 characters of
  ``[A-Za-z0-9._-]`` (else makes a uuid4 hex), and returns it on the response;
- puts ``request_id`` and ``method`` on every log line of the request
  (`request_fields`; `bind_principal` adds the principal once it is known) and
  ends with one ``http_request`` line (route template, status, duration);
- puts the request id on the request's server span (FastAPI's own, named
  ``METHOD /route/{template}``, which the answer's spans hang under);
- observes ``citewise_http_request_duration_seconds`` by route template (never
  the raw path: ``unmatched`` when no route matches), method and status class.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citewise.core.logging import request_fields
from citewise.core.metrics import REQUEST_LATENCY

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
UNMATCHED = "unmatched"
PRINCIPAL_SPAN_FIELDS = ("tenant_id", "credential_id")
QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
"""Routes polled by machines: their request lines are logged at debug level."""


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-ID`` if it is safe to echo and log, else a new uuid4 hex."""
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            candidate: str = value.decode("latin-1")
            if REQUEST_ID_PATTERN.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The path template of the route that handled the request (``unmatched`` if none).

    Read after the app ran: the router puts the matched route in the scope (a 404
    or 405 has none).
    """
    route: Any = scope.get("route")
    return str(getattr(route, "path_format", None) or UNMATCHED)


class ObservabilityMiddleware:
    """Request id, log fields and latency histogram of every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request, observed from its start to its response's last byte."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        method = scope["method"]
        span = trace.get_current_span()  # FastAPI's server span of this request
        span.set_attribute("citewise.request_id", request_id)
        with request_fields(request_id=request_id, method=method) as fields:
            status = 500  # unless a response starts

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = [
                        (k, v)
                        for k, v in message.get("headers", [])
                        if k.lower() != REQUEST_ID_HEADER
                    ]
                    headers.append((REQUEST_ID_HEADER, request_id.encode()))
                    message = {**message, "headers": headers}
                    for field in PRINCIPAL_SPAN_FIELDS:  # bound by now if a credential was checked
                        if fields.get(field):
                            span.set_attribute(f"citewise.{field}", fields[field])
                await send(message)  # FastAPI's span ends with the last body message

            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = fields["route"] = route_of(scope)
                REQUEST_LATENCY.labels(
                    route=route, method=method, status=f"{status // 100}xx"
                ).observe(elapsed)
                level = log.debug if route in QUIET_ROUTES else log.info
                level("http_request", status=status, duration_ms=round(elapsed * 1000, 1))
