"""A request body size limit enforced while the body streams in (HTTP 413).

A request whose ``Content-Length`` is over the limit is answered at once without
reading it; a chunked one is cut off as soon as it passes the limit. Either way
the client gets the usual JSON error (code ``upload_too_large``).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citewise.api.errors import error_body
from citewise.core.errors import UploadTooLargeError


class _BodyTooLargeError(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413.

    Args:
        app: The ASGI app.
        max_bytes: Largest accepted body.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        state: dict[str, Any] = {"seen": 0, "over": False, "started": False}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.max_bytes:
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
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        error = UploadTooLargeError(
            f"the request is over the {self.max_bytes / (1024 * 1024):g} MB upload limit; "
            "send fewer or smaller files per request"
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


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
