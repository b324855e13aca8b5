"""The original file of a document, for anyone of the tenant allowed to read it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from citewise.api.deps import PrincipalDep, RuntimeDep, get_principal
from citewise.api.errors import error_responses
from citewise.api.ratelimit import request_limit
from citewise.ingest.sources import find_source, open_source, read_blocks

router = APIRouter(
    prefix="/v1/documents",
    tags=["documents"],
    dependencies=[Depends(request_limit(get_principal))],
    responses=error_responses(401, 404, 422, 429),
)

ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
    }
)
"""Types a browser would run when shown inline: shown as plain text instead."""
_FILENAME_UNSAFE = frozenset('"\\;%')


def content_disposition(filename: str, *, inline: bool) -> str:
    """A ``Content-Disposition`` value: an ASCII fallback name and the exact UTF-8 one."""
    fallback = "".join(
        c if 32 <= ord(c) < 127 and c not in _FILENAME_UNSAFE else "_" for c in filename
    )
    kind = "inline" if inline else "attachment"
    exact = quote(filename, safe="")
    return f"{kind}; filename=\"{fallback or 'document'}\"; filename*=UTF-8''{exact}"


@router.get(
    "/{doc_id}/source",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file's bytes; its type is guessed from its name.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "headers": {
                "Content-Disposition": {
                    "description": "attachment (or inline) with the uploaded file's name.",
                    "schema": {"type": "string"},
                },
                "X-Citewise-Version": {
                    "description": "The document version served.",
                    "schema": {"type": "integer"},
                },
            },
        }
    },
)
def document_source(
    doc_id: Annotated[str, Path(min_length=1, max_length=255)],
    principal: PrincipalDep,
    runtime: RuntimeDep,
    version: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="An earlier version, while its file is stored."),
    ] = None,
    inline: Annotated[
        bool, Query(description="Ask the browser to show it rather than download it.")
    ] = False,
) -> StreamingResponse:
    """Download the uploaded file of a document you may read (its indexed version by default).

    A document of another tenant, outside your ACL groups, deleted, or unknown
    is 404 alike; so is a version whose file is no longer stored.
    """
    source = find_source(runtime.db, runtime.files, principal, doc_id, version)
    handle, size = open_source(runtime.files, source)
    media_type = source.media_type
    if inline and media_type in ACTIVE_TYPES:
        media_type = "text/plain; charset=utf-8"
    headers = {
        "Content-Disposition": content_disposition(source.filename, inline=inline),
        "X-Citewise-Version": str(source.version),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "ETag": f'"{source.sha256}"',
    }
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(read_blocks(handle), media_type=media_type, headers=headers)
