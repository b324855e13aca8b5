"""Ingestion throughput: end-to-end chunks/s beside the raw embedder's, and seconds per PDF page.

Not a test. Prints the hardware, then, in one run and one process, on a fresh
temporary data directory:

1. the sample set (``samples/kestrel``, 10 files of 7 types) through the upload
   path: ``IngestService.submit`` + ``JobRunner.run``, what ``citewise ingest``
   runs without a server and what the server's worker threads run for a queued
   job (parse -> chunk -> dense + BM25 -> Qdrant Edge upsert -> database); once
   with files parsed in a parser process (the default) and once on the job's
   prefetch thread (``ingest.parse_processes = 0``);
2. SciFact (``../shared/data/scifact/corpus.jsonl``, read in place) through the
   path BEIR corpora take, ``citewise.eval.retrieval.ingest_corpus`` ->
   ``Ingestor.ingest_texts`` (what ``citewise eval retrieval`` runs: no parsing,
   the rest as for files, embeddings batched across documents);
3. a generated 50-page text PDF through the upload path: seconds per page.

For 1 and 2 the raw embedder (sentence-transformers ``encode`` of exactly the
texts the ingestion embedded, same batch size, one call) is timed right after,
and the ratio end-to-end / raw is printed (target: at least 0.8). The sample set
is ingested once into a throw-away tenant first, so that the timed run is a warm
process (parser modules imported, as in a running server); the cold first run is
printed too.

    .venv/bin/python bench/ingest.py                    # everything, full SciFact
    .venv/bin/python bench/ingest.py --limit 500 --json ingest.json
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench_store import hardware
from citewise.core.logging import configure_logging
from citewise.core.models import Embedder
from citewise.core.settings import EmbeddingSettings, Settings, load_settings
from citewise.core.tenancy import Principal
from citewise.eval.beir import BeirDataset, BeirDocument
from citewise.eval.retrieval import ingest_corpus
from citewise.ingest.parse import parse_file
from citewise.ingest.pipeline import FileOutcome, doc_id_for
from citewise.ingest.service import Upload
from citewise.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "kestrel"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
TARGET = 0.8


class RecordingEmbedder(Embedder):
    """The product's embedder, noting the texts it embeds and the time it spends."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        super().__init__(settings)
        self.texts: list[str] = []
        self.calls: list[int] = []
        self.seconds = 0.0

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed as usual; remember the texts and the time."""
        started = time.perf_counter()
        vectors = super().embed(texts)
        self.seconds += time.perf_counter() - started
        self.texts.extend(texts)
        self.calls.append(len(texts))
        return vectors

    def reset(self) -> None:
        """Forget what was recorded."""
        self.texts = []
        self.calls = []
        self.seconds = 0.0


@dataclasses.dataclass
class Figure:
    """One measured ingestion."""

    name: str
    path: str
    documents: int
    chunks: int
    e2e_s: float
    embed_in_e2e_s: float
    embed_calls: list[int]
    raw_s: float = 0.0
    prepare_s: float = 0.0
    """Seconds to parse, chunk and BM25-encode the files alone, one after another."""

    @property
    def ceiling(self) -> float:
        """The best ratio two busy cores allow: the embedder keeps both, preparing takes
        one, so end to end takes at least raw + prepare / 2 (1.0 without parsing)."""
        return self.raw_s / (self.raw_s + self.prepare_s / 2) if self.raw_s else 0.0

    @property
    def e2e_rate(self) -> float:
        """End-to-end chunks per second."""
        return self.chunks / self.e2e_s if self.e2e_s else 0.0

    @property
    def raw_rate(self) -> float:
        """Raw embedder chunks per second."""
        return self.chunks / self.raw_s if self.raw_s else 0.0

    @property
    def ratio(self) -> float:
        """End-to-end throughput as a share of the raw embedder's."""
        return self.e2e_rate / self.raw_rate if self.raw_rate else 0.0


def raw_seconds(embedder: Embedder, texts: list[str]) -> float:
    """Seconds for sentence-transformers to encode `texts` in one call, as the embedder does."""
    started = time.perf_counter()
    embedder.model.encode(
        texts,
        batch_size=embedder.settings.batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return time.perf_counter() - started


def measured(
    embedder: RecordingEmbedder, *, name: str, path: str, documents: int, chunks: int, e2e_s: float
) -> Figure:
    """The figure of an end-to-end run, with the raw embedder timed on the texts it embedded."""
    assert len(embedder.texts) == chunks, (len(embedder.texts), chunks)
    return Figure(
        name=name,
        path=path,
        documents=documents,
        chunks=chunks,
        e2e_s=e2e_s,
        embed_in_e2e_s=embedder.seconds,
        embed_calls=list(embedder.calls),
        raw_s=raw_seconds(embedder, embedder.texts),
    )


def profiled(enabled: bool, label: str, work: Callable[[], Any]) -> Any:
    """Run `work`, printing its top Citewise functions by cumulative time when `enabled`."""
    if not enabled:
        return work()
    profile = cProfile.Profile()
    result = profile.runcall(work)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).sort_stats("cumulative")
    stats.print_stats(r"citewise|sentence_transformers/.*encode|qdrant|sqlalchemy/orm/session", 25)
    print(f"--- profile: {label}\n{out.getvalue()}")
    return result


