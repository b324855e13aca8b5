from citewise.answer.citations import cited_numbers, locate_quote, strip_marks, with_marks
from citewise.answer.sentences import split_sentences
from citewise.answer.support import lexical_support, numbers_supported
from citewise.core.schemas import Citation


def _citation(passage: str) -> Citation:
    return Citation(
        number=1, doc_id="d", version=1, source="d.md", title="D", section="", page=None,
        chunk_index=0, passage=passage,
    )  # fmt: skip


def test_split_sentences_keeps_offsets_and_citations() -> None:
    text = "Leave is 25 days [1]. Carry over up to 5 days, e.g. into March [2][3]. Ask HR."
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        "Leave is 25 days [1].",
        "Carry over up to 5 days, e.g. into March [2][3].",
        "Ask HR.",
    ]
    for s in sentences:
        assert text[s.start : s.end] == s.text


def test_split_sentences_on_line_breaks_and_decimals() -> None:
    assert [s.text for s in split_sentences("Costs 3.5 EUR.\n- item one\n\n")] == [
        "Costs 3.5 EUR.",
        "- item one",
    ]


def test_citation_marks_parse_and_rewrite() -> None:
    assert cited_numbers("A [2] b [1][2].") == [2, 1]
    assert strip_marks("Leave is 25 days [1].") == "Leave is 25 days."
    assert with_marks("Leave is 25 days [1][9].", [1]) == "Leave is 25 days [1]."
    assert with_marks("No final stop [4]", [2, 3]) == "No final stop [2][3]."


def test_numbers_must_appear_in_the_passage() -> None:
    passage = "Employees receive 28 days of annual leave, rising to 30 after five years."
    assert numbers_supported("You get 28 days.", passage)
    assert not numbers_supported("You get 35 days.", passage)
    assert lexical_support("annual leave days", passage) == 1.0
    assert lexical_support("pension contributions", passage) == 0.0


def test_locate_quote_finds_the_supporting_sentence() -> None:
    passage = "Offices open at 8. Annual leave is 28 days per year. Parking is free."
    cited = locate_quote("How much annual leave? 28 days per year.", _citation(passage))
    assert cited.quote == "Annual leave is 28 days per year."
    assert passage[cited.start : cited.end] == cited.quote
