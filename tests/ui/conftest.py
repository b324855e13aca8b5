"""A real Citewise for the UI tests: `citewise serve` on loopback over an ingested sample set.

One API server per test session (tenant ``acme``: the handbook, the IT onboarding
notes and the security policy PDF, readable by everyone), with an admin key and a
user key. AppTest pages and the browser tests talk to it over HTTP, as the UI does
in production.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from citewise.ui.client import CitewiseClient
from tests.servers import Server, free_port

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "kestrel"
SAMPLE_FILES = ("employee-handbook.md", "it-onboarding.txt", "information-security-policy.pdf")
TENANT = "acme"
VIEWS = Path(__file__).resolve().parents[2] / "src" / "citewise" / "ui" / "views"
RUN_S = 180


@dataclass(frozen=True)
class LiveApi:
    """The running API: its address and two keys of tenant ``acme``."""

    url: str
    admin_key: str
    user_key: str
    server: Server

    def client(self, key: str) -> CitewiseClient:
        """A UI client signed in with `key`."""
        return CitewiseClient(self.url, key, timeout_s=120)


@pytest.fixture(scope="session")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """`citewise serve` over the ingested sample files, with an admin and a user key."""
    root = tmp_path_factory.mktemp("ui-api")
    server = Server(root / "data", free_port(), root / "server.log")
    ingest = subprocess.run(
        [sys.executable, "-m", "citewise.cli", "ingest",
         *(str(SAMPLES / name) for name in SAMPLE_FILES), "--tenant", TENANT],
        env=server.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    admin_key = server.create_key(TENANT, "admin")
    user_key = server.create_key(TENANT, "user")
    server.start(timeout=300)
    try:
        yield LiveApi(server.url, admin_key, user_key, server)
    finally:
        server.stop()


def open_view(name: str, client: CitewiseClient, *, timeout_s: float = RUN_S) -> AppTest:
    """Run the UI page ``views/<name>.py`` once, signed in with `client`."""
    at = AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=timeout_s)
    at.session_state["client"] = client
    at.session_state["me"] = client.me()
    return at.run()


def shown_text(at: AppTest) -> str:
    """Everything a page says in markdown, captions and alerts, one element a line."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [s.value for s in at.success] + [w.value for w in at.warning]
    parts += [e.value for e in at.error] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)
