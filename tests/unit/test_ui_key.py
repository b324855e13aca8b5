"""The Streamlit page sends an API key: from CITEWISE_UI__API_KEY, or pasted in the sidebar."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "src" / "citewise" / "ui" / "app.py")


def test_without_a_key_the_sidebar_asks_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITEWISE_UI__API_KEY", raising=False)
    app = AppTest.from_file(APP).run()
    assert [t.label for t in app.sidebar.text_input] == ["API key"]
    app.chat_input[0].set_value("How long must my password be?").run()
    assert "Paste an API key" in app.warning[0].value


def test_a_configured_key_is_used_without_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITEWISE_UI__API_KEY", "cw_abcdefgh_" + "x" * 43)
    monkeypatch.setenv("CITEWISE_UI__API_URL", "http://127.0.0.1:9")  # nothing listens
    app = AppTest.from_file(APP).run()
    assert not app.sidebar.text_input
    app.chat_input[0].set_value("How long must my password be?").run(timeout=30)
    assert "not reachable" in app.error[0].value
