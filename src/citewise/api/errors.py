"""The one place that maps Citewise errors to HTTP statuses and one JSON error shape."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from citewise.core.errors import (
    AnswerError,
    CitewiseError,
    ConflictError,
    FileTooLargeError,
    IndexLockedError,
    IngestError,
    LLMUnavailableError,
    NotFoundError,
    TenantError,
    UnsupportedFileError,
    UploadTooLargeError,
)

STATUS_BY_ERROR: list[tuple[type[CitewiseError], int]] = [
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


async def _handle(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CitewiseError)
    return JSONResponse(status_code=status_for(exc), content=error_body(exc.code, str(exc)))


def install_error_handlers(app: FastAPI) -> None:
    """Register the Citewise error handler on `app`."""
    app.add_exception_handler(CitewiseError, _handle)
