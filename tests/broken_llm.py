"""A deliberately unreliable OpenAI-compatible chat server on loopback, for fault tests.

A real HTTP server (stdlib `ThreadingHTTPServer` in a thread) that answers
``POST /v1/chat/completions`` (streaming or not) according to its `mode`, which
a test may change at any time:

- ``echo``: a healthy, grounded model: the first sentence of passage 1, cited [1];
- ``down``: no listener on the port (connection refused), see `go_down`/`come_up`;
- ``hang``: reads the request and never answers (until `stop`);
- ``hang_mid_stream``: streams a grounded sentence and the first word of a second
  one, then never sends another byte;
- ``malformed``: 200 with JSON cut in the middle;
- ``empty``: a well-formed completion whose content is "";
- ``invented``: a grounded sentence that cites passage [9], which the prompt did not offer;
- ``http_503``: 503 Service Unavailable (a transient error: clients retry it);
- ``scripted``: whatever ``reply(prompt)`` returns (a test sets `reply`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from citewise.answer.pipeline import QAPipeline
from citewise.answer.tiers import build_chat_tier
from citewise.core.settings import LLMTier
from tests.servers import free_port

TIMEOUT_S = 1.0
RESET_S = 2.5  # longer than one ask on a busy 2-CPU machine
FAILURES = 2

_PASSAGE_ONE = re.compile(r'<passage id="1"[^>]*>\n(.*?)\n</passage>', re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def grounded_sentence(prompt: str) -> str:
    """The first sentence of at least four words of passage 1, or the last prompt line."""
    match = _PASSAGE_ONE.search(prompt)
    if match is None:
        return prompt.strip().splitlines()[-1].split(":", 1)[-1].strip()
    for sentence in _SENTENCE.split(" ".join(match.group(1).split())):
        if len(sentence.split()) >= 4:
            return sentence.rstrip(".!?")
    return match.group(1).strip()


class BrokenLLM:
    """The fault server. ``requests`` counts the completions requested (every mode but down)."""

    def __init__(self, mode: str = "echo", *, port: int | None = None) -> None:
        self.mode = mode
        self.port = port or free_port()
        self.requests: list[dict[str, Any]] = []
        self.reply: Callable[[str], str] = lambda prompt: f"{grounded_sentence(prompt)} [1]."
        self.release = threading.Event()  # ends every hanging request
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> BrokenLLM:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append(body)
                owner._respond(self, body)

        self.release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def go_down(self) -> None:
        """Close the listening socket: connections to the port are refused."""
        self.stop()
        self.mode = "down"

    def come_up(self, mode: str = "echo") -> None:
        """Listen on the same port again, in `mode`."""
        self.mode = mode
        self.start()

    # --- responses -------------------------------------------------------------------------

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        mode = self.mode
        stream = bool(body.get("stream"))
        prompt = str(body.get("messages", [{}])[-1].get("content", ""))
        if mode == "hang":
            self.release.wait(120)
            return
        if mode == "http_503":
            self._send(handler, 503, "application/json", b'{"error": {"message": "overloaded"}}')
            return
        if mode == "malformed":
            if stream:
                head = b'data: {"id": "x", "object": "chat.completion.chunk", "choices": [{"del'
                self._send(handler, 200, "text/event-stream", head + b"\n\n")
            else:
                self._send(handler, 200, "application/json", b'{"id": "x", "choices": [{"mess')
            return
        text = {
            "empty": "",
            "invented": f"{grounded_sentence(prompt)} [9].",
            "hang_mid_stream": f"{grounded_sentence(prompt)} [1]. It also",
            "scripted": self.reply(prompt),
        }.get(mode, f"{grounded_sentence(prompt)} [1].")
        if not stream:
            payload = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "broken",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59},
            }
            self._send(handler, 200, "application/json", json.dumps(payload).encode())
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        words = re.findall(r"\S+\s*", text) or [""]
        for index, word in enumerate(words):
            if mode == "hang_mid_stream" and index == len(words) - 1:
                handler.wfile.flush()
                self.release.wait(120)
                return
            self._chunk(
                handler, {"role": "assistant", "content": word} if index == 0 else {"content": word}
            )
        self._chunk(handler, {}, finish="stop")
        usage = {"prompt_tokens": 50, "completion_tokens": len(words), "total_tokens": 59}
        self._event(
            handler,
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "broken",
                "choices": [],
                "usage": usage,
            },
        )
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()

    def _chunk(
        self, handler: BaseHTTPRequestHandler, delta: dict[str, str], finish: str | None = None
    ) -> None:
        self._event(
            handler,
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "broken",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            },
        )

    @staticmethod
    def _event(handler: BaseHTTPRequestHandler, payload: dict[str, Any]) -> None:
        handler.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
        handler.wfile.flush()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, kind: str, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def primary(server: BrokenLLM) -> LLMTier:
    """A tier on the fault server: 1 s timeout, 2 attempts, breaker opens after 2 failures."""
    return LLMTier(
        name="primary",
        kind="openai",
        base_url=server.base_url,
        model="broken",
        timeout_s=TIMEOUT_S,
        attempts=2,
        breaker_failures=FAILURES,
        breaker_reset_s=RESET_S,
        max_tokens=40,
    )


def make_pipeline(runtime: Any, tiers: list[LLMTier]) -> QAPipeline:
    """A pipeline over the runtime's index with these tiers (fresh clients and breakers)."""
    settings = runtime.settings.answer.model_copy(update={"tiers": tiers})
    return QAPipeline(
        settings,
        retriever=runtime.retriever,
        embedder=runtime.embedder,
        chat_tiers={t.name: build_chat_tier(t) for t in tiers if t.kind == "openai"},
    )
