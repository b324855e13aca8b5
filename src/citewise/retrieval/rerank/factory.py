"""Build the configured reranker and resolve where its model lives."""

from __future__ import annotations

from pathlib import Path

from citewise.core.errors import ConfigError, ModelError
from citewise.core.settings import RerankSettings
from citewise.retrieval.rerank.base import Reranker
from citewise.retrieval.rerank.cross_encoder import CrossEncoderReranker
from citewise.retrieval.rerank.llm import LLMReranker

TRAINED_PREFIX = "trained:"


def trained_reranker_dir(models_dir: Path, name: str) -> Path:
    """Where `citewise reranker train` saves the model called `name`."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"invalid trained reranker name {name!r}")
    return models_dir / "rerankers" / name


def resolve_reranker_model(model: str, models_dir: Path) -> str:
    """Turn the model setting into a path or id `CrossEncoder` loads.

    Raises:
        ModelError: A ``trained:NAME`` model that has not been trained yet.
    """
    if not model.startswith(TRAINED_PREFIX):
        return model
    name = model.removeprefix(TRAINED_PREFIX)
    folder = trained_reranker_dir(models_dir, name)
    if not (folder / "config.json").is_file():
        raise ModelError(
            f"no trained reranker {name!r} under {folder}; train one with "
            f"`citewise reranker train --beir DIR --name {name}`"
        )
    return str(folder)


def build_reranker(settings: RerankSettings, models_dir: Path) -> Reranker | None:
    """The configured reranker, or None when reranking is off."""
    if settings.backend == "none":
        return None
    if settings.backend == "llm":
        if not settings.llm_base_url or not settings.llm_model:
            raise ConfigError("the llm reranker needs retrieval.rerank.llm_base_url and llm_model")
        host = settings.llm_base_url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        return LLMReranker(
            settings.llm_base_url,
            settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
            loopback=host in {"127.0.0.1", "localhost", "::1"},
        )
    return CrossEncoderReranker(
        resolve_reranker_model(settings.model, models_dir),
        max_length=settings.max_length,
        batch_size=settings.batch_size,
        quantize=settings.quantize,
    )
