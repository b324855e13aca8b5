"""The UI in a real browser: Debian's Chromium, driven by Playwright, against a real API.

`citewise ui` runs in a child process pointed at the session's `citewise serve`
(tests/ui/conftest.py); nothing is faked between the browser and the index. Each
test saves screenshots under ``CITEWISE_TEST_ARTIFACTS`` (default
``artifacts/screenshots``) for people to look at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port
from tests.ui.conftest import SAMPLES, LiveApi
from tests.ui.eval_data import BASE_ID, HEAD_ID, write_run

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import BrowserContext, Page, expect  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(os.environ.get("CITEWISE_TEST_ARTIFACTS", "artifacts/screenshots"))
ANSWER_WAIT_MS = 120_000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


@pytest.fixture(scope="module")
def ui_url(live_api: LiveApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`citewise ui` on loopback, pointed at the live API (no preset key: users sign in)."""
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    env = {k: v for k, v in live_api.server.env.items() if k != "CITEWISE_UI__API_KEY"}
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "citewise.cli", "ui", "--api-url", live_api.url,
             "--port", str(port)],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Chromium with a fresh profile, at 1280x800."""
    with playwright_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture()
def page(browser: BrowserContext) -> Iterator[Page]:
    """A new tab (its own Streamlit session)."""
    tab = browser.new_page()
    try:
        yield tab
    finally:
        tab.close()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.wait_for_timeout(1500)  # charts and code blocks are drawn after the page settles
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, url: str, key: str) -> None:
    """Open the UI and sign in with `key`."""
    page.goto(url)
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in to")).to_be_visible()


def ask(page: Page, question: str) -> None:
    """Type a question into the chat box and send it."""
    box = page.get_by_placeholder("Ask a question about your documents")
    box.fill(question)
    box.press("Enter")


def test_sign_in_refuses_a_wrong_key(page: Page, ui_url: str) -> None:
    page.goto(ui_url)
    page.get_by_label("API key", exact=True).fill("cw_nope_notakey")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Your API key was not accepted")).to_be_visible()
    shot(page, "sign-in-refused")


def test_a_user_asks_opens_the_cited_passage_and_rates_the_answer(
    page: Page, ui_url: str, live_api: LiveApi
) -> None:
    sign_in(page, ui_url, live_api.user_key)
    expect(page.get_by_role("heading", name="Ask Citewise")).to_be_visible()
    ask(page, "How many hours is a full-time working week?")
    expect(page.get_by_text("Grounded")).to_be_visible(timeout=ANSWER_WAIT_MS)
    answer = page.get_by_test_id("stChatMessage").last
    expect(answer).to_contain_text("37.5")
    shot(page, "chat-answer")

    # The citation opens a panel: title, where, the supporting text highlighted, a download.
    answer.get_by_role("button", name=re.compile(r"^\[1\]")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Cited passage")).to_be_visible()
    expect(dialog.locator("mark")).to_contain_text("37.5")
    expect(dialog.get_by_role("button", name="Download the source document")).to_be_visible()
    with page.expect_download() as download:
        dialog.get_by_role("button", name="Download the source document").click()
    assert download.value.suggested_filename == "employee-handbook.md"
    assert (
        Path(download.value.path()).read_bytes() == (SAMPLES / "employee-handbook.md").read_bytes()
    )
    shot(page, "citation-panel")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Thumbs down with a comment; the API has it (admins read feedback back).
    answer.get_by_test_id("stFeedbackButton").nth(1).click()  # thumbs down
    answer.get_by_label("What was good or wrong? (optional)", exact=True).fill(
        "cite the contract too"
    )
    answer.get_by_role("button", name="Send feedback").click()
    expect(page.get_by_text("your feedback (thumbs down) was recorded")).to_be_visible()
    with live_api.client(live_api.admin_key) as admin:
        rows = admin.feedback_list("acme")
    assert any(row["comment"] == "cite the contract too" for row in rows)

    # The conversation is kept: a new chat, then resume it from the sidebar.
    page.get_by_role("button", name="New chat").click()
    expect(page.get_by_text("Ask a question about your organisation's documents")).to_be_visible()
    page.get_by_role("button", name="How many hours is a full-time working week?").click()
    expect(page.get_by_test_id("stChatMessage").last).to_contain_text("37.5")
    shot(page, "chat-resumed")


def test_an_unanswerable_question_is_declined_in_plain_words(
    page: Page, ui_url: str, live_api: LiveApi
) -> None:
    sign_in(page, ui_url, live_api.user_key)
    ask(page, "What is the airspeed velocity of an unladen swallow?")
    expect(page.get_by_text("None of the documents you can read")).to_be_visible(
        timeout=ANSWER_WAIT_MS
    )
    shot(page, "chat-declined")


def test_an_admin_uploads_files_and_watches_them_finish(
    page: Page, ui_url: str, live_api: LiveApi, tmp_path: Path
) -> None:
    sign_in(page, ui_url, live_api.admin_key)
    page.get_by_role("link", name="Upload").click()
    upload = tmp_path / "canteen-hours.md"
    upload.write_text("# Canteen\n\nThe canteen serves lunch from 11:30 to 14:00 on weekdays.\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    page.locator("input[type=file]").set_input_files([str(upload), str(empty)])
    page.get_by_role("button", name="Upload").last.click()
    expect(
        page.get_by_text(re.compile("files processed|could not be indexed", re.I)).first
    ).to_be_visible(timeout=ANSWER_WAIT_MS)
    # Table cells are drawn on a canvas; their accessible copies are in the DOM.
    expect(page.locator("td", has_text="canteen-hours.md").first).to_be_attached()
    expect(page.locator("td", has_text="empty.txt").first).to_be_attached()
    shot(page, "admin-upload-finished")

    page.get_by_role("link", name="Documents").click()
    expect(page.locator("td", has_text="canteen-hours.md").first).to_be_attached()
    shot(page, "admin-documents")

    for link, heading, name in (
        ("Statistics", "Statistics", "admin-statistics"),
        ("API keys", "API keys", "admin-keys"),
        ("Evaluation", "Evaluation", "admin-evaluation"),
    ):
        page.get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.get_by_test_id("stException")).to_have_count(0)
        shot(page, name)


def test_admin_pages_refuse_a_user_key(page: Page, ui_url: str, live_api: LiveApi) -> None:
    sign_in(page, ui_url, live_api.user_key)
    expect(page.get_by_role("heading", name="Ask Citewise")).to_be_visible()
    for name in ("Upload", "Documents", "API keys", "Statistics", "Evaluation"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    # A typed-in address of an admin page: a new browser session, which knows no such page.
    page.goto(f"{ui_url}/documents")
    expect(page.get_by_role("dialog", name="Page not found")).to_be_visible()
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    page.get_by_label("API key", exact=True).fill(live_api.user_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Ask Citewise")).to_be_visible()
    expect(page.locator("[data-testid=stDataFrame]")).to_have_count(0)
    shot(page, "user-no-admin-pages")


def test_the_chat_is_usable_on_a_narrow_screen(page: Page, ui_url: str, live_api: LiveApi) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, ui_url, live_api.user_key)
    box = page.get_by_placeholder("Ask a question about your documents")
    expect(box).to_be_visible()
    assert box.bounding_box() is not None and box.bounding_box()["width"] <= 390  # type: ignore[index]
    shot(page, "chat-narrow")


def test_an_admin_compares_two_evaluation_runs(page: Page, ui_url: str, live_api: LiveApi) -> None:
    root = Path(live_api.server.env["CITEWISE_DATA_DIR"]) / "eval-runs"
    for variant, run_id in (("base", BASE_ID), ("head", HEAD_ID)):
        if not (root / run_id / "run.json").is_file():
            write_run(root, variant)
    sign_in(page, ui_url, live_api.admin_key)
    page.get_by_role("link", name="Evaluation").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.locator("td", has_text=HEAD_ID).first).to_be_attached()
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    shot(page, "admin-evaluation-run")
    page.get_by_text("Compare runs", exact=True).click()
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    shot(page, "admin-evaluation-compare")
