"""Alembic migrations: they produce exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from citewise.core.db import Base, Database, migrations_dir


def _diff(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    assert _diff(db) == []
    db.migrate()  # a second run is a no-op
    tables = set(inspect(db.engine).get_table_names())
    assert {"documents", "jobs", "job_files", "audit_log", "alembic_version"} <= tables
    assert {"conversations", "messages"} <= tables
    assert {"served_answers", "feedback"} <= tables
    db.dispose()


def test_migrations_are_shipped_as_one_linear_history() -> None:
    assert (migrations_dir() / "env.py").is_file()
    config = Database("sqlite://").alembic_config()
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == ["0005"]


def test_a_database_from_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    """A data directory made by create_all (documents only) keeps its rows."""
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE documents (id INTEGER NOT NULL, tenant_id VARCHAR(63) NOT NULL,"
                " doc_id VARCHAR(255) NOT NULL, source VARCHAR(255) NOT NULL,"
                " sha256 VARCHAR(64) NOT NULL, version INTEGER NOT NULL,"
                " status VARCHAR(16) NOT NULL, chunk_count INTEGER NOT NULL,"
                " acl_groups JSON NOT NULL, title VARCHAR(500) NOT NULL, error TEXT,"
                " created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,"
                " PRIMARY KEY (id), CONSTRAINT uq_documents_tenant_doc UNIQUE (tenant_id, doc_id))"
            )
        )
        connection.execute(text("CREATE INDEX ix_documents_tenant_id ON documents (tenant_id)"))
        connection.execute(
            text(
                "INSERT INTO documents VALUES (1, 'demo', 'a.pdf', 'a.pdf', 'ab', 2, 'indexed',"
                " 7, '[\"*\"]', 'A', NULL, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    db.migrate()
    assert _diff(db) == []
    with db.engine.connect() as connection:
        row = connection.execute(
            text("SELECT doc_id, version, chunk_count, metadata FROM documents")
        ).one()
    assert tuple(row) == ("a.pdf", 2, 7, "{}")
    db.dispose()


@pytest.mark.parametrize(
    ("revision", "tables"),
    [
        ("0001", {"documents"}),
        ("0002", {"documents", "jobs", "job_files", "audit_log"}),
        ("0003", {"documents", "jobs", "job_files", "audit_log", "conversations", "messages"}),
    ],
)
def test_downgrade_and_upgrade_round_trip(tmp_path: Path, revision: str, tables: set[str]) -> None:
    from alembic import command

    db = Database(f"sqlite:///{tmp_path / 'rt.db'}")
    db.migrate()
    config = db.alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    assert set(inspect(db.engine).get_table_names()) == tables | {"alembic_version"}
    db.migrate()
    assert _diff(db) == []
    db.dispose()


def test_replicas_starting_together_on_an_empty_database_all_migrate_it_once(
    database_url: str,
) -> None:
    # Every API replica and worker migrates at start-up; a deployment starts them together.
    program = "import sys; from citewise.core.db import Database; Database(sys.argv[1]).migrate()"
    starts = [
        subprocess.Popen([sys.executable, "-c", program, database_url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=180)[1].decode()[-1500:] for p in starts]
    assert [p.returncode for p in starts] == [0, 0, 0, 0], "\n".join(errors)
    db = Database(database_url)
    assert _diff(db) == []
    with db.engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    assert [v for (v,) in versions] == ["0005"]
    db.dispose()
