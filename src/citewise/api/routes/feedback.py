"""Feedback: a user rates an answer served to them; admins review their tenant's ratings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from citewise.answer.feedback import FeedbackPage, FeedbackView
from citewise.api.deps import (
    FeedbackDep,
    PrincipalDep,
    TenantPrincipalDep,
    get_principal,
    get_tenant_principal,
)
from citewise.api.errors import MAX_OFFSET, error_responses
from citewise.api.ratelimit import request_limit
from citewise.api.schemas import FeedbackCreate

router = APIRouter(tags=["feedback"])


@router.post(
    "/v1/feedback",
    response_model=FeedbackView,
    dependencies=[Depends(request_limit(get_principal))],
    responses=error_responses(400, 401, 404, 413, 422, 429),
)
def rate_answer(body: FeedbackCreate, principal: PrincipalDep, store: FeedbackDep) -> FeedbackView:
    """Rate an answer served to you (`answer_id` from /v1/ask), up or down, with a comment.

    Stored with the question, the answer, its citations and the passages
    retrieved. Rating the same answer again replaces your rating. An answer id
    that was not served to you (another user's or tenant's) is 404.
    """
    return store.rate(
        principal,
        body.answer_id,
        body.rating,
        comment=body.comment,
        correction=body.correction,
    )


@router.get(
    "/v1/tenants/{tenant}/feedback",
    response_model=FeedbackPage,
    dependencies=[Depends(request_limit(get_tenant_principal))],
    responses=error_responses(401, 403, 404, 422, 429),
)
def list_feedback(
    principal: TenantPrincipalDep,
    store: FeedbackDep,
    rating: Annotated[Literal["up", "down"] | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="Rated at or after (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> FeedbackPage:
    """The tenant's feedback with the answers rated, most recent first (admin)."""
    return store.list_feedback(
        principal.tenant_id, rating=rating, since=since, limit=limit, offset=offset
    )
