"""Records every socket connection and DNS lookup the process attempts (audit hooks)."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_attempts: list[tuple[str, object]] = []
_recording = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _recording:
        return
    if event == "socket.connect":
        _attempts.append((event, args[1]))
    elif event == "socket.getaddrinfo":
        _attempts.append((event, args[0]))


sys.addaudithook(_audit)


def is_loopback(target: object) -> bool:
    """Whether a connect address or looked-up host stays on this machine."""
    host = target[0] if isinstance(target, tuple) else target
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str) or host == "localhost" or host.startswith("/"):
        return True  # localhost, or a Unix socket path
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class NetLog:
    """Connection attempts seen inside an `outbound_attempts` block."""

    attempts: list[tuple[str, object]] = field(default_factory=list)

    @property
    def outbound(self) -> list[tuple[str, object]]:
        """The attempts that would leave this machine."""
        return [(e, t) for e, t in self.attempts if not is_loopback(t)]


@contextmanager
def outbound_attempts() -> Iterator[NetLog]:
    """Record the connection attempts and DNS lookups made inside the block."""
    global _recording
    _attempts.clear()
    log = NetLog()
    _recording = True
    try:
        yield log
    finally:
        _recording = False
        log.attempts.extend(_attempts)
