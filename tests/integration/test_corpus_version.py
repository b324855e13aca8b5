"""The corpus version of a tenant changes with every document change, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from citewise.answer.cache import CorpusVersions
from citewise.core.db import Database, DocumentRecord, utcnow

pytestmark = pytest.mark.integration


def test_every_document_change_gives_a_new_version_and_other_tenants_keep_theirs(
    database: Database,
) -> None:
    db = database
    versions = CorpusVersions(db)
    seen = {versions.version("acme")}
    other = versions.version("globex")

    def changed() -> None:
        version = versions.version("acme")
        assert version not in seen
        seen.add(version)

    with db.session() as session:
        session.add(DocumentRecord(tenant_id="acme", doc_id="a", source="a.md", sha256=""))
    changed()  # a new document (pending)
    with db.session() as session:
        doc = session.query(DocumentRecord).filter_by(tenant_id="acme", doc_id="a").one()
        doc.status, doc.chunk_count, doc.sha256 = "indexed", 3, "x" * 64
    changed()  # indexed
    with db.session() as session:
        doc = session.query(DocumentRecord).filter_by(tenant_id="acme", doc_id="a").one()
        doc.acl_groups = ["hr"]
    changed()  # ACL change alone
    with db.session() as session:
        doc = session.query(DocumentRecord).filter_by(tenant_id="acme", doc_id="a").one()
        doc.version, doc.chunk_count = 2, 3
    changed()  # a new version with as many chunks
    with db.session() as session:
        doc = session.query(DocumentRecord).filter_by(tenant_id="acme", doc_id="a").one()
        doc.status, doc.chunk_count, doc.deleted_at = "deleted", 0, utcnow()
    changed()  # deleted (tombstone)
    assert versions.version("globex") == other
    db.dispose()
