"""Parsing of every supported type with the real unstructured stack, offline."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest

from citewise.core.errors import (
    ConfigError,
    CorruptFileError,
    EmptyDocumentError,
    ExecutableFileError,
    FileTooLargeError,
    OCRUnavailableError,
    ParseError,
    UnsupportedFileError,
)
from citewise.ingest.parse import SUPPORTED_EXTENSIONS, ParsedDocument, parse_file

MAX = 5_000_000
SRC = Path(__file__).resolve().parents[2] / "src"


# --- builders: one small, real file per type ----------------------------------------------


def make_pdf(pages: list[list[str]], *, title_size: int = 24) -> bytes:
    """A text PDF (Helvetica); the first line of each page is set larger."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for index, lines in enumerate(pages):
        page_id, content_id = 4 + 2 * index, 5 + 2 * index
        kids.append(f"{page_id} 0 R")
        ops = ["BT", "72 720 Td"]
        for number, line in enumerate(lines):
            size = title_size if number == 0 else 12
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops += [f"/F1 {size} Tf", "0 -28 Td" if number else "", f"({escaped}) Tj"]
        stream = "\n".join(op for op in [*ops, "ET"] if op).encode()
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
        ).encode()
        objects[content_id] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
        )
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref, size = len(out), max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offsets[n]:010d} 00000 n \n".encode() for n in range(1, size))
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def write_pdf(path: Path) -> Path:
    path.write_bytes(
        make_pdf(
            [
                [
                    "Kestrel Leave Policy",
                    "Employees receive twenty days of annual leave each year.",
                    "Leave requests go to the line manager two weeks ahead.",
                ],
                [
                    "Parental leave",
                    "Parents receive sixteen weeks of paid parental leave.",
                    "It can be taken within the first year after birth.",
                ],
            ]
        )
    )
    return path


