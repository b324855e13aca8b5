"""Content-addressed storage of uploaded files, behind a small interface.

`LocalFileStore` keeps each file once under ``root/ab/cd/<sha256>`` (the first two
byte pairs of its hash fan the folders out). A file is written to a temporary name
in the same file system, flushed, fsynced and renamed into place, so a reader or a
crash never sees half a file. An S3-compatible store implements the same protocol
(``put`` uploads under the key ``ab/cd/<sha256>``, ``local_path`` downloads to a
temporary file); see docs/architecture.md.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from citewise.core.errors import StoredFileMissingError

_BLOCK = 1 << 20


@runtime_checkable
class FileStore(Protocol):
    """Where uploaded files live, addressed by the sha256 of their bytes."""

    def put(self, stream: BinaryIO) -> tuple[str, int]:
        """Store a stream's bytes; return their sha256 (hex) and size. Idempotent."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether a file with this hash is stored."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored file for reading; raises `StoredFileMissingError`."""
        ...

    def local_path(self, sha256: str) -> AbstractContextManager[Path]:
        """A context manager giving a local path to the file (a download for remote stores)."""
        ...

    def delete(self, sha256: str) -> bool:
        """Remove a stored file; False when it was not there."""
        ...


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error means no space (or quota) is left on the file system."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _check(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


class LocalFileStore:
    """`FileStore` on the local file system under ``root``.

    Args:
        root: Folder of the store (``data_dir/files`` by default); created on demand.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / "tmp"

    def path(self, sha256: str) -> Path:
        """Where a file with this hash is (or would be) stored."""
        digest = _check(sha256)
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, stream: BinaryIO) -> tuple[str, int]:
        """Copy a stream into the store: temporary file, fsync, atomic rename."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"
        try:
            with tmp.open("wb") as out:
                for block in iter(lambda: stream.read(_BLOCK), b""):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
            final = self.path(digest.hexdigest())
            if final.exists():
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
                _fsync_dir(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest.hexdigest(), size

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a local file's bytes (see `put`)."""
        with path.open("rb") as handle:
            return self.put(handle)

    def exists(self, sha256: str) -> bool:
        """Whether the file is stored."""
        return self.path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored file for reading."""
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError as exc:
            raise StoredFileMissingError(
                f"the stored file {sha256[:12]}… is missing; upload the document again"
            ) from exc

    @contextmanager
    def local_path(self, sha256: str) -> Iterator[Path]:
        """The stored file's own path (no copy is needed locally)."""
        path = self.path(sha256)
        if not path.is_file():
            raise StoredFileMissingError(
                f"the stored file {sha256[:12]}… is missing; upload the document again"
            )
        yield path

    def delete(self, sha256: str) -> bool:
        """Remove a file; empty fan-out folders are left (they are reused)."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def clean_temporary(self, older_than_s: float = 3600.0) -> int:
        """Remove leftovers of writes interrupted by a crash; returns how many.

        Only entries older than ``older_than_s`` go, so uploads in progress in another
        process sharing the store are left alone.
        """
        if not self._tmp.is_dir():
            return 0
        removed = 0
        cutoff = time.time() - older_than_s
        for leftover in self._tmp.iterdir():
            if leftover.stat().st_mtime > cutoff:
                continue
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
