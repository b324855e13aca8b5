"""The original files of documents, for the people who may read those documents.

`find_source` resolves a document of the principal's tenant (its indexed
version, or an older one whose file is still stored) to the stored file. A
document the principal may not read answers exactly like one that does not
exist (`NotFoundError`): another tenant's, a deleted one, or one whose ACL
groups share none with the principal's visible groups (the retriever's rule).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from sqlalchemy import select

from citewise.core.db import Database, JobFileRecord, JobRecord
from citewise.core.errors import NotFoundError, StoredFileMissingError
from citewise.core.tenancy import EVERYONE, Principal
from citewise.ingest.filestore import FileStore
from citewise.ingest.jobs import find_document

VERSION_OUTCOMES = ("indexed", "unchanged")
"""Job file outcomes that recorded which stored file a version was made from."""
_BLOCK = 64 * 1024


@dataclass(frozen=True)
class SourceFile:
    """The stored original of one version of a document."""

    doc_id: str
    version: int
    filename: str
    """The uploaded file's name (its last path part), as shown to people."""
    sha256: str
    media_type: str
    """Guessed from the file name (``application/octet-stream`` when unknown)."""


def may_read(principal: Principal, acl_groups: Iterable[str]) -> bool:
    """The retriever's rule: some ACL group of the document is visible to the principal.

    An empty group list is the whole tenant's (`EVERYONE`), as at ingestion.
    """
    groups = set(acl_groups) or {EVERYONE}
    return bool(groups & set(principal.visible_groups))


def display_name(filename: str) -> str:
    """The last part of a stored file name (archive members keep their folder path)."""
    return PurePosixPath(filename.replace("\\", "/")).name or "document"


def media_type_of(filename: str) -> str:
    """The media type of a file name, ``application/octet-stream`` when unknown."""
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def find_source(
    db: Database,
    files: FileStore,
    principal: Principal,
    doc_id: str,
    version: int | None = None,
) -> SourceFile:
    """The stored file of a document the principal may read.

    Args:
        db: Metadata database.
        files: The store of uploaded files.
        principal: Who asks (tenant and visible groups).
        doc_id: The document.
        version: An earlier version (default: the indexed one); served only while its
            file is still stored and its ACL groups at the time let the principal read it.

    Raises:
        NotFoundError: No such document for this principal, or no stored file of that version.
    """
    missing = f"no document {doc_id!r}"
    with db.session() as session:
        doc = find_document(session, principal.tenant_id, doc_id)
        if (
            doc is None
            or doc.status == "deleted"
            or doc.version < 1
            or not doc.sha256
            or not may_read(principal, doc.acl_groups or [])
        ):
            raise NotFoundError(missing)
        if version is None or version == doc.version:
            found = _source(doc_id, doc.version, doc.source, doc.sha256)
        else:
            row = session.scalars(
                select(JobFileRecord)
                .join(JobRecord, JobRecord.id == JobFileRecord.job_id)
                .where(
                    JobRecord.tenant_id == principal.tenant_id,
                    JobFileRecord.doc_id == doc_id,
                    JobFileRecord.version == version,
                    JobFileRecord.status.in_(VERSION_OUTCOMES),
                    JobFileRecord.sha256.is_not(None),
                )
                .order_by(JobFileRecord.updated_at.desc(), JobFileRecord.id.desc())
                .limit(1)
            ).first()
            if row is None or row.sha256 is None or not may_read(principal, row.acl_groups or []):
                raise NotFoundError(
                    f"version {version} of document {doc_id!r} is not stored; "
                    f"the current version is {doc.version}"
                )
            found = _source(doc_id, version, row.filename, row.sha256)
    if not files.exists(found.sha256):
        raise NotFoundError(
            f"the file of version {found.version} of document {doc_id!r} is no longer stored"
        )
    return found


def _source(doc_id: str, version: int, filename: str, sha256: str) -> SourceFile:
    name = display_name(filename)
    return SourceFile(doc_id, version, name, sha256, media_type_of(name))


def open_source(files: FileStore, source: SourceFile) -> tuple[BinaryIO, int | None]:
    """Open a source's stored file; returns the handle and its size when the store knows it.

    Raises:
        NotFoundError: The file went away since `find_source` looked.
    """
    try:
        handle = files.open(source.sha256)
    except StoredFileMissingError as exc:
        raise NotFoundError(
            f"the file of version {source.version} of document {source.doc_id!r} "
            "is no longer stored"
        ) from exc
    size: int | None = None
    if handle.seekable():
        size = handle.seek(0, 2)
        handle.seek(0)
    return handle, size


def read_blocks(handle: BinaryIO) -> Iterator[bytes]:
    """The handle's bytes in blocks; closes it at the end (or when the reader stops)."""
    try:
        while block := handle.read(_BLOCK):
            yield block
    finally:
        handle.close()
