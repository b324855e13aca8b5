"""A user's conversations: create, list, read with messages, delete.

Questions are asked in a conversation through ``POST /v1/ask`` and
``/v1/ask/stream`` with ``conversation_id``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from citewise.answer.conversations import ConversationDetail, ConversationPage, ConversationView
from citewise.api.deps import ConversationsDep, UserPrincipalDep, get_user_principal
from citewise.api.errors import MAX_OFFSET, error_responses
from citewise.api.ratelimit import request_limit
from citewise.api.schemas import ConversationCreate

router = APIRouter(
    prefix="/v1/conversations",
    tags=["conversations"],
    dependencies=[Depends(request_limit(get_user_principal))],
    responses=error_responses(400, 401, 404, 413, 422, 429),
)


@router.post("", status_code=201, response_model=ConversationView)
def create_conversation(
    principal: UserPrincipalDep,
    store: ConversationsDep,
    response: Response,
    body: ConversationCreate | None = None,
) -> ConversationView:
    """Start a conversation (untitled: the first question becomes its title)."""
    created = store.create(principal, body.title if body is not None else "")
    response.headers["Location"] = f"/v1/conversations/{created.id}"
    return created


@router.get("", response_model=ConversationPage)
def list_conversations(
    principal: UserPrincipalDep,
    store: ConversationsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ConversationPage:
    """Your conversations, most recently active first."""
    return store.list_conversations(principal, limit=limit, offset=offset)


@router.get("/{conversation_id}", response_model=ConversationDetail)
def get_conversation(
    conversation_id: str, principal: UserPrincipalDep, store: ConversationsDep
) -> ConversationDetail:
    """A conversation with its messages, oldest first.

    Each question carries the query searched for it; each answer its citations
    (the numbers served), per-sentence support, verification and tier.
    """
    return store.get(principal, conversation_id)


@router.delete("/{conversation_id}", status_code=204)
def delete_conversation(
    conversation_id: str, principal: UserPrincipalDep, store: ConversationsDep
) -> Response:
    """Delete a conversation and all its messages."""
    store.delete(principal, conversation_id)
    return Response(status_code=204)