def upload_files(runtime: Runtime, tenant: str, files: list[Path], root: Path) -> int:
    """Ingest files as ``citewise ingest`` does without a server; returns the chunks indexed."""
    principal = Principal(tenant_id=tenant, user_id="bench")
    uploads = [Upload(stream=p, filename=p.name, doc_id=doc_id_for(p, root)) for p in files]
    outcomes: list[FileOutcome] = []
    job = runtime.service.submit(principal, uploads, queue=False).job
    runtime.jobs.run(job.id, on_file=lambda _name, outcome: outcomes.append(outcome))
    failed = [o for o in outcomes if o.status == "failed"]
    if failed or runtime.service.get_job(principal, job.id).status != "succeeded":
        raise SystemExit(f"ingestion failed: {failed}")
    return sum(o.chunks for o in outcomes)


def bench_samples(
    runtime: Runtime, embedder: RecordingEmbedder, profile: bool, *, variant: str = ""
) -> Figure:
    """The sample set through the upload path, after an untimed warm-up run."""
    files = sorted(p for p in SAMPLES.iterdir() if p.is_file())
    tenant = "samples" + (f"-{variant.split()[-1]}" if variant else "")
    started = time.perf_counter()
    upload_files(runtime, f"warmup-{tenant}", files, SAMPLES)
    print(
        f"sample set{variant and f' ({variant})'}, cold first run (untimed tenant): "
        f"{time.perf_counter() - started:.1f} s"
    )
    embedder.reset()
    started = time.perf_counter()
    chunks = profiled(profile, tenant, lambda: upload_files(runtime, tenant, files, SAMPLES))
    how = "IngestService.submit + JobRunner.run (citewise ingest, API workers)"
    figure = measured(
        embedder,
        name="sample set" + (f", {variant}" if variant else ""),
        path=how + (f", {variant}" if variant else ", parsing in a parser process"),
        documents=len(files),
        chunks=chunks,
        e2e_s=time.perf_counter() - started,
    )
    figure.prepare_s = prepare_seconds(runtime, files)
    return figure


def prepare_seconds(runtime: Runtime, files: list[Path]) -> float:
    """Seconds to prepare (parse, chunk, BM25) the files one by one, with nothing beside it."""
    started = time.perf_counter()
    for path in files:
        runtime.ingestor.prepare_file(
            path, tenant_id="samples", doc_id=doc_id_for(path, SAMPLES), force=True
        )
    return time.perf_counter() - started


def bench_scifact(
    runtime: Runtime, embedder: RecordingEmbedder, corpus: Path, limit: int | None, profile: bool
) -> Figure:
    """SciFact's abstracts through the BEIR path (`ingest_corpus` -> `Ingestor.ingest_texts`)."""
    with corpus.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()][:limit]
    docs = [
        BeirDocument(doc_id=str(r["_id"]), title=str(r.get("title") or ""), text=str(r["text"]))
        for r in rows
    ]
    dataset = BeirDataset(name="scifact", split="-", corpus=docs, queries={}, qrels={})
    embedder.reset()
    started = time.perf_counter()
    chunks, indexed = profiled(
        profile, "scifact", lambda: ingest_corpus(runtime, dataset, tenant="scifact")
    )
    return measured(
        embedder,
        name=f"SciFact ({len(docs):,} abstracts)",
        path="eval.retrieval.ingest_corpus -> Ingestor.ingest_texts (citewise eval retrieval)",
        documents=indexed,
        chunks=chunks,
        e2e_s=time.perf_counter() - started,
    )


