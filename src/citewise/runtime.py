"""Wiring: build every component once from `Settings` and hand them to an entry point.

The CLI and the API both call `Runtime.open`; nothing else constructs stores,
models or servers, so each process loads the index and the models exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from citewise.answer.pipeline import QAPipeline
from citewise.answer.tiers import ChatTier, build_chat_tier
from citewise.core.db import Database
from citewise.core.llm_server import LocalLLMServer
from citewise.core.models import Embedder
from citewise.core.settings import Settings
from citewise.ingest.parse import prepare_offline
from citewise.ingest.pipeline import Ingestor
from citewise.retrieval.search import Retriever
from citewise.retrieval.store import build_store
from citewise.retrieval.store.base import VectorStore

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """The components of one Citewise process."""

    settings: Settings
    db: Database
    embedder: Embedder
    store: VectorStore
    retriever: Retriever
    ingestor: Ingestor
    pipeline: QAPipeline
    llm_server: LocalLLMServer | None = None
    chat_tiers: dict[str, ChatTier] = field(default_factory=dict)

    @classmethod
    def open(
        cls, settings: Settings, *, start_llm: bool = True, embedder: Embedder | None = None
    ) -> Runtime:
        """Open the database and index, and (optionally) start the embedded LLM.

        Args:
            settings: The process's settings.
            start_llm: Start the local llama.cpp server when a ``local`` tier is configured.
            embedder: An embedder to share (tests load the model once per session).

        Returns:
            A runtime whose `close()` must be called.
        """
        prepare_offline()  # before anything imports unstructured
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        db.create_schema()
        embedder = embedder or Embedder(settings.embedding)
        store = build_store(settings)
        retriever = Retriever(settings.retrieval, embedder=embedder, store=store)
        ingestor = Ingestor(settings=settings, embedder=embedder, store=store, db=db)
        server: LocalLLMServer | None = None
        tiers: dict[str, ChatTier] = {}
        try:
            for tier in settings.answer.tiers:
                if tier.kind == "openai":
                    tiers[tier.name] = build_chat_tier(tier)
                elif tier.kind == "local" and start_llm:
                    if server is None:
                        server = LocalLLMServer(settings.llm, settings.models_dir)
                        server.start()
                    tiers[tier.name] = build_chat_tier(
                        tier.model_copy(update={"model": server.model_name}),
                        local_base_url=server.base_url,
                    )
        except Exception:
            if server is not None:
                server.stop()
            store.close()
            db.dispose()
            raise
        pipeline = QAPipeline(
            settings.answer, retriever=retriever, embedder=embedder, chat_tiers=tiers
        )
        log.info("runtime_open", index=settings.index.backend, tiers=list(tiers))
        return cls(
            settings=settings,
            db=db,
            embedder=embedder,
            store=store,
            retriever=retriever,
            ingestor=ingestor,
            pipeline=pipeline,
            llm_server=server,
            chat_tiers=tiers,
        )

    def warm_up(self) -> None:
        """Load the embedder and the parser's language model now, not on the first request."""
        self.embedder.warm_up()
        prepare_offline(warm=True)

    def close(self) -> None:
        """Stop the LLM server, flush the index and release the database."""
        if self.llm_server is not None:
            self.llm_server.stop()
        self.store.close()
        self.db.dispose()