def write_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Kestrel Travel Policy", level=0)
    document.add_heading("Booking", level=1)
    document.add_paragraph("All travel is booked through the travel desk at least ten days ahead.")
    document.add_heading("Hotels", level=2)
    document.add_paragraph("Hotel rooms are capped at 180 euros per night in most cities.")
    document.add_paragraph("Breakfast is included", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([("City", "Cap"), ("Paris", "220"), ("Lyon", "150")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Expenses", level=1)
    document.add_paragraph("Receipts must be uploaded within thirty days of the trip.")
    document.save(str(path))
    return path


def write_pptx(path: Path) -> Path:
    deck = pptx.Presentation()
    for title, body in [
        ("Quarterly Security Review", "Phishing tests showed a click rate of four percent."),
        ("Next steps", "Every employee completes the security training by March."),
    ]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.save(str(path))
    return path


def write_xlsx(path: Path, *, title: str | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Budget"
    for row in [("Team", "Budget", "Owner"), ("Sales", 1200, "Ana"), ("Support", 800, "Ben")]:
        sheet.append(row)
    second = book.create_sheet("Headcount")
    for row in [("Team", "People"), ("Sales", 12), ("Support", 9)]:
        second.append(row)
    if title:
        book.properties.title = title
    book.save(path)
    return path


HTML = (
    "<html><head><title>Remote Work Guide</title></head><body>"
    "<h1>Remote Work Guide</h1><h2>Equipment</h2>"
    "<p>Each employee gets a laptop and a monitor allowance of 300 euros.</p>"
    "<img src='http://images.invalid/logo.png' alt='logo'>"
    "<h2>Hours</h2><p>Core hours are ten to three in the local time zone.</p>"
    "<table><tr><th>Day</th><th>Office</th></tr><tr><td>Monday</td><td>Yes</td></tr></table>"
    "<p>See <a href='https://intranet.invalid/hours'>the hours page</a>.</p>"
    "</body></html>"
)
MARKDOWN = (
    "# Onboarding Handbook\n\n## First week\n\n"
    "New hires meet their buddy on day one and set up accounts.\n\n"
    "### Accounts\n\n- Email\n- Chat\n\n## Second week\n\n"
    "Shadow a senior colleague on customer calls.\n\n| Tool | Owner |\n|---|---|\n| CRM | Sales |\n"
)
TEXT = (
    "Office Safety Rules\n\nFire exits must never be blocked by boxes or furniture.\n\n"
    "Report any injury to the safety officer on the same day.\n"
)
CSV = "name,role,location\nAna,Engineer,Lisbon\nBen,Designer,Porto\n"


def write_eml(path: Path) -> Path:
    message = EmailMessage()
    message["Subject"] = "Holiday schedule for December"
    message["From"] = "HR Team <hr@kestrel.example>"
    message["To"] = "all@kestrel.example"
    message["Date"] = "Mon, 01 Dec 2025 09:00:00 +0000"
    message.set_content(
        "Hello all,\n\nThe office closes on December 24 and reopens on January 2.\n\nRegards,\nHR\n"
    )
    path.write_bytes(bytes(message))
    return path


def write_all(folder: Path) -> dict[str, Path]:
    """One file of every supported family, named by extension."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        ".pdf": write_pdf(folder / "leave.pdf"),
        ".docx": write_docx(folder / "travel.docx"),
        ".pptx": write_pptx(folder / "security.pptx"),
        ".xlsx": write_xlsx(folder / "budget.xlsx"),
        ".eml": write_eml(folder / "holidays.eml"),
    }
    for name, text in [
        ("remote.html", HTML),
        ("onboarding.md", MARKDOWN),
        ("safety.txt", TEXT),
        ("people.csv", CSV),
    ]:
        (folder / name).write_text(text, encoding="utf-8")
        files[Path(name).suffix] = folder / name
    return files


def executable_bytes() -> bytes:
    """A minimal Windows PE executable header (what a renamed .exe starts with)."""
    return b"MZ\x90\x00" + bytes(56) + struct.pack("<I", 64) + b"PE\x00\x00" + bytes(400)


def texts(doc: ParsedDocument) -> list[str]:
    return [element.text for element in doc.elements]


# --- each type -----------------------------------------------------------------------------


def test_supported_extensions() -> None:
    assert {".pdf", ".docx", ".pptx", ".xlsx", ".html", ".htm", ".md", ".markdown"} < (
        SUPPORTED_EXTENSIONS
    )
    assert {".txt", ".eml", ".csv", ".png", ".jpg", ".jpeg", ".tif", ".tiff"} < SUPPORTED_EXTENSIONS


def test_pdf_title_text_and_pages(tmp_path: Path) -> None:
    doc = parse_file(write_pdf(tmp_path / "leave.pdf"), max_bytes=MAX)
    assert doc.source == "leave.pdf"
    assert doc.title == "Kestrel Leave Policy"
    by_text = {element.text: element for element in doc.elements}
    assert by_text["Employees receive twenty days of annual leave each year."].page == 1
    assert by_text["Parents receive sixteen weeks of paid parental leave."].page == 2
    assert by_text["Kestrel Leave Policy"].category == "Title"


def test_docx_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = parse_file(write_docx(tmp_path / "travel.docx"), max_bytes=MAX)
    assert doc.title == "Kestrel Travel Policy"
    headings = [(e.text, e.depth) for e in doc.elements if e.category == "Title"]
    assert headings == [
        ("Kestrel Travel Policy", 0),
        ("Booking", 0),
        ("Hotels", 1),
        ("Expenses", 0),
    ]
    assert any(e.category == "ListItem" and e.text == "Breakfast is included" for e in doc.elements)
    (table,) = [e for e in doc.elements if e.category == "Table"]
    assert table.text == "City | Cap\nParis | 220\nLyon | 150"
    assert table.html is not None and table.html.startswith("<table>")


def test_pptx_slide_numbers(tmp_path: Path) -> None:
    doc = parse_file(write_pptx(tmp_path / "security.pptx"), max_bytes=MAX)
    assert doc.title == "Quarterly Security Review"
    pages = {e.text: e.page for e in doc.elements}
    assert pages["Phishing tests showed a click rate of four percent."] == 1
    assert pages["Every employee completes the security training by March."] == 2
    assert pages["Next steps"] == 2


def test_xlsx_sheets_become_titled_tables(tmp_path: Path) -> None:
    doc = parse_file(write_xlsx(tmp_path / "budget.xlsx"), max_bytes=MAX)
    assert doc.title == "budget"  # no metadata title: the file stem, never a sheet name
    assert [(e.category, e.text.split("\n")[0]) for e in doc.elements] == [
        ("Title", "Budget"),
        ("Table", "Team | Budget | Owner"),
        ("Title", "Headcount"),
        ("Table", "Team | People"),
    ]
    assert doc.elements[1].text == "Team | Budget | Owner\nSales | 1200 | Ana\nSupport | 800 | Ben"
    assert all(e.page is None for e in doc.elements)


def test_xlsx_title_from_workbook_properties(tmp_path: Path) -> None:
    doc = parse_file(write_xlsx(tmp_path / "b.xlsx", title="FY26 Team Budget"), max_bytes=MAX)
    assert doc.title == "FY26 Team Budget"


def test_html_headings_tables_no_images(tmp_path: Path) -> None:
    path = tmp_path / "remote.html"
    path.write_text(HTML, encoding="utf-8")
    doc = parse_file(path, max_bytes=MAX)
    assert doc.title == "Remote Work Guide"
    assert [(e.text, e.depth) for e in doc.elements if e.category == "Title"] == [
        ("Remote Work Guide", 0),
        ("Equipment", 1),
        ("Hours", 1),
    ]
    assert "logo" not in texts(doc)
    assert "Day | Office\nMonday | Yes" in texts(doc)


def test_html_title_from_head_when_no_heading(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text(
        "<html><head><title>Canteen Menu</title></head><body>"
        "<p>The canteen serves lunch from noon until two o'clock every weekday.</p>"
        "</body></html>",
        encoding="utf-8",
    )
    assert parse_file(path, max_bytes=MAX).title == "Canteen Menu"


def test_markdown_heading_depths(tmp_path: Path) -> None:
    path = tmp_path / "onboarding.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = parse_file(path, max_bytes=MAX)
    assert doc.title == "Onboarding Handbook"
    assert [(e.text, e.depth) for e in doc.elements if e.category == "Title"] == [
        ("Onboarding Handbook", 0),
        ("First week", 1),
        ("Accounts", 2),
        ("Second week", 1),
    ]
    assert [e.text for e in doc.elements if e.category == "ListItem"] == ["Email", "Chat"]
    assert "Tool | Owner\nCRM | Sales" in texts(doc)


def test_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "safety.txt"
    path.write_text(TEXT, encoding="utf-8")
    doc = parse_file(path, max_bytes=MAX)
    assert doc.title == "Office Safety Rules"
    assert "Report any injury to the safety officer on the same day." in texts(doc)
    assert all(e.page is None for e in doc.elements)


def test_email_subject_sender_and_date(tmp_path: Path) -> None:
    doc = parse_file(write_eml(tmp_path / "holidays.eml"), max_bytes=MAX)
    assert doc.title == "Holiday schedule for December"
    first = doc.elements[0].text
    assert "From: HR Team <hr@kestrel.example>" in first
    assert "Date: Mon, 01 Dec 2025 09:00:00 +0000" in first
    assert "The office closes on December 24 and reopens on January 2." in texts(doc)
    assert not any(e.category == "Title" for e in doc.elements)


def test_csv_is_one_table_with_header_row(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(CSV, encoding="utf-8")
    doc = parse_file(path, max_bytes=MAX)
    assert doc.title == "people"
    (table,) = doc.elements
    assert table.category == "Table"
    assert table.text.split("\n") == [
        "name | role | location",
        "Ana | Engineer | Lisbon",
        "Ben | Designer | Porto",
    ]


# --- names are untrusted; stored paths are content-addressed -------------------------------


def test_content_addressed_path_uses_display_name(tmp_path: Path) -> None:
    blob = tmp_path / "objects" / "9f2c4b"
    blob.parent.mkdir()
    shutil.copyfile(write_docx(tmp_path / "x.docx"), blob)
    doc = parse_file(blob, max_bytes=MAX, filename="Travel Policy 2026.docx")
    assert doc.source == "Travel Policy 2026.docx"
    assert doc.title == "Kestrel Travel Policy"


def test_display_name_path_parts_are_ignored(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_text("Lunch is served at noon in the canteen on the ground floor.\n")
    for given, shown in [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\ana\\notes.txt", "notes.txt"),
    ]:
        doc = parse_file(blob, max_bytes=MAX, filename=given)
        assert doc.source == shown
        assert texts(doc) == ["Lunch is served at noon in the canteen on the ground floor."]


def test_title_falls_back_to_display_stem(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_text("the canteen serves lunch from noon until two every weekday, all year.\n")
    assert parse_file(blob, max_bytes=MAX, filename="canteen hours.txt").title == "canteen hours"


# --- refusals --------------------------------------------------------------------------------


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "deploy.py"
    path.write_text("print('text, but not a document format Citewise reads')\n")
    with pytest.raises(UnsupportedFileError, match=r"'deploy.py'.*\.py are not supported") as info:
        parse_file(path, max_bytes=MAX)
    assert info.value.code == "unsupported_file"


@pytest.mark.parametrize("name", ["setup.exe", "invoice.pdf", "notes.txt", "photo.png"])
def test_executable_is_refused_whatever_its_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(executable_bytes())
    with pytest.raises(ExecutableFileError, match=rf"'{name}' is a Windows program") as info:
        parse_file(path, max_bytes=MAX)
    assert info.value.code == "executable_file"
    assert str(tmp_path) not in str(info.value)


def test_binary_renamed_txt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UnsupportedFileError, match="extension of a plain-text file"):
        parse_file(path, max_bytes=MAX)


def test_pdf_named_docx_is_read_as_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(write_pdf(tmp_path / "r.pdf").read_bytes())
    doc = parse_file(path, max_bytes=MAX)
    assert doc.title == "Kestrel Leave Policy" and doc.elements[0].page == 1


def test_truncated_pdf_is_a_parse_error(tmp_path: Path) -> None:
    whole = write_pdf(tmp_path / "whole.pdf").read_bytes()
    path = tmp_path / "broken.pdf"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        CorruptFileError, match=r"'broken.pdf' could not be parsed as a PDF"
    ) as info:
        parse_file(path, max_bytes=MAX)
    assert info.value.code == "corrupt_file"
    assert "Traceback" not in str(info.value) and str(tmp_path) not in str(info.value)


def test_garbage_after_pdf_header_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    with pytest.raises(ParseError, match="damaged"):
        parse_file(path, max_bytes=MAX)


def test_truncated_docx_is_a_parse_error(tmp_path: Path) -> None:
    whole = write_docx(tmp_path / "whole.docx").read_bytes()
    path = tmp_path / "broken.docx"
    path.write_bytes(whole[:5000])
    with pytest.raises(ParseError, match=r"'broken.docx' could not be parsed as a Word") as info:
        parse_file(path, max_bytes=MAX)
    assert str(tmp_path) not in str(info.value)


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match="0 bytes"):
        parse_file(empty, max_bytes=MAX)
    for name in ("blank.txt", "blank.md"):
        path = tmp_path / name
        path.write_text("  \n\n\t \n   \n")
        with pytest.raises(EmptyDocumentError, match="no text"):
            parse_file(path, max_bytes=MAX)


def test_pdf_without_text_suggests_ocr_under_fast(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[]]))
    with pytest.raises(EmptyDocumentError, match="pdf_strategy to auto"):
        parse_file(path, max_bytes=MAX, pdf_strategy="fast")


def test_too_large_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(5000))  # corrupt too: size is checked first
    with pytest.raises(FileTooLargeError, match=r"'big.pdf' is 5.0 kB, over the 4.0 kB limit"):
        parse_file(path, max_bytes=4000)


def test_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="could not be read"):
        parse_file(tmp_path / "gone", max_bytes=MAX, filename="gone.pdf")


def test_hi_res_strategy_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hi_res"):
        parse_file(write_pdf(tmp_path / "a.pdf"), max_bytes=MAX, pdf_strategy="hi_res")


def test_ocr_only_without_ocr_programs_fails_the_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no tesseract, no poppler
    with pytest.raises(OCRUnavailableError, match="OCR needs tesseract-ocr; install it") as info:
        parse_file(write_pdf(tmp_path / "a.pdf"), max_bytes=MAX, pdf_strategy="ocr_only")
    assert info.value.code == "ocr_unavailable"
    assert "tesseract, pdfinfo, pdftoppm" in str(info.value)


# --- offline ---------------------------------------------------------------------------------

_PROBE = """
import json, socket, sys
from pathlib import Path
events = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                 "socket.sendto", "urllib.Request"):
        events.append([event, repr(args)[:200]])
sys.addaudithook(hook)
from citewise.ingest.parse import parse_file, prepare_offline
prepare_offline()
import unstructured  # import-time telemetry ping, unless prepare_offline opted out
parsed = {}
for arg in sys.argv[1:]:
    doc = parse_file(Path(arg), max_bytes=10_000_000)
    parsed[Path(arg).suffix] = len(doc.elements)
during = list(events)
try:
    socket.getaddrinfo("localhost", 80)  # control: the hook does see lookups
except OSError:
    pass
print(json.dumps({"parsed": parsed, "events": during, "control": len(events) - len(during)}))
"""


def _network_namespace_available() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_parsing_every_type_makes_no_network_attempt(tmp_path: Path) -> None:
    files = write_all(tmp_path / "files")
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DO_NOT_TRACK",
            "SCARF_NO_ANALYTICS",
            "UNSTRUCTURED_DISABLE_NOTICE",
            "HF_HUB_OFFLINE",
        }
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", _PROBE, *map(str, files.values())]
    if _network_namespace_available():  # also cut the network off (loopback only)
        command = ["unshare", "-n", *command]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["parsed"]) == {
        ".pdf",
        ".docx",
        ".pptx",
        ".xlsx",
        ".eml",
        ".html",
        ".md",
        ".txt",
        ".csv",
    }
    assert all(count > 0 for count in report["parsed"].values())
    assert report["events"] == []
    assert report["control"] >= 1


def test_spacy_alias_refuses_a_modified_pipeline(tmp_path: Path) -> None:
    import en_core_web_sm

    copy = tmp_path / "pipeline"
    shutil.copytree(en_core_web_sm.data_path(), copy)
    en_core_web_sm.verify(copy)  # an exact copy passes
    tagger = copy / "tagger" / "model"
    tagger.write_bytes(tagger.read_bytes()[:-1] + b"\x00")
    with pytest.raises(RuntimeError, match="tagger/model"):
        en_core_web_sm.verify(copy)


def test_unmapped_pdf_glyphs_are_removed() -> None:
    from citewise.ingest.parse import _clean_text

    assert _clean_text("(cid:127) Passwords must be long.\n(cid:3)") == "Passwords must be long."
