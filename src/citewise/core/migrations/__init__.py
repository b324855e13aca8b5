"""Alembic migrations of the metadata database, shipped with the package (`Database.migrate`)."""
