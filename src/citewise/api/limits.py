"""A request body size limit enforced while the body streams in (HTTP 413).

Uploads (``multipart/form-data``) may be up to ``ingest.max_request_mb``; any
other body (JSON) up to ``api.max_json_kb``, far less. A request whose
``Content-Length`` is over the limit is answered at once without reading it;
a chunked one is cut off as soon as it passes the limit. Either way
the client gets the usual JSON error (code ``upload_too_large``, or
``request_too_large`` for a non-multipart body).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citewise.api.errors import error_body
from citewise.core.errors import RequestTooLargeError, UploadTooLargeError


class _BodyTooLargeError(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413.

    Args:
        app: The ASGI app.
        max_bytes: Largest accepted multipart (upload) body.
        json_max_bytes: Largest accepted other body (None: `max_bytes`).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, json_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.json_max_bytes = max_bytes if json_max_bytes is None else json_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = _is_multipart(scope)
        limit = self.max_bytes if upload else self.json_max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, upload)
            return
        state: dict[str, Any] = {"seen": 0, "over": False, "started": False}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > limit:
                    state["over"] = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                return  # the app's reaction to the cut-off body is replaced by 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._refuse(send, upload)

    async def _refuse(self, send: Send, upload: bool) -> None:
        error = (
            UploadTooLargeError(
                f"the request is over the {self.max_bytes / (1024 * 1024):g} MB upload limit; "
                "send fewer or smaller files per request"
            )
            if upload
            else RequestTooLargeError(
                f"the request body is over the {self.json_max_bytes / 1024:g} KiB limit"
            )
        )
        body = json.dumps(error_body(error.code, str(error))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return bool(value.lower().startswith(b"multipart/form-data"))
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