def write_pdf(path: Path, pages: int) -> None:
    """A text PDF of `pages` pages: a heading and about 450 words of prose on each."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    rng = np.random.default_rng(7)
    words = (
        "policy employee travel expense approval manager budget report security access "
        "network device training review quarter project customer contract supplier invoice "
        "payment record retention audit risk incident response office schedule meeting"
    ).split()
    story: list[Any] = []
    for page in range(1, pages + 1):
        story.append(Paragraph(f"Section {page}: operating procedure {page}", styles["Heading2"]))
        for _ in range(5):
            sentence = [
                " ".join(rng.choice(words, size=int(rng.integers(8, 16)))).capitalize() + "."
                for _ in range(6)
            ]
            story.append(Paragraph(" ".join(sentence), styles["BodyText"]))
        story.append(PageBreak())
    SimpleDocTemplate(str(path), pagesize=A4).build(story)


def bench_pdf(runtime: Runtime, tmp: Path, pages: int) -> dict[str, float]:
    """Seconds per page of a text PDF through the upload path (parse share separately)."""
    from pypdf import PdfReader

    path = tmp / f"manual-{pages}-pages.pdf"
    write_pdf(path, pages)
    assert len(PdfReader(path).pages) == pages
    principal = Principal(tenant_id="pdf", user_id="bench")
    outcomes: list[FileOutcome] = []
    started = time.perf_counter()
    job = runtime.service.submit(principal, [Upload(stream=path, filename=path.name)], queue=False)
    runtime.jobs.run(job.job.id, on_file=lambda _name, outcome: outcomes.append(outcome))
    seconds = time.perf_counter() - started
    (outcome,) = outcomes
    assert outcome.status == "indexed", outcome
    return {
        "pages": pages,
        "chunks": outcome.chunks,
        "seconds": seconds,
        "s_per_page": seconds / pages,
        "parse_s_per_page": outcome.timings_ms.get("parse", 0.0) / 1000 / pages,
    }


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="BEIR corpus.jsonl")
    parser.add_argument("--limit", type=int, default=None, help="first N abstracts only")
    parser.add_argument("--pages", type=int, default=50, help="pages of the generated PDF")
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--skip-pdf", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile each end-to-end run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    configure_logging("WARNING")
    print(f"hardware: {hardware()}")
    print(f"torch {torch.__version__}: {torch.get_num_threads()} threads")

    with tempfile.TemporaryDirectory(prefix="citewise-bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        settings: Settings = load_settings(data_dir=tmp / "data", log_level="WARNING")
        embedder = RecordingEmbedder(settings.embedding)
        runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
        try:
            runtime.warm_up()
            print(
                f"embedder: {settings.embedding.model}, batch size "
                f"{settings.embedding.batch_size}, max {settings.embedding.max_seq_length} "
                f"tokens; chunks of {settings.chunking.max_tokens} tokens; data dir {tmp}"
            )
            figures = [bench_samples(runtime, embedder, args.profile)]
            pooled = runtime.ingestor.parser
            runtime.ingestor.parser = parse_file  # parse_processes = 0, for comparison
            figures.append(
                bench_samples(runtime, embedder, args.profile, variant="parsing in-process")
            )
            runtime.ingestor.parser = pooled
            if not args.skip_scifact:
                figures.append(
                    bench_scifact(runtime, embedder, args.scifact, args.limit, args.profile)
                )
            pdf = None if args.skip_pdf else bench_pdf(runtime, tmp, args.pages)
        finally:
            runtime.close()

    print()
    print("| corpus | docs | chunks | end-to-end s | chunks/s | embedding in e2e s (calls) "
          "| raw embedder s | raw chunks/s | ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for f in figures:
        mark = "" if f.ratio >= TARGET else f" (below {TARGET})"
        print(
            f"| {f.name} | {f.documents} | {f.chunks} | {f.e2e_s:.1f} | {f.e2e_rate:.1f} | "
            f"{f.embed_in_e2e_s:.1f} ({len(f.embed_calls)}) | {f.raw_s:.1f} | "
            f"{f.raw_rate:.1f} | {f.ratio:.2f}{mark} |"
        )
    for f in figures:
        sizes = ", ".join(map(str, f.embed_calls[:12])) + (
            ", ..." if len(f.embed_calls) > 12 else ""
        )
        print(f"{f.name}: {f.path}; chunks per embedding call: {sizes}")
        if f.prepare_s:
            print(
                f"{f.name}: parsing, chunking and BM25 alone take {f.prepare_s:.1f} s; with the "
                f"embedder on both cores the best ratio this machine allows is {f.ceiling:.2f}"
            )
    if pdf is not None:
        print(
            f"\n{pdf['pages']}-page text PDF ({pdf['chunks']} chunks): {pdf['seconds']:.1f} s, "
            f"{pdf['s_per_page']:.3f} s/page (parsing {pdf['parse_s_per_page']:.3f} s/page)"
        )
    if args.json is not None:
        payload = {
            "hardware": hardware(),
            "torch_threads": torch.get_num_threads(),
            "figures": [
                {
                    **dataclasses.asdict(f),
                    "e2e_chunks_per_s": f.e2e_rate,
                    "raw_chunks_per_s": f.raw_rate,
                    "ratio": f.ratio,
                    "ceiling": f.ceiling,
                }
                for f in figures
            ],
            "pdf": pdf,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
