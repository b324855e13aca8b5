"""Signing in: the UI asks for a key, or signs in with CITEWISE_UI__API_KEY by itself."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "src" / "citewise" / "ui" / "app.py")


def test_without_a_key_the_sign_in_page_asks_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITEWISE_UI__API_KEY", raising=False)
    app = AppTest.from_file(APP).run()
    assert [t.label for t in app.text_input] == ["API key"]
    assert not app.chat_input  # nothing to ask before signing in
    app.button[0].click().run()
    assert [e.value for e in app.error] == ["Enter your API key first."]


def test_a_configured_key_that_cannot_sign_in_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITEWISE_UI__API_KEY", "cw_abcdefgh_" + "x" * 43)
    monkeypatch.setenv("CITEWISE_UI__API_URL", "http://127.0.0.1:9")  # nothing listens
    app = AppTest.from_file(APP).run(timeout=30)
    assert app.error[0].value == (
        "The configured API key could not sign in: Citewise cannot be reached at "
        "http://127.0.0.1:9. Check that the API is running."
    )
    assert [t.label for t in app.text_input] == ["API key"]
