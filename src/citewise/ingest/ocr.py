"""OCR of scanned PDF pages and images with Debian's tesseract-ocr, offline.

Everything goes through unstructured's ``ocr_only`` strategy (pdf2image renders PDF
pages with poppler-utils, unstructured-pytesseract runs the ``tesseract`` program).
unstructured's own ``auto`` is never used: it picks ``hi_res`` for images, which needs
hub models, and decides per document, not per page. `ocr_pdf_pages` OCRs only the
pages it is given, by copying them into a temporary PDF and mapping page numbers back.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from citewise.core.errors import OCRUnavailableError

LANGUAGES = ["eng"]
PDF_PROGRAMS = ("tesseract", "pdfinfo", "pdftoppm")
IMAGE_PROGRAMS = ("tesseract",)
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng poppler-utils"
_PACKAGE_OF = {
    "tesseract": "tesseract-ocr",
    "pdfinfo": "poppler-utils",
    "pdftoppm": "poppler-utils",
}


def missing_programs(programs: Sequence[str]) -> list[str]:
    """The programs of `programs` not found on ``PATH``."""
    return [program for program in programs if shutil.which(program) is None]


def unavailable(name: str, why: str, missing: Sequence[str]) -> OCRUnavailableError:
    """The error for a file that needs OCR where the OCR programs are missing."""
    packages = sorted({_PACKAGE_OF.get(program, program) for program in missing})
    return OCRUnavailableError(
        f"'{name}' {why}. OCR needs tesseract-ocr; install it (Debian: {INSTALL_HINT}) "
        f"and ingest the file again. Missing here: {', '.join(missing)} "
        f"(package {', '.join(packages)})."
    )


def failed(name: str, detail: str) -> OCRUnavailableError:
    """The error for OCR that failed although the programs are installed (language data?)."""
    return OCRUnavailableError(
        f"'{name}' needs OCR, and tesseract-ocr failed ({detail}). Check that the English "
        "language data is installed (Debian package tesseract-ocr-eng)."
    )


def is_ocr_failure(detail: str) -> bool:
    """Whether a partitioner failure message says the OCR programs or languages are missing."""
    lowered = detail.lower()
    return any(word in lowered for word in ("tesseract", "traineddata", "poppler", "pdfinfo"))


def ocr_pdf(path: Path) -> list[Any]:
    """OCR every page of a PDF into unstructured elements."""
    from unstructured.partition.pdf import partition_pdf

    return list(
        partition_pdf(
            filename=str(path),
            strategy="ocr_only",
            languages=LANGUAGES,
            infer_table_structure=False,
            include_page_breaks=False,
        )
    )


def ocr_pdf_pages(path: Path, pages: Sequence[int], total_pages: int) -> list[Any]:
    """OCR some pages of a PDF into unstructured elements, numbered as in the PDF.

    Args:
        path: The PDF (already checked to open without a password).
        pages: 1-based page numbers to OCR, ascending.
        total_pages: The PDF's page count; when every page is wanted the file is OCR'd as is.
    """
    if len(pages) == total_pages:
        return ocr_pdf(path)
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")  # opens with the empty user password (check_pdf made sure)
    writer = PdfWriter()
    for number in pages:
        writer.add_page(reader.pages[number - 1])
    with tempfile.TemporaryDirectory(prefix="citewise-ocr-") as tmp:
        subset = Path(tmp) / "pages.pdf"
        with subset.open("wb") as handle:
            writer.write(handle)
        elements = ocr_pdf(subset)
    for element in elements:
        local = element.metadata.page_number
        if local is not None and 1 <= local <= len(pages):
            element.metadata.page_number = pages[local - 1]
    return elements


def ocr_image(path: Path) -> list[Any]:
    """OCR an image (PNG, JPEG; every frame of a TIFF) into unstructured elements.

    unstructured reads only the first frame of a multi-page TIFF, so each further frame
    is saved as a PNG and OCR'd on its own; ``page_number`` is the frame number.
    """
    from PIL import Image

    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        if frames == 1:
            return _partition_image(path)
        elements: list[Any] = []
        with tempfile.TemporaryDirectory(prefix="citewise-ocr-") as tmp:
            for number in range(frames):
                image.seek(number)
                frame = Path(tmp) / f"frame-{number + 1}.png"
                image.save(frame, "PNG")
                for element in _partition_image(frame):
                    element.metadata.page_number = number + 1
                    elements.append(element)
        return elements


def _partition_image(path: Path) -> list[Any]:
    from unstructured.partition.image import partition_image

    return list(
        partition_image(
            filename=str(path),
            strategy="ocr_only",
            languages=LANGUAGES,
            infer_table_structure=False,
            include_page_breaks=False,
        )
    )
