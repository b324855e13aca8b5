"""A mixed upload through intake and ingestion: scans become searchable, bad files say why."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select

from citewise.core.db import DocumentRecord
from citewise.core.settings import load_settings
from citewise.core.tenancy import Principal
from citewise.ingest.intake import intake_batch
from citewise.ingest.pipeline import doc_id_for
from citewise.runtime import Runtime
from tests.conftest import BAD
from tests.netguard import outbound_attempts
from tests.scans import scanned_image, scanned_pdf
from tests.unit.test_parse import write_pdf

pytestmark = pytest.mark.integration

MEMO = [
    "Kestrel Audit Memo",
    "The quarterly audit found seven open findings.",
    "Remediation of every finding is due by the end of March.",
]
PARKING = b"The visitor car park opens at seven and closes at nine every weekday.\n"


@pytest.fixture()
def runtime(tmp_path: Path, embedder):  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp_path / "data")
    rt = Runtime.open(settings, start_llm=False, embedder=embedder)
    yield rt
    rt.close()


def ingest(
    runtime: Runtime, uploads: list[tuple[Path, str]], tenant: str, work: Path
) -> dict[str, str | None]:
    """Intake then ingestion, as the upload service does; {file name: error code or status}."""
    result: dict[str, str | None] = {}
    for item in intake_batch(uploads, runtime.settings.ingest, work_dir=work):
        if not item.accepted or item.path is None:
            result[item.filename] = item.error_code
            continue
        outcome = runtime.ingestor.ingest_file(
            item.path,
            tenant_id=tenant,
            doc_id=doc_id_for(Path(item.filename)),
            filename=item.filename,
        )
        result[item.filename] = outcome.error_code or outcome.status
    return result


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract-ocr (.ci/run)")
def test_mixed_upload_scans_are_searchable_and_bad_files_say_why(
    runtime: Runtime, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    scan = scanned_pdf(files / "scan", [MEMO])
    photo = scanned_image(
        files / "photo", ["Badge Office", "Lost badges cost fifteen euros."], "PNG"
    )
    parking = files / "parking"
    parking.write_bytes(PARKING)
    locked = PdfWriter(clone_from=PdfReader(write_pdf(tmp_path / "leave.pdf")))
    locked.encrypt(user_password="s3cret", algorithm="AES-256")
    with (files / "locked").open("wb") as handle:
        locked.write(handle)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("policies/leave.pdf", (tmp_path / "leave.pdf").read_bytes())
        bundle.writestr("../../escape.txt", b"written outside the work folder")
    (files / "bundle").write_bytes(archive.getvalue())
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("zeros.txt", bytes(48 * 1024 * 1024))
    (files / "bomb").write_bytes(bomb.getvalue())
    uploads = [
        (scan, "audit scan.pdf"),
        (photo, "badge-notice.png"),
        (parking, "../../parking.txt"),
        (parking, "parking copy.txt"),
        (BAD / "program.exe", "invoice.pdf"),
        (files / "locked", "leave-locked.pdf"),
        (BAD / "corrupt.pdf", "corrupt.pdf"),
        (BAD / "empty.txt", "empty.txt"),
        (files / "bundle", "bundle.zip"),
        (files / "bomb", "bomb.zip"),
    ]
    with outbound_attempts() as net:
        result = ingest(runtime, uploads, "intake", tmp_path / "work")
        answer = runtime.retriever.search(
            "How many open findings did the quarterly audit find?", Principal(tenant_id="intake")
        )
        badge = runtime.retriever.search(
            "What does a lost badge cost?", Principal(tenant_id="intake")
        )
    assert net.outbound == []
    assert result == {
        "audit scan.pdf": "indexed",
        "badge-notice.png": "indexed",
        "parking.txt": "indexed",
        "parking copy.txt": "duplicate_in_batch",
        "invoice.pdf": "executable_file",
        "leave-locked.pdf": "encrypted_pdf",
        "corrupt.pdf": "corrupt_file",
        "empty.txt": "empty_document",
        "bundle.zip/policies/leave.pdf": "indexed",
        "bundle.zip/escape.txt": "unsafe_archive_member",
        "bomb.zip": "zip_bomb",
    }
    top = answer[0].chunk
    assert (top.doc_id, top.page) == ("audit-scan.pdf", 1)
    assert "seven open findings" in top.text.lower()
    assert badge[0].chunk.doc_id == "badge-notice.png"
    assert not list(tmp_path.rglob("escape.txt"))


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils (.ci/run)")
def test_without_tesseract_the_document_record_says_how_to_install_it(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"  # the system's programs as they are, minus tesseract
    bin_dir.mkdir()
    for program in ("pdfinfo", "pdftoppm"):
        os.symlink(shutil.which(program) or program, bin_dir / program)
    monkeypatch.setenv("PATH", str(bin_dir))
    scan = scanned_pdf(tmp_path / "blob", [MEMO])
    result = ingest(runtime, [(scan, "audit scan.pdf")], "no-ocr", tmp_path / "work")
    assert result == {"audit scan.pdf": "ocr_unavailable"}
    with runtime.db.session() as session:
        record = session.scalars(
            select(DocumentRecord).where(DocumentRecord.tenant_id == "no-ocr")
        ).one()
        assert record.status == "failed"
        assert record.error is not None
        assert "OCR needs tesseract-ocr; install it (Debian: apt-get install tesseract-ocr" in (
            record.error
        )
