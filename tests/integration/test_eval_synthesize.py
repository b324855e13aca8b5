"""A tiny synthetic QA set from the sample corpus, written by the embedded LLM (Qwen2.5-1.5B)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from citewise.core.llm_server import LocalLLMServer
from citewise.core.tenancy import Principal
from citewise.eval.datasets import MULTI_HOP, UNANSWERABLE, load_qa, write_qa
from citewise.eval.ragas_llm import JudgeEndpoint
from citewise.eval.synthesize import SINGLE_HOP, SYNTHETIC, AnswerabilityCheck, synthesize
from citewise.runtime import Runtime
from tests.conftest import MODELS_DIR
from tests.netguard import outbound_attempts

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.llm]


@pytest.fixture(scope="module")
def endpoint(demo_runtime) -> Iterator[JudgeEndpoint]:  # type: ignore[no-untyped-def]
    with LocalLLMServer(demo_runtime.settings.llm, MODELS_DIR) as server:
        assert server.base_url is not None
        yield JudgeEndpoint(server.base_url, server.model_name, SecretStr("not-needed"), 600.0)


def test_synthesizes_a_small_set_with_provenance(
    demo_runtime: Runtime,
    endpoint: JudgeEndpoint,
    tmp_path: Path,
) -> None:
    with outbound_attempts() as net:
        items, report = synthesize(
            demo_runtime,
            endpoint,
            tenant="demo",
            counts={"single_hop": 1, "multi_hop": 1, "unanswerable": 1},
            seed=0,
            attempts_per_item=2,  # bounds the run: at most 6 proposals
        )
    assert net.outbound == []
    assert report.llm_calls >= len(items)
    assert sum(report.kept.values()) == len(items)
    kinds = {kind: [i for i in items if kind in i.tags] for kind in (SINGLE_HOP, MULTI_HOP)}
    kinds[UNANSWERABLE] = [i for i in items if not i.answerable]
    assert kinds[SINGLE_HOP], f"no single-hop question kept: {dict(report.dropped)}"
    for kind in ("single_hop", "multi_hop", "unanswerable"):  # every kind was attempted
        tried = report.kept[kind] + sum(
            n for reason, n in report.dropped.items() if reason.startswith(f"{kind}:")
        )
        assert tried >= 1, kind

    path = tmp_path / "synthetic.jsonl"
    write_qa(items, path)
    loaded = load_qa(path)
    assert loaded.items == items

    chunks = {f"{c.doc_id}#{c.chunk_index}": c for c in demo_runtime.store.chunks("demo")}
    for item in items:
        assert SYNTHETIC in item.tags and item.question.endswith("?")
        assert item.source_chunks and all(ref in chunks for ref in item.source_chunks)
        sources = [chunks[ref] for ref in item.source_chunks]
        if item.answerable:
            assert item.reference
            assert item.reference_contexts == [c.text for c in sources]
            assert item.reference_doc_ids == sorted({c.doc_id for c in sources})
        else:
            assert not item.reference and not item.reference_doc_ids
    for item in kinds[MULTI_HOP]:
        assert len(item.source_chunks) == 2
    for item in kinds[SINGLE_HOP]:
        assert len(item.source_chunks) == 1

    # Unanswerable items pass the retrieval check when asked again.
    check = AnswerabilityCheck(demo_runtime, endpoint, Principal(tenant_id="demo", role="admin"))
    for item in kinds[UNANSWERABLE]:
        answered, how = check.answered(item.question, chunks[item.source_chunks[0]])
        assert not answered, how
