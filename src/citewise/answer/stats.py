"""A tenant's answers in figures: answers served, declined and degraded, and their ratings."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import case, func, select

from citewise.core.db import AnswerFeedbackRecord, Database, ServedAnswerRecord, utcnow

RECENT_DAYS = 7


class AnswerStats(BaseModel):
    """Answers the API served to the tenant's users."""

    total: int
    last_7_days: int = Field(description="Served in the last 7 days.")
    declined: int = Field(description="Answers that declined (no support in the documents).")
    degraded: int = Field(description="Answers from a fallback tier (the preferred was down).")
    last_answer_at: datetime | None = None


class FeedbackStats(BaseModel):
    """Users' ratings of those answers (one per user and answer)."""

    up: int
    down: int
    with_comment: int = Field(description="Ratings that carry a comment or a correction.")


def answer_stats(
    db: Database, tenant_id: str, *, now: datetime | None = None
) -> tuple[AnswerStats, FeedbackStats]:
    """Count a tenant's served answers and ratings (two aggregate queries)."""
    since = (now or utcnow()) - timedelta(days=RECENT_DAYS)
    declined = ServedAnswerRecord.answer["declined"].as_boolean()
    degraded = ServedAnswerRecord.answer["degraded"].as_boolean()
    with db.session() as session:
        total, recent, n_declined, n_degraded, last = session.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(case((ServedAnswerRecord.created_at >= since, 1), else_=0)), 0
                ),
                func.coalesce(func.sum(case((declined, 1), else_=0)), 0),
                func.coalesce(func.sum(case((degraded, 1), else_=0)), 0),
                func.max(ServedAnswerRecord.created_at),
            ).where(ServedAnswerRecord.tenant_id == tenant_id)
        ).one()
        up, down, commented = session.execute(
            select(
                func.coalesce(func.sum(case((AnswerFeedbackRecord.rating == "up", 1), else_=0)), 0),
                func.coalesce(
                    func.sum(case((AnswerFeedbackRecord.rating == "down", 1), else_=0)), 0
                ),
                func.coalesce(
                    func.sum(
                        case(
                            (
                                (AnswerFeedbackRecord.comment != "")
                                | (AnswerFeedbackRecord.correction != ""),
                                1,
                            ),
                            else_=0,
                        )
                    ),
                    0,
                ),
            ).where(AnswerFeedbackRecord.tenant_id == tenant_id)
        ).one()
    return (
        AnswerStats(
            total=int(total),
            last_7_days=int(recent),
            declined=int(n_declined),
            degraded=int(n_degraded),
            last_answer_at=last,
        ),
        FeedbackStats(up=int(up), down=int(down), with_comment=int(commented)),
    )
