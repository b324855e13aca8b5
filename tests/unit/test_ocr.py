"""OCR of scanned PDFs and images with the real tesseract-ocr, and the message without it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from citewise.core.errors import EmptyDocumentError, OCRUnavailableError
from citewise.ingest.parse import ParsedDocument, parse_file
from tests.netguard import outbound_attempts
from tests.scans import render_page, scanned_image, scanned_pdf
from tests.unit.test_parse import make_pdf, write_pdf

MAX = 20_000_000
MEMO = ["Kestrel Audit Memo", "The quarterly audit found seven open findings."]
SECOND = ["Remediation Plan", "Every finding must be closed by the end of March."]

needs_tesseract = pytest.mark.skipif(
    any(shutil.which(p) is None for p in ("tesseract", "pdfinfo", "pdftoppm")),
    reason="OCR needs the tesseract-ocr and poppler-utils programs (.ci/run installs them)",
)


def words(doc: ParsedDocument) -> str:
    return " ".join(" ".join(element.text.split()) for element in doc.elements).lower()


def mixed_pdf(tmp_path: Path) -> Path:
    """Two text pages (the leave policy), then one scanned page."""
    writer = PdfWriter(clone_from=PdfReader(write_pdf(tmp_path / "text.pdf")))
    for page in PdfReader(scanned_pdf(tmp_path / "scan-page.pdf", [MEMO])).pages:
        writer.add_page(page)
    path = tmp_path / "mixed.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    return path


@pytest.fixture()
def no_tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holds poppler's programs (when installed) but no tesseract."""
    bin_dir = tmp_path / "bin-without-tesseract"
    bin_dir.mkdir()
    for program in ("pdfinfo", "pdftoppm"):
        if found := shutil.which(program):
            os.symlink(found, bin_dir / program)
    monkeypatch.setenv("PATH", str(bin_dir))


@needs_tesseract
def test_scanned_pdf_is_read_by_ocr_with_the_default_strategy(tmp_path: Path) -> None:
    path = scanned_pdf(tmp_path / "audit.pdf", [MEMO, SECOND])
    assert all(page.extract_text() == "" for page in PdfReader(path).pages)  # no text layer
    with outbound_attempts() as net:
        doc = parse_file(path, max_bytes=MAX)
    assert net.outbound == []
    assert "the quarterly audit found seven open findings" in words(doc)
    assert "closed by the end of march" in words(doc)
    assert {element.page for element in doc.elements} == {1, 2}
    by_page = {e.page: e.text.lower() for e in doc.elements if "finding" in e.text.lower()}
    assert "seven open findings" in by_page[1] and "closed" in by_page[2]


@needs_tesseract
def test_only_pages_without_a_text_layer_are_ocred(tmp_path: Path) -> None:
    doc = parse_file(mixed_pdf(tmp_path), max_bytes=MAX)
    pages = {element.page for element in doc.elements}
    assert pages == {1, 2, 3}
    page_one = [e.text for e in doc.elements if e.page == 1]
    assert page_one[:2] == [
        "Kestrel Leave Policy",  # the text layer, exactly
        "Employees receive twenty days of annual leave each year.",
    ]
    page_three = " ".join(e.text for e in doc.elements if e.page == 3).lower()
    assert "seven open findings" in page_three
    assert doc.title == "Kestrel Leave Policy"


@needs_tesseract
@pytest.mark.parametrize(
    ("suffix", "image_format"), [(".png", "PNG"), (".jpg", "JPEG"), (".tiff", "TIFF")]
)
def test_images_are_read_by_ocr(tmp_path: Path, suffix: str, image_format: str) -> None:
    path = scanned_image(tmp_path / f"memo{suffix}", MEMO, image_format)
    with outbound_attempts() as net:
        doc = parse_file(path, max_bytes=MAX)
    assert net.outbound == []
    assert "seven open findings" in words(doc)
    assert {element.page for element in doc.elements} == {1}


@needs_tesseract
def test_every_frame_of_a_multi_page_tiff_is_read(tmp_path: Path) -> None:
    path = tmp_path / "two-pages.tiff"
    render_page(MEMO).save(path, "TIFF", save_all=True, append_images=[render_page(SECOND)])
    doc = parse_file(path, max_bytes=MAX)
    by_page = {
        page: " ".join(e.text for e in doc.elements if e.page == page).lower() for page in (1, 2)
    }
    assert "seven open findings" in by_page[1] and "end of march" in by_page[2]


@needs_tesseract
def test_blank_pdf_has_no_text_even_after_ocr(tmp_path: Path) -> None:
    path = tmp_path / "blank.pdf"
    path.write_bytes(make_pdf([[]]))
    with pytest.raises(EmptyDocumentError, match="OCR found no text in it either"):
        parse_file(path, max_bytes=MAX)


def test_fast_strategy_never_ocrs(tmp_path: Path) -> None:
    path = scanned_pdf(tmp_path / "audit.pdf", [MEMO])
    with pytest.raises(EmptyDocumentError, match="set ingest.pdf_strategy to auto"):
        parse_file(path, max_bytes=MAX, pdf_strategy="fast")


@pytest.mark.usefixtures("no_tesseract")
def test_scanned_pdf_without_tesseract_says_how_to_install_it(tmp_path: Path) -> None:
    path = scanned_pdf(tmp_path / "audit.pdf", [MEMO, SECOND])
    with pytest.raises(OCRUnavailableError) as info:
        parse_file(path, max_bytes=MAX)
    assert info.value.code == "ocr_unavailable"
    message = str(info.value)
    assert message.startswith(
        "'audit.pdf' has no text layer on any of its 2 page(s) (a scan?). "
        "OCR needs tesseract-ocr; install it (Debian: apt-get install tesseract-ocr "
        "tesseract-ocr-eng poppler-utils) and ingest the file again. Missing here: tesseract"
    )


@pytest.mark.usefixtures("no_tesseract")
def test_image_without_tesseract_says_how_to_install_it(tmp_path: Path) -> None:
    path = scanned_image(tmp_path / "memo.png", MEMO, "PNG")
    with pytest.raises(OCRUnavailableError, match=r"'memo.png' is an image: .*OCR needs tesseract"):
        parse_file(path, max_bytes=MAX)


@pytest.mark.usefixtures("no_tesseract")
def test_mixed_pdf_without_tesseract_names_the_scanned_pages(tmp_path: Path) -> None:
    with pytest.raises(
        OCRUnavailableError, match=r"1 scanned page\(s\) without a text layer \(page 3\)"
    ):
        parse_file(mixed_pdf(tmp_path), max_bytes=MAX)


@pytest.mark.usefixtures("no_tesseract")
def test_text_pdf_with_a_blank_page_needs_no_tesseract(tmp_path: Path) -> None:
    path = tmp_path / "with-blank.pdf"
    path.write_bytes(make_pdf([["Canteen Rules", "Trays go back to the rack."], []]))
    doc = parse_file(path, max_bytes=MAX)
    assert [e.text for e in doc.elements] == ["Canteen Rules", "Trays go back to the rack."]
