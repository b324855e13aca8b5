"""Decide what a file is from its bytes; the name only tells text formats apart.

`sniff_kind` refuses programs and scripts (ELF, PE/MZ, Mach-O, WebAssembly, ``#!``)
whatever they are called, then asks unstructured's content detection (libmagic and
ZIP inspection, with no file name) for the format:

* a binary document format (PDF, DOCX, PPTX, XLSX, PNG, JPEG, TIFF) is parsed as
  what it is, so ``report.txt`` holding a PDF is read as a PDF;
* text is parsed as the text format its extension names (``.md``, ``.csv``, ...);
  text behind a binary format's extension (``notes.pdf`` holding plain text) is
  parsed as the text format detection saw; text with an unsupported extension
  (``.py``, ``.bat``, ``.json``) is refused;
* a plain ZIP archive is returned as ``ZIP`` only to intake, which expands it;
* anything else is refused with what the content looks like.

Callers run `citewise.ingest.parse.prepare_offline` first (detection imports
unstructured).
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path, PureWindowsPath

from citewise.core.errors import (
    CorruptFileError,
    EmptyDocumentError,
    ExecutableFileError,
    UnsupportedFileError,
)

# Extension -> unstructured FileType member name of the format it declares.
KIND_BY_EXTENSION: dict[str, str] = {
    ".pdf": "PDF",
    ".docx": "DOCX",
    ".pptx": "PPTX",
    ".xlsx": "XLSX",
    ".html": "HTML",
    ".htm": "HTML",
    ".md": "MD",
    ".markdown": "MD",
    ".txt": "TXT",
    ".eml": "EML",
    ".csv": "CSV",
    ".png": "PNG",
    ".jpg": "JPG",
    ".jpeg": "JPG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(KIND_BY_EXTENSION)
IMAGE_KINDS = frozenset({"PNG", "JPG", "TIFF"})
OOXML_KINDS = frozenset({"DOCX", "PPTX", "XLSX"})
BINARY_KINDS = frozenset({"PDF"}) | OOXML_KINDS | IMAGE_KINDS
TEXT_KINDS = frozenset({"HTML", "MD", "TXT", "EML", "CSV"})
KIND_LABEL = {
    "PDF": "PDF document",
    "DOCX": "Word document (.docx)",
    "PPTX": "PowerPoint presentation (.pptx)",
    "XLSX": "Excel workbook (.xlsx)",
    "HTML": "HTML page",
    "MD": "Markdown file",
    "TXT": "plain-text file",
    "EML": "e-mail message (.eml)",
    "CSV": "CSV file",
    "PNG": "PNG image",
    "JPG": "JPEG image",
    "TIFF": "TIFF image",
    "ZIP": "ZIP archive",
}

# Content unstructured recognises as text, and the supported text kind to parse it as
# when the extension names no text format.
_TEXT_CONTENT_KINDS = frozenset(
    {"TXT", "CSV", "TSV", "EML", "HTML", "XML", "MD", "RST", "ORG", "JSON", "NDJSON"}
)
_TEXT_KIND_OF_CONTENT = {"HTML": "HTML", "EML": "EML", "CSV": "CSV", "MD": "MD"}

_HEAD_BYTES = 8192
_UTF8_BOM = b"\xef\xbb\xbf"
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1b")
_MACHO_MAGICS = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary, and Java class files
    b"\xbe\xba\xfe\xca",
)
_OTHER_ARCHIVES = (
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
)


def extension_of(name: str) -> str:
    """Lower-case extension of a display name (``""`` if none)."""
    return PureWindowsPath(name).suffix.lower()


def executable_kind(head: bytes) -> str:
    """Describe `head` if it starts a program or script, else return ``""``."""
    if head.startswith(b"\x7fELF"):
        return "a Linux/Unix program (ELF)"
    if head.startswith(b"MZ") and b"\x00" in head[:64]:
        return "a Windows program (PE/MZ)"
    if head.startswith(_MACHO_MAGICS):
        return "a macOS program (Mach-O) or Java class"
    if head.startswith(b"\x00asm"):
        return "a WebAssembly module"
    if head.removeprefix(_UTF8_BOM).startswith(b"#!"):
        line = head.removeprefix(_UTF8_BOM).split(b"\n", 1)[0][:60]
        return f"a script ({line.decode('utf-8', 'replace')})"
    return ""


def looks_like_text(head: bytes) -> bool:
    """Whether bytes read as text: no NUL, and UTF-8 or almost no control characters."""
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # may end mid-char
        return True
    except UnicodeDecodeError:
        controls = sum(1 for byte in head if byte < 0x20 and byte not in _TEXT_CONTROLS)
        return controls <= len(head) // 100


def sniff_kind(path: Path, name: str, *, allow_archive: bool = False) -> str:
    """The kind to parse `path` as, decided from its content.

    Args:
        path: The file (opened by descriptor, so its own name plays no part).
        name: The display name; its extension tells text formats apart.
        allow_archive: Return ``"ZIP"`` for a plain ZIP archive instead of refusing it.

    Returns:
        A key of `KIND_LABEL`: a supported document kind, or ``"ZIP"``.

    Raises:
        ExecutableFileError: The content is a program or script.
        UnsupportedFileError: The content is of no supported type.
        EmptyDocumentError: The file is empty.
        CorruptFileError: The file could not be read or inspected.
    """
    from unstructured.file_utils.filetype import detect_filetype

    try:
        with open(os.open(path, os.O_RDONLY), "rb") as handle:
            head = handle.read(_HEAD_BYTES)
            handle.seek(0)
            detected = "EMPTY" if not head else detect_filetype(file=handle).name
    except Exception as exc:
        raise CorruptFileError(
            f"'{name}' could not be inspected; the file looks damaged ({type(exc).__name__})."
        ) from exc
    if detected == "EMPTY":
        raise EmptyDocumentError(f"'{name}' is empty (0 bytes).")
    if program := executable_kind(head):
        raise ExecutableFileError(
            f"'{name}' is {program}; programs and scripts are refused, whatever their name."
        )
    extension = extension_of(name)
    declared = KIND_BY_EXTENSION.get(extension)
    if detected in BINARY_KINDS:
        return detected
    if detected == "ZIP":
        if allow_archive:
            return "ZIP"
        raise UnsupportedFileError(
            f"'{name}' is a ZIP archive, not a {KIND_LABEL.get(declared or '', 'document')}; "
            "archives are expanded when uploaded, not parsed as one document."
        )
    is_text = detected in _TEXT_CONTENT_KINDS or (detected == "UNK" and looks_like_text(head))
    if is_text:
        if declared in TEXT_KINDS:
            return declared
        if declared is None and extension:
            raise UnsupportedFileError(
                f"'{name}': files of type {extension} are not supported. "
                f"Supported types: {', '.join(sorted(SUPPORTED_EXTENSIONS))}."
            )
        return _TEXT_KIND_OF_CONTENT.get(detected, "TXT")
    what = _describe(detected, head)
    if declared is not None:
        raise UnsupportedFileError(
            f"'{name}' has the extension of a {KIND_LABEL[declared]} but its content is "
            f"{what}; refusing to parse it."
        )
    raise UnsupportedFileError(
        f"'{name}' is {what}, which Citewise does not read. "
        f"Supported types: {', '.join(sorted(SUPPORTED_EXTENSIONS))}."
    )


def _describe(detected: str, head: bytes) -> str:
    """Say what the content looks like, for a refusal message."""
    for magic_bytes, label in _OTHER_ARCHIVES:
        if head.startswith(magic_bytes):
            return f"{label} (only ZIP archives are expanded)"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "a tar archive (only ZIP archives are expanded)"
    try:
        import magic

        description = str(magic.from_buffer(head)).split(",")[0].strip()
        if len(description) > 60:
            description = description[:59].rstrip() + "\u2026"
    except Exception:  # libmagic missing or unable: fall back to unstructured's verdict
        description = ""
    if description and description.lower() not in {"data", "empty"}:
        return f"'{description}'"
    if detected == "UNK":
        return "not a recognised document format"
    return f"a {KIND_LABEL.get(detected, detected)}"
