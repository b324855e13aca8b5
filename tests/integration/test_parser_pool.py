"""Parsing in child processes: a file that hangs, eats memory or kills its parser fails alone.

Real parsers (unstructured in spawned pebble workers) on real files: a long text file
whose element classification takes far longer than the test's time limit, a CSV whose
table needs more memory than the test's cap, and a worker killed with SIGKILL
mid-parse (what the kernel's OOM killer does).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from citewise.api.app import create_app
from citewise.core.errors import ParseMemoryError, ParserCrashedError, ParseTimeoutError
from citewise.core.settings import Settings, load_settings
from citewise.ingest.parse import parse_file
from citewise.ingest.parser_pool import ParserPool
from citewise.runtime import Runtime
from tests.auth import admin_headers
from tests.conftest import SAMPLES
from tests.integration.test_ingest_service import upload, wait_for_job

pytestmark = pytest.mark.integration

MAX_BYTES = 50 * 1024 * 1024


def slow_text(path: Path, paragraphs: int = 6000) -> Path:
    """A plain-text file of many short paragraphs: unstructured classifies each with spaCy
    (a few ms apiece), so it takes tens of seconds to parse on this CPU."""
    path.write_text(
        "\n\n".join(
            f"Paragraph {i} says that item {i} ships on day {i % 28 + 1}."
            for i in range(paragraphs)
        ),
        encoding="utf-8",
    )
    return path


def big_csv(path: Path, rows: int = 100_000) -> Path:
    """A CSV whose one table (with its HTML rendering) takes several hundred MB to parse."""
    lines = ["id,name,amount,comment"]
    lines += [f"{i},name {i},{i * 1.5},some comment text number {i} here" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def settings_for(tmp_path: Path, **ingest: Any) -> Settings:
    return load_settings(data_dir=tmp_path / "data", ingest={"parse_processes": 1, **ingest})


def spawned_children() -> set[int]:
    """Pids of this process's multiprocessing-spawned children."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "multiprocessing.spawn" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


@pytest.fixture()
def pool(tmp_path: Path) -> Iterator[ParserPool]:
    parsers = ParserPool(settings_for(tmp_path, parse_timeout_s=3.0))
    parsers.warm_up()
    yield parsers
    parsers.close()


def test_a_child_process_parses_every_sample_exactly_as_the_calling_thread(
    pool: ParserPool,
) -> None:
    for path in sorted(SAMPLES.iterdir()):
        in_child = pool.parse(path, max_bytes=MAX_BYTES, pdf_strategy="auto", filename=path.name)
        here = parse_file(path, max_bytes=MAX_BYTES, pdf_strategy="auto", filename=path.name)
        assert in_child == here, path.name
        assert in_child.elements


def test_a_file_that_parses_too_long_is_stopped_and_the_next_one_parses(
    pool: ParserPool, tmp_path: Path
) -> None:
    slow = slow_text(tmp_path / "slow.txt")
    started = time.monotonic()
    with pytest.raises(ParseTimeoutError) as caught:
        pool.parse(slow, max_bytes=MAX_BYTES, pdf_strategy="auto", filename="minutes.txt")
    assert time.monotonic() - started < 15  # stopped near the 3 s limit, not left to run
    assert "'minutes.txt' took longer than 3 s to parse" in str(caught.value)
    assert "ingest.parse_timeout_s" in str(caught.value)
    assert caught.value.code == "parse_timeout"

    again = pool.parse(
        SAMPLES / "it-onboarding.txt", max_bytes=MAX_BYTES, pdf_strategy="auto"
    )  # a fresh worker took over
    assert any("IT Service Desk" in e.text for e in again.elements)


def test_a_parser_killed_mid_file_fails_that_file_and_the_pool_goes_on(
    tmp_path: Path,
) -> None:
    before = spawned_children()
    parsers = ParserPool(settings_for(tmp_path, parse_timeout_s=120.0))
    try:
        parsers.warm_up()
        (worker,) = spawned_children() - before
        slow = slow_text(tmp_path / "slow.txt")
        threading.Timer(1.0, os.kill, args=(worker, signal.SIGKILL)).start()
        with pytest.raises(ParserCrashedError) as caught:
            parsers.parse(slow, max_bytes=MAX_BYTES, pdf_strategy="auto", filename="notes.txt")
        message = str(caught.value)
        assert "The parser process died on 'notes.txt' (signal SIGKILL)" in message
        assert "lack of memory" in message and caught.value.code == "parser_crashed"

        again = parsers.parse(
            SAMPLES / "office-locations.csv", max_bytes=MAX_BYTES, pdf_strategy="auto"
        )
        assert any("Port Alder" in e.text for e in again.elements)
    finally:
        parsers.close()
    assert not (spawned_children() - before)  # close() leaves no worker behind


def test_a_file_that_needs_more_memory_than_the_cap_fails_with_a_clear_error(
    tmp_path: Path,
) -> None:
    before = spawned_children()
    probe = ParserPool(settings_for(tmp_path, parse_memory_mb=0))
    try:
        probe.warm_up()
        (worker,) = spawned_children() - before
        status = Path(f"/proc/{worker}/status").read_text().splitlines()
        baseline_mb = next(int(s.split()[1]) for s in status if s.startswith("VmPeak")) // 1024
    finally:
        probe.close()
    # A warmed worker plus 300 MB: the samples parse, the 6 MB CSV's table does not.
    capped = ParserPool(settings_for(tmp_path, parse_memory_mb=baseline_mb + 300))
    try:
        # MemoryError in Python code, or a crash where native code fails an allocation.
        with pytest.raises((ParseMemoryError, ParserCrashedError)) as caught:
            capped.parse(
                big_csv(tmp_path / "big.csv"),
                max_bytes=MAX_BYTES,
                pdf_strategy="auto",
                filename="ledger.csv",
            )
        assert "'ledger.csv'" in str(caught.value)
        assert "ingest.parse_memory_mb" in str(caught.value)
        assert caught.value.code in {"parse_out_of_memory", "parser_crashed"}
        again = capped.parse(
            SAMPLES / "office-locations.csv", max_bytes=MAX_BYTES, pdf_strategy="auto"
        )
        assert any("Port Alder" in e.text for e in again.elements)
    finally:
        capped.close()


def test_an_upload_batch_goes_on_past_a_file_whose_parse_timed_out(
    tmp_path: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(
        data_dir=tmp_path / "data",
        ingest={"parse_processes": 1, "parse_timeout_s": 3.0},
        queue={"retry_delay_s": 0.05, "poll_interval_s": 0.1, "lease_s": 5.0},
    )
    runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
    try:
        app = create_app(runtime.settings, runtime=runtime)
        with TestClient(app, headers=admin_headers(runtime, "acme")) as client:
            slow = slow_text(tmp_path / "slow.txt").read_bytes()
            onboarding = (SAMPLES / "it-onboarding.txt").read_bytes()
            response = upload(
                client, "acme", [("minutes.txt", slow), ("onboarding.txt", onboarding)]
            )
            assert response.status_code == 202, response.text
            job = wait_for_job(client, response.json()["id"], timeout=120)
            outcome = {f["filename"]: (f["status"], f["error_code"]) for f in job["files"]}
            assert job["status"] == "partial"
            assert outcome == {
                "minutes.txt": ("failed", "parse_timeout"),
                "onboarding.txt": ("indexed", None),
            }
            failed = client.get("/v1/tenants/acme/documents", params={"status": "failed"}).json()
            (record,) = failed["items"]
            assert record["filename"] == "minutes.txt"
            assert "took longer than 3 s to parse" in record["error"]
    finally:
        runtime.close()
