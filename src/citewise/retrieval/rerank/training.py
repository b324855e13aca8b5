"""Fine-tune a cross-encoder reranker on (query, positive, hard negatives) examples.

Starts from a sentence-transformers checkpoint (the packaged MiniLM by default)
and trains with sentence-transformers' `CrossEncoderTrainer` and a listwise
loss (`MultipleNegativesRankingLoss`: each query's positive against its mined
hard negatives). The result is a normal `CrossEncoder` directory that the
``cross-encoder`` backend loads.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from citewise.core.errors import ConfigError

log = structlog.get_logger(__name__)

METADATA_FILE = "citewise-reranker.json"


@dataclass(frozen=True)
class TrainingExample:
    """One query with a relevant passage and passages retrieval ranked high but are not relevant."""

    query_id: str
    query: str
    positive: str
    negatives: tuple[str, ...]


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of a fine-tuning run (defaults measured on SciFact dev folds)."""

    base_model: str
    epochs: float = 1.0
    learning_rate: float = 5e-5
    batch_size: int = 4
    max_length: int = 160
    warmup_ratio: float = 0.1
    seed: int = 7
    layers: int | None = None
    """Keep only the first N transformer layers (faster reranking, usually less accurate)."""


@dataclass
class TrainingReport:
    """What a training run did, saved beside the model as `citewise-reranker.json`."""

    config: dict[str, Any]
    examples: int
    steps: int
    seconds: float
    final_loss: float | None
    trained_on: dict[str, Any] = field(default_factory=dict)


def train_cross_encoder(
    examples: Sequence[TrainingExample],
    config: TrainingConfig,
    out_dir: Path,
    *,
    trained_on: dict[str, Any] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> TrainingReport:
    """Train a cross-encoder and save it to `out_dir` (replaced atomically).

    Args:
        examples: Training examples; every one needs the same number of negatives.
        config: Hyper-parameters and the base checkpoint (local path or id).
        out_dir: Target directory; written to a sibling temp dir, then swapped in.
        trained_on: Provenance (dataset, split, query ids) stored with the model so
            evaluation can exclude the queries it was trained on.
        on_step: Called with (step, total steps) as training advances.

    Returns:
        The training report (also written to `out_dir/citewise-reranker.json`).
    """
    if not examples:
        raise ConfigError("no training examples: nothing to train the reranker on")
    widths = {len(e.negatives) for e in examples}
    if len(widths) != 1 or 0 in widths:
        raise ConfigError("every training example needs the same, non-zero number of negatives")
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
        losses,
    )
    from transformers import TrainerCallback, set_seed
    from transformers.utils import logging as hf_logging

    # The fresh classification head's "MISSING weights" report is expected noise.
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

    width = widths.pop()
    columns: dict[str, list[str]] = {"query": [e.query for e in examples]}
    columns["positive"] = [e.positive for e in examples]
    for i in range(width):
        columns[f"negative_{i + 1}"] = [e.negatives[i] for e in examples]
    dataset = Dataset.from_dict(columns).shuffle(seed=config.seed)

    # Seed before building the model: its fresh classification head is drawn at random,
    # and the trainer seeds only later; without this two runs train different models.
    set_seed(config.seed)
    model = CrossEncoder(config.base_model, num_labels=1, max_length=config.max_length)
    if config.layers is not None:
        _keep_layers(model, config.layers)
    loss = losses.MultipleNegativesRankingLoss(model, num_negatives=1)
    staging = out_dir.with_name(f".{out_dir.name}.training")
    shutil.rmtree(staging, ignore_errors=True)
    args = CrossEncoderTrainingArguments(
        output_dir=str(staging / "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,
        logging_steps=20,
        save_strategy="no",
        report_to="none",
        seed=config.seed,
        use_cpu=model.device.type == "cpu",
        disable_tqdm=True,
    )
    losses_seen: list[float] = []

    class _Progress(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if on_step is not None:
                on_step(state.global_step, state.max_steps)

        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            logs = kwargs.get("logs") or {}
            if "loss" in logs:
                losses_seen.append(float(logs["loss"]))
                log.info("reranker_train_loss", step=state.global_step, loss=logs["loss"])

    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[_Progress()]
    )
    start = time.perf_counter()
    result = trainer.train()
    report = TrainingReport(
        config=asdict(config),
        examples=len(examples),
        steps=int(result.global_step),
        seconds=round(time.perf_counter() - start, 1),
        final_loss=losses_seen[-1] if losses_seen else None,
        trained_on=trained_on or {},
    )
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    model.save_pretrained(str(staging))
    (staging / METADATA_FILE).write_text(json.dumps(asdict(report), indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    log.info("reranker_trained", path=str(out_dir), steps=report.steps, seconds=report.seconds)
    return report


def read_training_report(model_dir: Path) -> TrainingReport | None:
    """The report saved with a model trained by Citewise (None for other models)."""
    path = model_dir / METADATA_FILE
    if not path.is_file():
        return None
    return TrainingReport(**json.loads(path.read_text()))


def _keep_layers(model: Any, layers: int) -> None:
    """Drop the encoder layers above `layers` (the config is saved with the new depth)."""
    network = model[0].auto_model
    encoder = getattr(network, network.base_model_prefix).encoder
    if not 1 <= layers <= len(encoder.layer):
        raise ConfigError(f"layers must lie in 1..{len(encoder.layer)}, got {layers}")
    encoder.layer = encoder.layer[:layers]
    network.config.num_hidden_layers = layers
