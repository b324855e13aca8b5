"""Parse files in child processes: a file that hangs, eats memory or crashes costs only itself.

unstructured, pdfminer, lxml and openpyxl run on untrusted bytes. On the ingesting thread
a pathological file could hold a worker for ever, take the machine's memory, or (in a
native library) kill the API process that also serves queries. `ParserPool` runs
`parse_file` in spawned worker processes managed by pebble's ``ProcessPool``:

* a file that parses longer than ``ingest.parse_timeout_s`` is stopped (pebble kills the
  worker) and fails with `ParseTimeoutError`;
* each worker's address space is capped at ``ingest.parse_memory_mb`` (``RLIMIT_AS``), so
  a file that needs more fails with `ParseMemoryError` instead of swapping the machine;
* a worker that dies (a signal, the kernel's OOM killer) fails the file with
  `ParserCrashedError`;

and pebble starts a fresh worker for the next file each time. Parsing in another process
also keeps unstructured's pure-Python work off the embedding thread's GIL.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
import threading
from concurrent.futures import TimeoutError as FutureTimeoutError
from pathlib import Path

import structlog
from pebble import ProcessExpired, ProcessPool

from citewise.core.errors import ParserCrashedError, ParseTimeoutError
from citewise.core.settings import Settings
from citewise.ingest.parse import ParsedDocument, out_of_memory, parse_file

log = structlog.get_logger(__name__)

MAX_TASKS_PER_WORKER = 500  # a fresh worker now and then bounds slow leaks in the parsers


def _start_worker(memory_mb: int, log_level: str, log_json: bool, log_redact: bool) -> None:
    """Set up a parser process: memory cap, logging, the spaCy pipeline loaded."""
    from citewise.core.logging import configure_logging
    from citewise.ingest.parse import prepare_offline

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    configure_logging(log_level, json=log_json, redact=log_redact)
    prepare_offline(warm=True)


def _ready() -> bool:
    """A no-op task: its result means a worker finished `_start_worker`."""
    return True


class ParserPool:
    """`parse_file` in child processes, with a time limit per file and a memory cap.

    The processes start on the first parse (about 2 s: imports and the spaCy pipeline)
    and live until `close`. Thread-safe: several ingestion threads may parse at once,
    up to ``ingest.parse_processes`` files in parallel.

    Args:
        settings: Application settings (``ingest.parse_*`` and the logging options).
    """

    def __init__(self, settings: Settings) -> None:
        self.processes = settings.ingest.parse_processes
        self.timeout_s = settings.ingest.parse_timeout_s
        self.memory_mb = settings.ingest.parse_memory_mb
        self._worker_args = (
            self.memory_mb,
            settings.log_level,
            settings.log_json,
            settings.log_redact,
        )
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def parse(
        self, path: Path, *, max_bytes: int, pdf_strategy: str, filename: str | None = None
    ) -> ParsedDocument:
        """Parse one file in a worker process; same contract as `parse_file`.

        Raises:
            ParseTimeoutError: It took longer than ``ingest.parse_timeout_s``.
            ParseMemoryError: It needed more than ``ingest.parse_memory_mb``.
            ParserCrashedError: The worker died while parsing it.
            IngestError: Whatever `parse_file` raises for the file.
        """
        name = filename or path.name
        future = self._started().schedule(
            parse_file,
            args=(path,),
            kwargs={"max_bytes": max_bytes, "pdf_strategy": pdf_strategy, "filename": filename},
            timeout=self.timeout_s,
        )
        try:
            return future.result()
        except FutureTimeoutError as exc:
            log.warning("parse_timed_out", source=name, timeout_s=self.timeout_s)
            raise ParseTimeoutError(
                f"'{name}' took longer than {self.timeout_s:g} s to parse and was stopped "
                "(setting ingest.parse_timeout_s); the file may be malformed, or too large "
                "to parse in that time."
            ) from exc
        except ProcessExpired as exc:
            log.warning("parser_crashed", source=name, exitcode=exc.exitcode)
            raise self._crashed(name, exc.exitcode) from exc
        except MemoryError as exc:  # raised outside parse_file's own handling
            raise out_of_memory(name) from exc

    def warm_up(self) -> None:
        """Start the worker processes now and wait until one is ready."""
        self._started().schedule(_ready).result()

    def close(self) -> None:
        """Stop the worker processes (a parse in progress is abandoned)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join()

    def _started(self) -> ProcessPool:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPool(
                    max_workers=self.processes,
                    max_tasks=MAX_TASKS_PER_WORKER,
                    initializer=_start_worker,
                    initargs=self._worker_args,
                    context=multiprocessing.get_context("spawn"),
                )
                log.info("parser_pool_started", processes=self.processes, memory_mb=self.memory_mb)
            return self._pool

    def _crashed(self, name: str, exitcode: int | None) -> ParserCrashedError:
        how = f"exit code {exitcode}"
        if exitcode is not None and -exitcode in signal.valid_signals():
            how = f"signal {signal.Signals(-exitcode).name}"
        # Native code that fails an allocation under RLIMIT_AS may crash (SIGSEGV, SIGABRT)
        # instead of raising MemoryError; an outside SIGKILL is usually the OOM killer.
        hint = "the file is probably malformed"
        if self.memory_mb > 0:
            hint += (
                f", or it needs more than the {self.memory_mb} MB a parser may use "
                "(setting ingest.parse_memory_mb)"
            )
        if exitcode == -signal.SIGKILL:
            hint = "killed from outside, usually for lack of memory"
        return ParserCrashedError(
            f"The parser process died on '{name}' ({how}): {hint}. Other files are not affected."
        )
