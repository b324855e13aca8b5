"""Ingestion stage: parse files, chunk them by structure, embed and index the chunks."""
