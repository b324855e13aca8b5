"""Prompt-injection guardrails for questions and retrieved passages.

Passages are data: they reach the model fenced in ``<passage>`` elements under a
system prompt that says so. On top of that isolation, a pattern detector finds
the usual injection moves (override earlier instructions, reveal the prompt,
change role, forge chat-template or passage markup, smuggle a tenant switch):

- a question that matches is refused before retrieval (``guard.questions =
  block``) or only logged (``flag``);
- a passage sentence that matches is cut out of what the model sees and of
  what answers are verified against (``guard.passages = strip``), so a planted
  instruction can neither steer the model nor make its obedient output look
  supported. The stored document and its citation are untouched.

Patterns are deliberately specific (imperatives aimed at the assistant); they
are a screen, not a proof, which is why verification and tenant-scoped
retrieval stand behind them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from citewise.answer.sentences import split_sentences

_PATTERNS: dict[str, str] = {
    "override": (
        r"\b(ignore|disregard|forget|override|bypass|skip)\b[^.!?\n]{0,40}\b(previous|prior|"
        r"above|earlier|preceding|all|any|your|the|these|those)\b[^.!?\n]{0,30}\b(instructions?|"
        r"rules?|prompts?|directions?|guidelines?|constraints?|polic(?:y|ies)|context)\b"
    ),
    "new_instructions": (
        r"\b(new|updated|real|actual|hidden|secret|additional)\s+(system\s+)?(instructions?|"
        r"rules?|directives?|orders?)\s*(:|are\b|follow\b)"
    ),
    "reveal_prompt": (
        r"\b(reveal|show|print|repeat|output|display|leak|tell me|give me|what (is|are|was|were))\b"
        r"[^.!?\n]{0,40}\b(system|initial|original|hidden|developer|your)\s+(prompt|"
        r"instructions?|message|rules)\b"
    ),
    "role_change": (
        r"\b(you are now|from now on,? you|act as|pretend (to be|you are)|roleplay as|"
        r"you must now|switch to|enter)\b[^.!?\n]{0,40}\b(mode|assistant|ai|model|bot|"
        r"dan|jailbreak|unrestricted|developer|admin|root|persona)\b"
    ),
    "jailbreak": r"\b(jailbreak|do anything now|DAN mode|developer mode|god mode)\b",
    "markup": (
        r"<\|?(im_start|im_end|system|endoftext|eot_id|start_header_id)\|?>|\[/?INST\]|"
        r"<<\s*/?SYS\s*>>|</?\s*passage\b|^\s*#{2,}\s*(system|instruction)s?\b"
    ),
    "tenant_switch": (
        r"\b(switch|change|use|access|answer from|search|query)\b[^.!?\n]{0,30}\b(tenant|"
        r"another (company|organi[sz]ation|customer)|other (tenants?|companies|customers))\b"
    ),
    "exfiltrate": (
        r"\b(send|post|upload|forward|exfiltrate|email)\b[^.!?\n]{0,40}\b(to|at)\b[^.!?\n]{0,40}"
        r"(https?://|www\.|@[a-z0-9-]+\.[a-z]{2,})"
    ),
    "output_control": (
        r"\b(always|only|instead)\s+(respond|reply|answer|say|output|write)\b[^.!?\n]{0,40}"
        r"(with|that|exactly|\")|\b(do not|don't|never)\s+(cite|include|add|use)\s+"
        r"(any\s+)?(citations?|sources?|references?|passage numbers?)\b"
    ),
}
_COMPILED = {name: re.compile(p, re.IGNORECASE | re.MULTILINE) for name, p in _PATTERNS.items()}
_TEMPLATE_TOKENS = re.compile(
    r"<\|[a-z_]{2,20}\|>|\[/?INST\]|<<\s*/?SYS\s*>>|</?\s*passage[^>]*>", re.IGNORECASE
)

REFUSAL = (
    "I can only answer questions about your documents; this request looks like an "
    "attempt to change my instructions."
)


@dataclass(frozen=True)
class Finding:
    """Which injection patterns a text matched."""

    kinds: list[str]

    def __bool__(self) -> bool:
        return bool(self.kinds)


def detect(text: str) -> Finding:
    """The injection patterns that `text` matches (empty when none)."""
    return Finding([name for name, pattern in _COMPILED.items() if pattern.search(text)])


def neutralize(text: str) -> str:
    """`text` with chat-template and passage markup replaced by spaces."""
    return _TEMPLATE_TOKENS.sub(" ", text)


def strip_injections(passage: str) -> tuple[str, list[str]]:
    """The passage without its sentences that match an injection pattern.

    Returns:
        The cleaned passage (markup neutralized) and the kinds that were found.
    """
    kinds: list[str] = []
    kept: list[str] = []
    for sentence in split_sentences(passage):
        finding = detect(sentence.text)
        if finding:
            kinds += [k for k in finding.kinds if k not in kinds]
        else:
            kept.append(sentence.text)
    if not kinds:
        return neutralize(passage), []
    return neutralize(" ".join(kept)), kinds
