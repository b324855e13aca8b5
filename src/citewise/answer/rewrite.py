"""Query rewriting: a follow-up question in a conversation becomes a standalone search query.

"And for contractors?" after "How many vacation days do employees get?" must
search for contractors' vacation days. With a generating tier available the LLM
rewrites the question; otherwise (or when it fails or drifts) a deterministic
rule carries the previous question's key terms into the query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import structlog
from pydantic import BaseModel, Field

from citewise.answer.support import content_terms
from citewise.answer.tiers import ChatTier

log = structlog.get_logger(__name__)

MAX_TURNS = 6
_FOLLOW_UP = re.compile(
    r"^(and|but|also|what about|how about|what if|same|then|so|or)\b"
    r"|\b(it|its|it's|they|them|their|this|that|these|those|there|he|she|his|her|one|ones)\b",
    re.IGNORECASE,
)
_REWRITE_PROMPT = """Rewrite the user's last question so that it can be understood without \
the conversation. Keep its meaning and language, resolve words like "it", "they" or "that", \
and add the subject from earlier turns when the question leaves it out. Reply with the \
rewritten question only. If it is already standalone, repeat it unchanged."""


class Turn(BaseModel):
    """One message of a conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(..., max_length=4000)


def needs_context(question: str, history: Sequence[Turn]) -> bool:
    """Whether `question` looks like a follow-up that depends on earlier turns."""
    if not any(t.role == "user" for t in history):
        return False
    return bool(_FOLLOW_UP.search(question)) or len(content_terms(question)) <= 2


def rule_rewrite(question: str, history: Sequence[Turn]) -> str:
    """Deterministic rewrite: prefix the last user question when this one is a follow-up."""
    if not needs_context(question, history):
        return question
    previous = next(t.content for t in reversed(history) if t.role == "user")
    return f"{previous.strip()} {question.strip()}"


class QueryRewriter:
    """Makes standalone search queries from follow-up questions.

    Args:
        chat: A generating tier for LLM rewriting, or None for the rule only.
    """

    def __init__(self, chat: ChatTier | None = None) -> None:
        self.chat = chat

    def rewrite(self, question: str, history: Sequence[Turn]) -> tuple[str, str]:
        """Return (standalone query, method) where method is none, rule or llm."""
        turns = list(history)[-MAX_TURNS:]
        if not needs_context(question, turns):
            return question, "none"
        if self.chat is not None:
            rewritten = self._llm_rewrite(question, turns)
            if rewritten is not None:
                return rewritten, "llm"
        return rule_rewrite(question, turns), "rule"

    def _llm_rewrite(self, question: str, turns: list[Turn]) -> str | None:
        assert self.chat is not None
        transcript = "\n".join(f"{t.role}: {t.content[:600]}" for t in turns)
        messages = [
            ("system", _REWRITE_PROMPT),
            ("user", f"Conversation:\n{transcript}\n\nLast question: {question}"),
        ]
        try:
            text = self.chat.generate(messages).text.strip().strip('"').splitlines()[0]
        except Exception as exc:  # any client failure falls back to the rule
            log.warning("rewrite_failed", error=repr(exc))
            return None
        # Guard against drift: the rewrite must keep the question's own key terms.
        if not text or not content_terms(question) <= content_terms(text):
            log.info("rewrite_rejected", rewritten=text[:200])
            return None
        return text
