"""The embedded LLM: a packaged GGUF served by llama.cpp (xllamacpp) on a loopback port.

The ``llm.gguf`` setting is resolved by `citewise.core.packaged_gguf` (a plain
``.gguf`` path, or ``packaged:<name>`` assembled once from PyPI part packages and
checked against a pinned sha256). `LocalLLMServer` runs llama.cpp's
OpenAI-compatible HTTP server in a child process, so a slow load can be timed
out, a native crash cannot take the caller down, and stopping frees all its
memory; it hands back a base URL for any OpenAI client.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import structlog

from citewise.core.errors import ConfigError, ModelError
from citewise.core.packaged_gguf import model_alias, resolve_gguf
from citewise.core.settings import LocalLLMSettings

log = structlog.get_logger(__name__)

_READY_PREFIX = "CITEWISE_LLM "
_PROMPT_CACHE_MIB = 512


def is_loopback_host(host: str) -> bool:
    """Whether binding `host` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalLLMServer:
    """llama.cpp's OpenAI-compatible server for the configured GGUF, in a child process.

    Use as a context manager or call `start()` and `stop()`. Clients talk to
    `base_url` with any OpenAI-compatible client, sending `model_name` as the model.

    Args:
        settings: The ``llm`` settings (model, host, port, context size, threads).
        models_dir: Where packaged models are assembled (and the server log is written).
        allow_non_loopback: Permit a ``host`` other than a loopback address; refused
            unless asked for, since without `api_key` the server has no authentication.
        api_key: Bearer key the server then requires on every route but ``/health``;
            it reaches the server through a pipe, never the command line. Without
            it, anything on this machine may call the server.

    Raises:
        ConfigError: ``host`` is not a loopback address and `allow_non_loopback` is false.
    """

    def __init__(
        self,
        settings: LocalLLMSettings,
        models_dir: Path,
        *,
        allow_non_loopback: bool = False,
        api_key: str | None = None,
    ) -> None:
        if not is_loopback_host(settings.host):
            if not allow_non_loopback:
                raise ConfigError(
                    f"llm.host {settings.host!r} is not a loopback address; the embedded "
                    "LLM server is meant for this machine only (pass allow_non_loopback=True, "
                    "and an api_key, to insist)"
                )
            log.warning("llm_server_non_loopback", host=settings.host)
        self.settings = settings
        self.models_dir = models_dir
        self.model_name = model_alias(settings.gguf)
        self.log_path = models_dir / f"{self.model_name}.server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._base_url: str | None = None
        self._api_key = api_key or ""
        self._lock = threading.Lock()

    @property
    def is_running(self) -> bool:
        """Whether the server process is up (it may still be answering slowly)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def base_url(self) -> str | None:
        """The OpenAI base URL (``http://127.0.0.1:PORT/v1``) while running, else None."""
        return self._base_url if self.is_running else None

    def start(self) -> str:
        """Resolve the model, start the server and wait until it answers ``/health``.

        Returns:
            The OpenAI base URL, e.g. ``http://127.0.0.1:41234/v1``.

        Raises:
            ModelError: The model cannot be resolved, or the server did not become
                ready within ``startup_timeout_s`` (the server's log is quoted).
        """
        with self._lock:
            if self.is_running and self._base_url is not None:
                return self._base_url
            if self._proc is not None:  # a server that died: reap it before starting anew
                self._terminate(timeout_s=0.0)
            gguf = resolve_gguf(self.settings.gguf, self.models_dir)
            started = time.perf_counter()
            deadline = started + self.settings.startup_timeout_s
            self.models_dir.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-c", _CHILD_BOOT, str(Path(__file__).parents[2])]
                    + self._child_args(gguf),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                )
            self._proc = proc
            if proc.stdin is not None:
                with contextlib.suppress(OSError):  # a child that died is reported below
                    proc.stdin.write(self._api_key.encode() + b"\n")
                    proc.stdin.flush()
            try:
                address = self._await_address(proc, deadline)
                self._await_health(address, deadline)
            except BaseException:
                self._terminate(timeout_s=0.0)
                raise
            self._base_url = f"{address}/v1"
            log.info(
                "llm_server_started",
                model=self.model_name,
                url=self._base_url,
                pid=proc.pid,
                seconds=round(time.perf_counter() - started, 2),
            )
            return self._base_url

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and wait for its process to exit (idempotent).

        Args:
            timeout_s: How long to wait for a clean exit before killing it.
        """
        with self._lock:
            if self._proc is not None:
                self._terminate(timeout_s)
                log.info("llm_server_stopped", model=self.model_name)

    def __enter__(self) -> LocalLLMServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _child_args(self, gguf: Path) -> list[str]:
        s = self.settings
        return [
            f"--model={gguf}",
            f"--alias={self.model_name}",
            f"--host={s.host}",
            f"--port={s.port}",
            f"--ctx={s.context_size}",
            f"--threads={s.threads}",
        ]

    def _await_address(self, proc: subprocess.Popen[bytes], deadline: float) -> str:
        """Read the child's one status line: its listening address, or why it failed."""
        assert proc.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(
            target=lambda out: lines.put(out.readline()), args=(proc.stdout,), daemon=True
        ).start()
        try:
            line = lines.get(timeout=max(0.0, deadline - time.perf_counter())).decode()
        except queue.Empty:
            raise ModelError(self._failure("did not load in time")) from None
        if not line.startswith(_READY_PREFIX):
            raise ModelError(self._failure("exited while loading"))
        status: dict[str, str] = json.loads(line.removeprefix(_READY_PREFIX))
        if "address" not in status:
            raise ModelError(self._failure(status.get("error", "failed to start")))
        return status["address"]

    def _await_health(self, address: str, deadline: float) -> None:
        """Poll ``/health`` until it answers 200 (it answers 503 while loading)."""
        with httpx.Client(base_url=address, timeout=2.0, trust_env=False) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/health").status_code == 200:
                        return
                if not self.is_running:
                    raise ModelError(self._failure("exited while starting"))
                if time.perf_counter() > deadline:
                    raise ModelError(self._failure("did not become healthy in time"))
                time.sleep(0.1)

    def _failure(self, reason: str) -> str:
        tail = ""
        with contextlib.suppress(OSError):
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
        return (
            f"embedded LLM server for {self.settings.gguf!r} {reason} "
            f"(startup_timeout_s={self.settings.startup_timeout_s}); "
            f"log {self.log_path}:\n{tail}"
        )

    def _terminate(self, timeout_s: float) -> None:
        """Close the child's stdin (its signal to shut down), then escalate if needed.

        llama.cpp handles SIGTERM itself and ignores it while loading, so a zero
        `timeout_s` (used when startup fails) kills the child outright.
        """
        proc, self._proc, self._base_url = self._proc, None, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            if timeout_s > 0 and _exited(proc, timeout_s):
                return
            if timeout_s > 0:
                proc.terminate()
                if _exited(proc, 5.0):
                    return
            proc.kill()
            proc.wait()
        finally:
            # Only now: closing it earlier would block on the status reader thread.
            if proc.stdout is not None:
                proc.stdout.close()


