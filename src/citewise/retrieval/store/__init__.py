"""Vector store: one interface (`VectorStore`), two Qdrant backends, chosen by `build_store`."""

from __future__ import annotations

from citewise.core.errors import ConfigError
from citewise.core.settings import Settings
from citewise.retrieval.store.base import FusionMethod, StoreSchema, VectorStore

__all__ = ["FusionMethod", "StoreSchema", "VectorStore", "build_store"]


def build_store(settings: Settings) -> VectorStore:
    """Open the vector store that ``settings.index.backend`` names.

    This is the only place that chooses a backend. ``edge`` opens the embedded
    Qdrant Edge index under ``settings.index_dir`` (and locks it for this process);
    ``server`` connects to ``settings.index.url`` with `qdrant-client`, where the URL
    ``:memory:`` gives qdrant-client's in-process mode (tests and demos only).

    Raises:
        ConfigError: ``backend="server"`` without a URL.
        IndexLockedError: The embedded index is in use by another process.
    """
    schema = StoreSchema.from_settings(settings)
    if settings.index.backend == "edge":
        from citewise.retrieval.store.edge import EdgeStore

        return EdgeStore(settings.index_dir, schema)

    from qdrant_client import QdrantClient

    from citewise.retrieval.store.client import QdrantClientStore

    url = settings.index.url
    if not url:
        raise ConfigError("index.backend is 'server' but index.url is not set")
    api_key = settings.index.api_key.get_secret_value() if settings.index.api_key else None
    client = (
        QdrantClient(location=":memory:")
        if url == ":memory:"
        else QdrantClient(url=url, api_key=api_key)
    )
    return QdrantClientStore(client, schema, owns_client=True)
