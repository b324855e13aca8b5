"""Citewise makes no outbound network connection while ingesting and answering."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from citewise.core.tenancy import Principal
from tests.conftest import SAMPLES
from tests.netguard import is_loopback, outbound_attempts

pytestmark = pytest.mark.integration


def test_guard_records_connections_and_tells_loopback_apart() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    address = server.getsockname()
    with outbound_attempts() as net, socket.create_connection(address):
        pass
    server.close()
    assert ("socket.connect", address) in net.attempts
    assert net.outbound == []
    assert is_loopback(("127.0.0.1", 80)) and is_loopback(("::1", 80, 0, 0))
    assert not is_loopback(("192.0.2.1", 443)) and not is_loopback("huggingface.co")


def test_ingest_and_ask_attempt_no_outbound_connection(demo_runtime, tmp_path: Path) -> None:
    with outbound_attempts() as net:
        for path in sorted(SAMPLES.iterdir()):
            copy = tmp_path / path.name
            copy.write_bytes(path.read_bytes())
            outcome = demo_runtime.ingestor.ingest_file(copy, tenant_id="offline", doc_id=path.name)
            assert outcome.status == "indexed"
        answer = demo_runtime.pipeline.ask(
            "How long must my password be?", Principal(tenant_id="offline")
        )
        assert not answer.declined
    assert net.outbound == []
