"""Tier failure classification, output checks and the NOT_FOUND hold-back of streams."""

from __future__ import annotations

import httpx
import openai

from citewise.answer.pipeline import _held_back
from citewise.answer.tiers import Generation, failure_reason, is_transient, output_fault

_REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def _status(code: int) -> openai.APIStatusError:
    response = httpx.Response(code, request=_REQUEST)
    error_type = {429: openai.RateLimitError, 400: openai.BadRequestError}.get(
        code, openai.InternalServerError
    )
    return error_type("x", response=response, body=None)


def test_only_fast_transient_errors_are_retried() -> None:
    assert is_transient(openai.APIConnectionError(request=_REQUEST))
    assert is_transient(_status(429)) and is_transient(_status(503))
    assert not is_transient(openai.APITimeoutError(request=_REQUEST))  # used the whole wait
    assert not is_transient(_status(400))
    assert not is_transient(ValueError("bad json"))


def test_failure_reasons_are_short_and_stable() -> None:
    assert failure_reason(openai.APITimeoutError(request=_REQUEST)) == "timeout"
    assert failure_reason(openai.APIConnectionError(request=_REQUEST)) == "connection"
    assert failure_reason(_status(503)) == "http_503"
    assert failure_reason(ValueError("Expecting value")) == "malformed"
    assert failure_reason(RuntimeError("?")) == "error"


def test_output_checks_empty_and_invented_citations() -> None:
    assert output_fault("", {1, 2}) == "empty"
    assert output_fault(" [1]. ", {1, 2}) == "empty"
    assert output_fault("Fourteen characters [1].", {1, 2}) is None
    assert output_fault("Fourteen characters [1][9].", {1, 2}) == "invalid_citations"
    assert output_fault("Rewritten question?", None) is None


def _final(text: str) -> Generation:
    return Generation(text=text, model="m")


def test_held_back_hides_a_streamed_not_found_but_not_an_answer() -> None:
    declined = list(_held_back(iter(["NOT", "_FO", "UND", _final("NOT_FOUND")])))
    assert [i for i in declined if isinstance(i, str)] == []
    parts = ["N", "ot", " at all", " [1].", _final("Not at all [1].")]
    answer = list(_held_back(iter(parts)))  # "Not" may still become NOT_FOUND: held
    assert [i for i in answer if isinstance(i, str)] == ["Not at all", " [1]."]
    assert isinstance(answer[-1], Generation)
    short = list(_held_back(iter([" ", "NO", _final("NO")])))
    assert [i for i in short if isinstance(i, str)] == [" NO"]
