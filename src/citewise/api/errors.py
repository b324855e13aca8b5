"""The one place that maps errors to HTTP statuses, in one JSON error shape.

Every error response is ``{"error": {"code", "message"}}`` (a 422 adds
``details``, one entry per invalid field): Citewise errors, FastAPI's
validation errors, routing's 404 and 405, the body limit's 413, rate limits'
429, and any unexpected exception (500 with a generic message; the traceback
goes to the log with the request id, never to the client).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citewise.core.errors import (
    AnswerError,
    AuthenticationError,
    CitewiseError,
    ConflictError,
    DatabaseUnavailableError,
    FileTooLargeError,
    IndexLockedError,
    IngestError,
    LLMUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    StorageFullError,
    TenantError,
    UnavailableError,
    UnsupportedFileError,
    UploadTooLargeError,
)

log = structlog.get_logger(__name__)

STATUS_BY_ERROR: list[tuple[type[CitewiseError], int]] = [
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (RateLimitedError, 429),
    (FileTooLargeError, 413),
    (UploadTooLargeError, 413),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UnsupportedFileError, 415),
    (IngestError, 422),
    (TenantError, 400),
    (LLMUnavailableError, 503),
    (AnswerError, 422),
    (IndexLockedError, 503),
    (UnavailableError, 503),
    (StorageFullError, 507),
]


def status_for(error: CitewiseError) -> int:
    """HTTP status for a Citewise error (500 for anything unexpected)."""
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON error shape every endpoint uses."""
    return {"error": {"code": code, "message": message}}


class FieldError(BaseModel):
    """One invalid part of a request (422)."""

    loc: list[str | int] = Field(description="Where: 'body', 'query' or 'path', then the field.")
    msg: str
    type: str


class ErrorInfo(BaseModel):
    """What went wrong: a stable machine code and a message for people."""

    code: str = Field(description="Stable error code, e.g. not_found, unauthenticated.")
    message: str
    details: list[FieldError] | None = Field(
        default=None, description="422 only: each invalid field."
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


ERROR_DESCRIPTIONS = {
    400: "The body cannot be parsed (e.g. not UTF-8), or a value is not valid for this "
    "tenant (e.g. a user id).",
    401: "Missing, invalid, expired or revoked credentials.",
    403: "The credential's role may not do this (an admin one is needed).",
    404: "No such resource for this credential (another tenant's or user's looks the same).",
    409: "The resource is not in a state that allows this.",
    413: "The request body is over the size limit.",
    415: "The upload's type is not accepted.",
    422: "The request is malformed: invalid JSON, a missing, extra or invalid field.",
    429: "Rate limited (requests or LLM tokens per minute); see Retry-After.",
    503: "A component is unavailable (database, rate-limit store, index locked, no LLM "
    "tier); retry after Retry-After seconds.",
    507: "The server's storage is full; nothing of the upload was kept.",
}

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "upload_too_large",
}
MAX_OFFSET = 1_000_000
"""Largest ``offset`` of a paged list (a bound keeps it inside a database integer)."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries: these statuses with the error model."""
    return {
        status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


async def _handle(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CitewiseError)
    headers = exc.headers if isinstance(exc, RateLimitedError) else None
    if isinstance(exc, AuthenticationError):
        headers = {"WWW-Authenticate": 'Bearer realm="citewise"'}
    if isinstance(exc, UnavailableError):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(
        status_code=status_for(exc), content=error_body(exc.code, str(exc)), headers=headers
    )


async def _handle_database_down(request: Request, exc: Exception) -> JSONResponse:
    # The connection failed or broke (server down, restarting, out of connections).
    # The pool pings before each use, so the first request after recovery succeeds.
    log.warning("database_unavailable", path=request.url.path, error=str(exc).splitlines()[0])
    return await _handle(
        request,
        DatabaseUnavailableError("the metadata database is unreachable; retry shortly"),
    )


async def _handle_data_error(_request: Request, _exc: Exception) -> JSONResponse:
    # PostgreSQL refuses some values SQLite takes (a NUL character in an id or a
    # title): the request is at fault, not the server, and nothing was written.
    return JSONResponse(
        status_code=422,
        content=error_body(
            "invalid_input", "the request holds a value that cannot be stored (a NUL character?)"
        ),
    )


async def _handle_http(_request: Request, exc: Exception) -> JSONResponse:
    # Routing's 404 and 405, and any HTTPException a dependency raises.
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = HTTP_CODES.get(status, f"http_{status}")
    message = exc.detail if isinstance(exc.detail, str) else _phrase(status)
    return JSONResponse(
        status_code=status, content=error_body(code, message.lower()), headers=exc.headers
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


async def _handle_validation(_request: Request, exc: Exception) -> JSONResponse:
    # The offending input is not echoed back (it may be large, or a secret).
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    body: dict[str, Any] = error_body("invalid_request", f"{where}: {first['msg']}".lstrip(": "))
    body["error"]["details"] = details
    return JSONResponse(status_code=422, content=body)


class UnhandledErrorMiddleware:
    """Answer an unexpected exception with a generic 500 in the error shape.

    Pure ASGI, inside the observability middleware: the traceback is logged
    with the request's id and principal, the client gets only the code
    ``internal_error`` and the request id to quote. An exception after the
    response started (a stream) is logged and re-raised: the connection closes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; turn an exception before the response into a 500."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled_error", path=scope.get("path", ""))
            if started:
                raise
            body = json.dumps(
                error_body(
                    "internal_error",
                    "internal error; quote the X-Request-ID header when reporting it",
                )
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    """Register the error handlers on `app` (add `UnhandledErrorMiddleware` too)."""
    app.add_exception_handler(CitewiseError, _handle)
    app.add_exception_handler(DataError, _handle_data_error)
    app.add_exception_handler(OperationalError, _handle_database_down)
    app.add_exception_handler(InterfaceError, _handle_database_down)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(RequestValidationError, _handle_validation)
