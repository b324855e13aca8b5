"""A sentence-transformers `CrossEncoder` reranker (by model id, local path or trained name)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import structlog

from citewise.core.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers.cross_encoder import CrossEncoder

log = structlog.get_logger(__name__)


class CrossEncoderReranker:
    """Scores pairs jointly with a cross-encoder; loads its weights on first use.

    Args:
        source: Local directory or Hugging Face model id.
        max_length: Tokens per (query, passage) pair (None: the model's own limit).
        batch_size: Pairs per forward pass.
        quantize: Apply int8 dynamic quantization to Linear layers (CPU only).
        device: Torch device.
    """

    def __init__(
        self,
        source: str,
        *,
        max_length: int | None = None,
        batch_size: int = 32,
        quantize: bool = False,
        device: str = "cpu",
    ) -> None:
        self.name = f"cross-encoder:{source}"
        self.source = source
        self.max_length = max_length
        self.batch_size = batch_size
        self.quantize = quantize and device == "cpu"
        self.device = device
        self._model: CrossEncoder | None = None
        self._lock = threading.Lock()
        self._identity: Callable[..., object] | None = None

    def warm_up(self) -> None:
        """Load (and optionally quantize) the model once; thread-safe."""
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers.cross_encoder import CrossEncoder

            try:
                model = CrossEncoder(self.source, device=self.device, max_length=self.max_length)
            except Exception as exc:  # the library raises many types for a bad model
                raise ModelError(f"cannot load reranker {self.source!r}: {exc}") from exc
            if model.num_labels != 1:
                raise ModelError(
                    f"reranker {self.source!r} has {model.num_labels} labels; a reranker needs 1"
                )
            import torch

            if self.quantize:
                torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                    model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
                )
            model.eval()
            self._identity = torch.nn.Identity()
            self._model = model
            log.info("reranker_loaded", model=self.source, quantized=self.quantize)

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        """Raw relevance logits, one per passage."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        if self._model is None:
            self.warm_up()
        assert self._model is not None
        scores = self._model.predict(
            [(query, p) for p in passages],
            batch_size=self.batch_size,
            activation_fn=self._identity,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(scores, dtype=np.float32)
