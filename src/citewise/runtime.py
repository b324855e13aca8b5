"""Wiring: build every component once from `Settings` and hand them to an entry point.

The CLI and the API both call `Runtime.open`; nothing else constructs stores,
models or servers, so each process loads the index and the models exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from citewise.answer.cache import AnswerCache, CorpusVersions
from citewise.answer.conversations import ConversationStore
from citewise.answer.judge import LLMJudge, build_judge
from citewise.answer.pipeline import QAPipeline
from citewise.answer.tiers import ChatTier, build_chat_tier
from citewise.core.db import Database
from citewise.core.llm_server import LocalLLMServer
from citewise.core.models import Embedder
from citewise.core.settings import Settings
from citewise.ingest.filestore import LocalFileStore
from citewise.ingest.jobs import JobRunner
from citewise.ingest.parse import parse_file, prepare_offline
from citewise.ingest.parser_pool import ParserPool
from citewise.ingest.pipeline import Ingestor
from citewise.ingest.queue import JobQueue
from citewise.ingest.service import IngestService
from citewise.ingest.worker import WorkerPool
from citewise.retrieval.rerank import build_reranker
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
    files: LocalFileStore
    queue: JobQueue
    jobs: JobRunner
    service: IngestService
    conversations: ConversationStore
    llm_server: LocalLLMServer | None = None
    chat_tiers: dict[str, ChatTier] = field(default_factory=dict)
    workers: WorkerPool | None = None
    parsers: ParserPool | None = None

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
        db.migrate()
        embedder = embedder or Embedder(settings.embedding)
        store = build_store(settings)
        files = LocalFileStore(settings.data_dir / "files")
        files.clean_temporary()
        queue = JobQueue(settings.queue, settings.data_dir)
        retriever = Retriever(
            settings.retrieval,
            embedder=embedder,
            store=store,
            reranker=build_reranker(settings.retrieval.rerank, settings.models_dir),
        )
        parsers = ParserPool(settings) if settings.ingest.parse_processes > 0 else None
        ingestor = Ingestor(
            settings=settings,
            embedder=embedder,
            store=store,
            db=db,
            parser=parsers.parse if parsers is not None else parse_file,
        )
        jobs = JobRunner(
            db=db, files=files, ingestor=ingestor, store=store, settings=settings.queue
        )
        service = IngestService(
            settings=settings, db=db, files=files, store=store, enqueue=queue.enqueue
        )
        service.clean_stale_uploads()
        server: LocalLLMServer | None = None
        tiers: dict[str, ChatTier] = {}
        judge: LLMJudge | None = None
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
            judge = _judge(settings, server)
        except Exception:
            if server is not None:
                server.stop()
            store.close()
            queue.close()
            db.dispose()
            raise
        pipeline = QAPipeline(
            settings.answer,
            retriever=retriever,
            embedder=embedder,
            chat_tiers=tiers,
            judge=judge,
            cache=_answer_cache(settings, embedder, db),
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
            files=files,
            queue=queue,
            jobs=jobs,
            service=service,
            conversations=ConversationStore(db),
            llm_server=server,
            chat_tiers=tiers,
            parsers=parsers,
        )

    def warm_up(self, *, parsing: bool = True) -> None:
        """Load the models now, not on first use.

        Args:
            parsing: Also start the parser processes (or load the parser's language
                model here); False in a process that will not ingest.
        """
        self.embedder.warm_up()
        if self.retriever.reranker is not None:
            self.retriever.reranker.warm_up()
        if not parsing:
            return
        if self.parsers is not None:
            self.parsers.warm_up()
        else:
            prepare_offline(warm=True)

    def start_workers(self, threads: int) -> WorkerPool:
        """Consume the job queue on ``threads`` threads of this process (until `close`).

        With the embedded index this process is the only possible worker, so every
        unfinished job (its worker died with the process) is resumed at once; with
        a server index other workers may be alive, so only jobs whose lease ran
        out are.
        """
        if self.workers is None:
            self.workers = WorkerPool(
                self.queue,
                self.jobs,
                threads=threads,
                exclusive=self.settings.index.backend == "edge",
            )
            self.workers.start()
        return self.workers

    def stop_workers(self) -> None:
        """Stop consuming; a running job is handed back after its current file."""
        if self.workers is not None:
            self.workers.stop()
            self.workers = None

    def close(self) -> None:
        """Stop workers and the LLM server, flush the index and release the database."""
        self.stop_workers()
        if self.parsers is not None:
            self.parsers.close()
        if self.llm_server is not None:
            self.llm_server.stop()
        self.store.close()
        self.queue.close()
        self.db.dispose()


def _answer_cache(settings: Settings, embedder: Embedder, db: Database) -> AnswerCache | None:
    """The answer cache (and the embedder's query cache), unless ``cache.enabled`` is off."""
    cache = settings.cache
    if not cache.enabled:
        return None
    embedder.cache_queries(cache.embedding_size)
    if cache.answer_size <= 0:
        return None
    return AnswerCache(cache, embedder=embedder, versions=CorpusVersions(db))


def _judge(settings: Settings, server: LocalLLMServer | None) -> LLMJudge | None:
    """The LLM judge on the endpoint of ``verification.judge_tier``, when the verifier uses one.

    None when the verifier is ``fast`` or the tier's endpoint is not running
    (answers then say the judge was unavailable).
    """
    verification = settings.answer.verification
    if verification.verifier == "fast":
        return None
    tier = next((t for t in settings.answer.tiers if t.name == verification.judge_tier), None)
    if tier is None or (tier.kind == "local" and server is None) or tier.kind == "extractive":
        log.warning("judge_unavailable", tier=verification.judge_tier)
        return None
    if tier.kind == "local" and server is not None:
        tier = tier.model_copy(update={"model": server.model_name})
    return build_judge(
        tier,
        local_base_url=server.base_url if server is not None else None,
        timeout_s=verification.judge_timeout_s,
        concurrency=verification.judge_concurrency,
    )
