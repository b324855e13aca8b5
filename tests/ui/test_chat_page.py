"""The chat page and the sign-in flow, run by Streamlit's AppTest against the live API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from citewise.ui.client import CitewiseClient
from tests.ui.conftest import LiveApi, open_view, shown_text

UI = Path(__file__).resolve().parents[2] / "src" / "citewise" / "ui"
RUN_S = 180

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture()
def user(live_api: LiveApi) -> Iterator[CitewiseClient]:
    with live_api.client(live_api.user_key) as client:
        yield client


def test_nobody_signed_in_is_asked_to_sign_in() -> None:
    at = AppTest.from_file(str(UI / "views" / "chat.py")).run()
    assert [i.value for i in at.info] == ["Sign in with your Citewise API key to continue."]


def test_the_app_signs_in_with_a_key_and_refuses_a_wrong_one(
    live_api: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITEWISE_UI__API_URL", live_api.url)
    monkeypatch.delenv("CITEWISE_UI__API_KEY", raising=False)
    at = AppTest.from_file(str(UI / "app.py"), default_timeout=RUN_S).run()
    at.text_input[0].input("cw_wrong_key")
    at.button[0].click().run()
    assert at.error and at.error[0].value.startswith("Your API key was not accepted")
    at.text_input[0].input(live_api.user_key)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["me"]["role"] == "user"
    # (AppTest stays on the page it ran; a browser lands on the default page, the chat.)
    at.switch_page("views/chat.py").run()
    assert "Ask Citewise" in [t.value for t in at.title]


def test_a_question_is_answered_with_citations_and_groundedness(user: CitewiseClient) -> None:
    at = open_view("chat", user)
    at.chat_input[0].set_value("How many hours is a full-time working week?").run()
    assert not at.exception
    shown = shown_text(at)
    assert "37.5" in shown
    assert "Grounded" in shown
    citations = [b.label for b in at.button if b.label.startswith("[1]")]
    assert citations and "Employee Handbook" in citations[0]
    # The conversation was stored, named after the question, and is listed in the sidebar.
    conversation_id = at.session_state["conversation_id"]
    assert user.conversation(conversation_id)["title"].startswith("How many hours")
    assert any(b.label.startswith("How many hours") for b in at.sidebar.button)


def test_an_unanswerable_question_is_declined_in_plain_words(user: CitewiseClient) -> None:
    at = open_view("chat", user)
    at.chat_input[0].set_value("What is the airspeed velocity of an unladen swallow?").run()
    assert [w.value for w in at.warning] == [
        "None of the documents you can read seem to cover this question."
    ]


def test_a_stored_conversation_resumes_and_a_new_chat_starts_empty(user: CitewiseClient) -> None:
    conversation = user.new_conversation()
    user.ask("Within which window must my working time fall?", conversation_id=conversation["id"])
    at = open_view("chat", user)
    title = user.conversation(conversation["id"])["title"]
    next(b for b in at.sidebar.button if b.label == title).click().run()
    assert at.session_state["conversation_id"] == conversation["id"]
    assert "07:00" in shown_text(at)
    # Resumed answers keep their id: they can still be rated.
    assert at.session_state["turns"][-1]["answer"]["answer_id"]
    next(b for b in at.sidebar.button if b.label == "New chat").click().run()
    assert at.session_state["turns"] == [] and at.session_state["conversation_id"] is None


def test_regenerate_asks_the_last_question_again(user: CitewiseClient) -> None:
    at = open_view("chat", user)
    at.chat_input[0].set_value("At what rate is approved overtime paid?").run()
    first = at.session_state["turns"][-1]["answer"]["answer_id"]
    next(b for b in at.button if b.label == "Regenerate").click().run()
    turns = at.session_state["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[-1]["answer"]["answer_id"] != first
    assert "1.5" in shown_text(at)
