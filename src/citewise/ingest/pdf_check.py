"""Open a PDF's structure with pypdf before parsing: encrypted or damaged files fail here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from citewise.core.errors import CorruptFileError, EncryptedPDFError


def check_pdf(path: Path, name: str) -> int:
    """Check that a PDF opens without a password and has pages; return the page count.

    A PDF encrypted with an empty user password (only an owner password restricting
    printing or copying) opens and passes.

    Args:
        path: The PDF.
        name: Display name for messages.

    Returns:
        Number of pages.

    Raises:
        EncryptedPDFError: Opening it needs a password.
        CorruptFileError: pypdf cannot read its structure, or it has no pages.
    """
    from pypdf import PasswordType, PdfReader

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except Exception:  # unknown or unsupported encryption handler
                opened = False
            if not opened:
                raise EncryptedPDFError(
                    f"'{name}' is a password-protected (encrypted) PDF; Citewise cannot open "
                    "it. Upload a copy saved without a password."
                )
        pages = len(reader.pages)
    except EncryptedPDFError:
        raise
    except Exception as exc:  # pypdf's errors on damaged files vary by damage
        raise CorruptFileError(
            f"'{name}' could not be parsed as a PDF document; the file looks damaged or "
            f"incomplete ({type(exc).__name__}: {_first_line(exc, path, name)})."
        ) from exc
    if pages == 0:
        raise CorruptFileError(f"'{name}' could not be parsed as a PDF document: it has no pages.")
    return pages


def pages_with_images(path: Path, pages: Sequence[int]) -> list[int]:
    """Those of `pages` (1-based) that hold an image: scanned pages rather than blank ones."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    found = []
    for number in pages:
        try:
            if len(reader.pages[number - 1].images) > 0:
                found.append(number)
        except Exception:  # an unreadable page may well be a scan: count it
            found.append(number)
    return found


def _first_line(exc: BaseException, path: Path, name: str) -> str:
    text = " ".join(str(exc).replace(str(path), name).split())
    return text[:160] or "no detail"