def _exited(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return True


# The child is started as ``python -c _CHILD_BOOT <src dir> <args>`` so it finds
# this package whether or not it is installed, without touching the environment.
_CHILD_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from citewise.core.llm_server import serve_forever; sys.exit(serve_forever(sys.argv[1:]))"
)


def serve_forever(argv: list[str]) -> int:
    """Child-process entry point: serve the model until stdin reaches end of file.

    Reads one line from stdin first: the API key to require (empty for none).
    Prints one line, ``CITEWISE_LLM {"address": ...}`` or ``CITEWISE_LLM {"error": ...}``,
    on the original stdout; everything else (llama.cpp's logs included) goes to
    stderr. The parent closing stdin, or dying, stops the server.

    Args:
        argv: ``--model --alias --host --port --ctx --threads``.

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(prog="citewise-llm-server")
    for flag in ("--model", "--alias", "--host"):
        parser.add_argument(flag, required=True)
    for flag in ("--port", "--ctx", "--threads"):
        parser.add_argument(flag, type=int, required=True)
    args = parser.parse_args(argv)
    api_key = sys.stdin.buffer.readline().decode().strip()
    status: IO[str] = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # native code that prints to stdout must not corrupt the status line
    try:
        server = _make_server(args, api_key)
    except Exception as exc:  # report any load failure to the parent, then exit
        status.write(_READY_PREFIX + json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        status.close()
        return 1
    status.write(_READY_PREFIX + json.dumps({"address": server.listening_address}) + "\n")
    status.close()
    sys.stdin.buffer.read()  # returns at end of file
    del server  # the destructor stops the HTTP server and joins its threads
    return 0


def _make_server(args: argparse.Namespace, api_key: str) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.offline = True  # never download anything
    params.ui = False
    params.endpoint_slots = False
    params.endpoint_metrics = True
    params.cache_ram_mib = _PROMPT_CACHE_MIB
    params.verbosity = 2  # warnings and errors only: no per-request lines in the log
    if api_key:
        params.api_keys = [api_key]
    return xllamacpp.Server(params)
