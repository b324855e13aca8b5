"""The content-addressed file store: dedup, fan-out layout, atomic writes, deletes."""

from __future__ import annotations

import errno
import hashlib
import io
from pathlib import Path

import pytest

from citewise.core.errors import StoredFileMissingError
from citewise.ingest.filestore import FileStore, LocalFileStore, is_disk_full


class _Exploding(io.BytesIO):
    """A stream that fails after its first block, like a client hanging up mid-upload."""

    def __init__(self) -> None:
        super().__init__(b"x" * (3 << 20))
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise ConnectionResetError("client went away")
        return super().read(size)


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    assert isinstance(store, FileStore)
    data = b"Quarterly travel policy\n" * 100
    sha, size = store.put(io.BytesIO(data))
    assert sha == hashlib.sha256(data).hexdigest() and size == len(data)
    path = store.path(sha)
    assert path == tmp_path / "files" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == data
    assert store.put(io.BytesIO(data)) == (sha, size)  # stored once
    assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == [path]
    with store.open(sha) as handle:
        assert handle.read() == data
    with store.local_path(sha) as local:
        assert local.read_bytes() == data


def test_an_interrupted_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    with pytest.raises(ConnectionResetError):
        store.put(_Exploding())
    assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []


def test_delete_and_missing_files(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    sha, _ = store.put(io.BytesIO(b"gone soon"))
    assert store.exists(sha) and store.delete(sha)
    assert not store.exists(sha) and not store.delete(sha)
    with pytest.raises(StoredFileMissingError):
        store.open(sha)
    with pytest.raises(StoredFileMissingError), store.local_path(sha):
        pass
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_clean_temporary_removes_only_old_leftovers(tmp_path: Path) -> None:
    import os
    import time

    store = LocalFileStore(tmp_path / "files")
    tmp = tmp_path / "files" / "tmp"
    tmp.mkdir(parents=True)
    old, fresh = tmp / "old.part", tmp / "fresh.part"
    old.write_bytes(b"a")
    fresh.write_bytes(b"b")
    hours_ago = time.time() - 7200
    os.utime(old, (hours_ago, hours_ago))
    assert store.clean_temporary() == 1
    assert not old.exists() and fresh.exists()


def test_only_no_space_and_over_quota_count_as_a_full_disk() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("no space"))
