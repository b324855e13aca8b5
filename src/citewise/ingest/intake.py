"""Intake: turn uploaded files into safe, checked files to ingest, refusing bad ones clearly.

`sanitize_filename` makes an untrusted name safe to show and store. `expand_upload`
checks one uploaded file and returns one `IntakeItem` per file to ingest, or an item
carrying an error code and a sentence a person understands; a refused file never
stops the rest of the batch. ZIP archives are expanded, within limits, into a fresh
folder under the caller's work folder. `duplicates_in_batch` keeps the first of files
with the same content. `intake_batch` does all three for a whole upload.

Checks, in order: file name; size (empty, over ``ingest.max_file_mb``); type from the
content (`citewise.ingest.sniff`: programs and scripts are refused whatever their
name); for PDFs, encryption and damage (`citewise.ingest.pdf_check`); for DOCX, PPTX
and XLSX packages, the ZIP-bomb limits on their declared sizes; for ZIP archives:

* refused when ``ingest.zip_expand`` is off, or nested deeper than ``zip_max_depth``;
* refused whole (code ``zip_bomb``) when the declared or the actually written size
  passes ``zip_max_total_mb`` (shared by nested archives), or the expanded/compressed
  ratio passes ``zip_max_ratio`` for the archive or any member over 1 MiB; refused
  whole (``archive_limit``) with more than ``zip_max_members`` entries;
* members whose path leaves the archive (``..``, absolute, drive letters: zip slip),
  links and devices, encrypted or damaged members are refused one by one. Members are
  written under generated names (never their own path), then checked like uploads.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import structlog

from citewise.core.errors import (
    ArchiveError,
    ArchiveLimitError,
    CitewiseError,
    CorruptFileError,
    DuplicateInBatchError,
    EmptyDocumentError,
    FileTooLargeError,
    IngestError,
    UnsafeArchiveMemberError,
    UnsafeFilenameError,
    ZipBombError,
)
from citewise.core.settings import IngestSettings
from citewise.ingest.filestore import is_disk_full
from citewise.ingest.parse import prepare_offline
from citewise.ingest.pdf_check import check_pdf
from citewise.ingest.sniff import KIND_LABEL, OOXML_KINDS, extension_of, sniff_kind

log = structlog.get_logger(__name__)

MiB = 1024 * 1024
RATIO_FLOOR_BYTES = MiB  # smaller expansions are never judged by their ratio
_MAX_NAME_BYTES = 255
_COPY_BLOCK = 1 << 16
_WINDOWS_RESERVED = re.compile(
    r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$", re.IGNORECASE
)
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_DRIVE = re.compile(r"^[a-zA-Z]:")
_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")
_ZIP_ENCRYPTED_FLAG = 0x1
_UNIX = 3  # ZipInfo.create_system of archives made on Unix: external_attr holds st_mode


@dataclass(frozen=True)
class IntakeItem:
    """One file of an upload: a checked file to ingest, or a refusal.

    Attributes:
        filename: Safe display name. For an archive member, the sanitized archive
            name and member path joined by ``/`` (``bundle.zip/policies/travel.pdf``);
            for a name refused as unsafe, an escaped form for display only.
        path: The checked file to ingest (the upload itself, or an expanded member in
            the caller's work folder); None when refused.
        error_code: The refusal's `IngestError.code`; None when accepted.
        error: A sentence saying what is wrong and what to do; None when accepted.
    """

    filename: str
    path: Path | None
    error_code: str | None
    error: str | None

    @property
    def accepted(self) -> bool:
        """Whether the file goes on to ingestion."""
        return self.path is not None and self.error_code is None


def sanitize_filename(name: str) -> str:
    """Reduce an untrusted file name to a safe, readable base name that keeps its extension.

    Drops folders (``/``, backslash, drive letters, ``..``), control and format characters
    (NUL, bidi overrides, zero-width), characters Windows forbids, leading dots and
    trailing dots and spaces; prefixes Windows device names (``CON``, ``NUL``, ``COM1``,
    ...) with ``_``; caps the name at 255 UTF-8 bytes, keeping the extension.

    Raises:
        UnsafeFilenameError: Nothing with a letter or digit remains.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join(_safe_char(ch) for ch in text)
    text = _DRIVE.sub("", text.replace("\\", "/"))
    base = text.rsplit("/", 1)[-1]
    base = _WINDOWS_FORBIDDEN.sub("_", base)
    base = " ".join(base.split()).lstrip(". ").rstrip(". ")
    if not any(ch.isalnum() for ch in base):
        raise UnsafeFilenameError(
            f"The file name {_escaped(name)} has nothing safe left once folders and control "
            "characters are removed; rename the file and upload it again."
        )
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    if _WINDOWS_RESERVED.match(stem.split(".")[0].rstrip()):
        base = "_" + base
    return _cap_bytes(base, "." + suffix if dot else "")


def expand_upload(
    path: Path, filename: str, settings: IngestSettings, *, work_dir: Path | None = None
) -> list[IntakeItem]:
    """Check one uploaded file; expand it if it is a ZIP archive.

    Args:
        path: The uploaded bytes.
        filename: The name the client gave (untrusted).
        settings: Limits (``max_file_mb``, ``zip_*``).
        work_dir: Folder the caller owns and cleans up, where archive members are
            written (a fresh sub-folder per archive). Defaults to ``path``'s folder.

    Returns:
        One item per file: accepted (``path`` set) or refused (``error_code`` and ``error``).
    """
    try:
        name = sanitize_filename(filename)
    except UnsafeFilenameError as exc:
        return [_refused(_escaped(filename), exc)]
    prepare_offline()
    intake = _Intake(settings, work_dir if work_dir is not None else path.parent)
    return intake.check(path, name, depth=0)


def duplicates_in_batch(items: Sequence[IntakeItem]) -> list[IntakeItem]:
    """Refuse every accepted file whose content (sha256) came earlier in the batch.

    Returns:
        The items in order; a repeat becomes a refusal with code ``duplicate_in_batch``
        that names the first file, which alone is ingested.
    """
    first_by_sha: dict[str, str] = {}
    out: list[IntakeItem] = []
    for item in items:
        if not item.accepted or item.path is None:
            out.append(item)
            continue
        sha = sha256_of(item.path)
        first = first_by_sha.get(sha)
        if first is None:
            first_by_sha[sha] = item.filename
            out.append(item)
            continue
        error = DuplicateInBatchError(
            f"'{item.filename}' has the same content as '{first}' earlier in this upload; "
            f"it is ingested once, as '{first}'."
        )
        out.append(_refused(item.filename, error))
    return out


def intake_batch(
    uploads: Iterable[tuple[Path, str]], settings: IngestSettings, *, work_dir: Path
) -> list[IntakeItem]:
    """`expand_upload` for each ``(path, filename)``, then `duplicates_in_batch` over all."""
    items: list[IntakeItem] = []
    for path, filename in uploads:
        items.extend(expand_upload(path, filename, settings, work_dir=work_dir))
    return duplicates_in_batch(items)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- checks ---------------------------------------------------------------------------------


class _Budget:
    """Bytes and entries that all archives of one upload may still expand to."""

    def __init__(self, settings: IngestSettings) -> None:
        self.bytes_left = int(settings.zip_max_total_mb * MiB)


class _Intake:
    def __init__(self, settings: IngestSettings, work_dir: Path) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self.max_bytes = int(settings.max_file_mb * MiB)
        self.budget = _Budget(settings)

    def check(self, path: Path, name: str, *, depth: int) -> list[IntakeItem]:
        """Items for one file (an upload or an archive member) at archive depth `depth`."""
        try:
            size = path.stat().st_size
            if size == 0:
                raise EmptyDocumentError(f"'{name}' is empty (0 bytes).")
            if size > self.max_bytes:
                raise _too_large(name, size, self.max_bytes)
            kind = sniff_kind(path, name, allow_archive=True)
            if kind == "ZIP":
                return self._expand(path, name, depth=depth + 1)
            if kind == "PDF":
                check_pdf(path, name)
            elif kind in OOXML_KINDS:
                self._check_package(path, name, kind)
        except IngestError as exc:
            return [_refused(name, exc)]
        except OSError as exc:
            if is_disk_full(exc):
                raise  # the server's problem, not the file's: the whole upload stops
            return [_refused(name, CorruptFileError(f"'{name}' could not be read ({exc})."))]
        return [IntakeItem(filename=name, path=path, error_code=None, error=None)]

    def _check_package(self, path: Path, name: str, kind: str) -> None:
        """Apply the ZIP-bomb limits to a DOCX/PPTX/XLSX package's declared sizes."""
        try:
            with zipfile.ZipFile(path) as package:
                infos = package.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise CorruptFileError(
                f"'{name}' could not be read as a {KIND_LABEL[kind]}; the file looks damaged "
                f"or incomplete ({exc})."
            ) from exc
        self._bomb_check(name, infos, path.stat().st_size, budget=self.budget.bytes_left)

    def _bomb_check(
        self, name: str, infos: Sequence[zipfile.ZipInfo], archive_bytes: int, *, budget: int
    ) -> None:
        limit = self.settings.zip_max_total_mb
        ratio = self.settings.zip_max_ratio
        total = sum(info.file_size for info in infos)
        if total > budget:
            raise ZipBombError(
                f"'{name}' would expand to {_mb(total)}, over the {limit:g} MB limit for an "
                "upload's archives (setting ingest.zip_max_total_mb); it was not expanded."
            )
        if total > RATIO_FLOOR_BYTES and total > ratio * max(archive_bytes, 1):
            raise ZipBombError(
                f"'{name}' would expand {total / max(archive_bytes, 1):,.0f} times its size "
                f"(limit {ratio:g}, setting ingest.zip_max_ratio): it looks like a ZIP bomb "
                "and was not expanded."
            )
        for info in infos:
            if info.file_size > RATIO_FLOOR_BYTES and info.file_size > ratio * max(
                info.compress_size, 1
            ):
                raise ZipBombError(
                    f"'{name}': member '{_member_display(info.filename)}' would expand "
                    f"{info.file_size / max(info.compress_size, 1):,.0f} times its compressed "
                    f"size (limit {ratio:g}, setting ingest.zip_max_ratio): it looks like a "
                    "ZIP bomb and was not expanded."
                )

    def _expand(self, path: Path, name: str, *, depth: int) -> list[IntakeItem]:
        settings = self.settings
        if not settings.zip_expand:
            raise ArchiveError(
                f"'{name}' is a ZIP archive, and expanding archives is turned off (setting "
                "ingest.zip_expand); upload its files one by one."
            )
        if depth > settings.zip_max_depth:
            raise ArchiveLimitError(
                f"'{name}' is an archive inside an archive {depth} levels deep; archives "
                f"are expanded at most {settings.zip_max_depth} level(s) deep (setting "
                "ingest.zip_max_depth)."
            )
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise CorruptFileError(
                f"'{name}' is a damaged ZIP archive and could not be opened ({exc})."
            ) from exc
        with archive:
            infos = archive.infolist()
            if len(infos) > settings.zip_max_members:
                raise ArchiveLimitError(
                    f"'{name}' holds {len(infos):,} entries, over the limit of "
                    f"{settings.zip_max_members:,} (setting ingest.zip_max_members); it was "
                    "not expanded."
                )
            self._bomb_check(name, infos, path.stat().st_size, budget=self.budget.bytes_left)
            parent = self.work_dir if depth == 1 else path.parent  # nested: inside its archive's
            parent.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix="citewise-zip-", dir=parent))
            try:
                items = self._members(archive, infos, name, folder, depth)
            except ZipBombError:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        log.info(
            "archive_expanded",
            archive=name,
            members=len(items),
            refused=sum(1 for item in items if not item.accepted),
        )
        return items

    def _members(
        self,
        archive: zipfile.ZipFile,
        infos: Sequence[zipfile.ZipInfo],
        name: str,
        folder: Path,
        depth: int,
    ) -> list[IntakeItem]:
        items: list[IntakeItem] = []
        for index, info in enumerate(infos):
            if info.is_dir():
                continue
            shown = f"{name}/{_member_label(info.filename)}"
            try:
                member_name = f"{name}/{_member_path(info, name)}"
                target = folder / f"{index:05d}{_safe_suffix(member_name)}"
                self._extract(archive, info, member_name, target)
            except ZipBombError:
                raise
            except IngestError as exc:
                items.append(_refused(shown, exc))
                continue
            items.extend(self.check(target, member_name, depth=depth))
        return items

    def _extract(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str, target: Path
    ) -> None:
        """Write one member to `target`, counting real bytes against size and budget."""
        if info.flag_bits & _ZIP_ENCRYPTED_FLAG:
            raise ArchiveError(
                f"'{member}' is encrypted inside its archive; Citewise cannot open it. "
                "Upload an archive made without a password."
            )
        if info.file_size > self.max_bytes:
            raise _too_large(member, info.file_size, self.max_bytes)
        allowed = min(info.file_size, self.max_bytes, self.budget.bytes_left)
        written = 0
        try:
            with archive.open(info) as source, target.open("xb") as sink:
                while block := source.read(_COPY_BLOCK):
                    written += len(block)
                    if written > allowed:
                        break
                    sink.write(block)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, ValueError) as exc:
            target.unlink(missing_ok=True)
            if is_disk_full(exc):
                raise
            raise CorruptFileError(
                f"'{member}' is damaged inside its archive and could not be extracted "
                f"({type(exc).__name__})."
            ) from exc
        except Exception as exc:  # zlib.error, lzma.LZMAError, bz2 errors: damaged data
            target.unlink(missing_ok=True)
            raise CorruptFileError(
                f"'{member}' is damaged inside its archive and could not be extracted "
                f"({type(exc).__name__})."
            ) from exc
        if written > allowed:
            target.unlink(missing_ok=True)
            raise ZipBombError(
                f"'{member}' expands past its declared size or the "
                f"{self.settings.zip_max_total_mb:g} MB archive limit (setting "
                "ingest.zip_max_total_mb): the archive looks like a ZIP bomb and was not "
                "expanded."
            )
        self.budget.bytes_left -= written


# --- names and messages -----------------------------------------------------------------------


def _safe_char(ch: str) -> str:
    """Drop control, format (bidi, zero-width), surrogate and separator characters."""
    category = unicodedata.category(ch)
    if category in {"Cc", "Cf", "Cs", "Zl", "Zp"}:
        return " " if ch in "\t\n\r\x0b\x0c" else ""
    return ch


def _cap_bytes(base: str, suffix: str) -> str:
    if len(base.encode()) <= _MAX_NAME_BYTES:
        return base
    stem = base[: len(base) - len(suffix)] if suffix else base
    room = _MAX_NAME_BYTES - len(suffix.encode())
    if room < 16:  # an absurd "extension": keep the start of the name instead
        stem, suffix, room = base, "", _MAX_NAME_BYTES
    while len(stem.encode()) > room:
        stem = stem[:-1]
    return stem.rstrip(". ") + suffix


def _member_path(info: zipfile.ZipInfo, archive: str) -> str:
    """A member's path, each part sanitized; refuses zip slip, links and devices."""
    raw = info.filename
    mode = info.external_attr >> 16 if info.create_system == _UNIX else 0
    if stat.S_IFMT(mode) not in {0, stat.S_IFREG, stat.S_IFDIR}:  # 0: type not recorded
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        raise UnsafeArchiveMemberError(
            f"'{archive}': member '{_member_display(raw)}' is {kind}; it was not extracted."
        )
    normalised = raw.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    if (
        normalised.startswith("/")
        or _DRIVE.match(normalised)
        or any(part == ".." for part in parts)
        or "\x00" in raw
    ):
        raise UnsafeArchiveMemberError(
            f"'{archive}': member '{_member_display(raw)}' has a path that leaves the "
            "archive (zip slip); it was not extracted."
        )
    safe: list[str] = []
    for number, part in enumerate(parts, start=1):
        try:
            safe.append(sanitize_filename(part))
        except UnsafeFilenameError:
            if number == len(parts):  # a folder name may go; the file's own name may not
                raise
    return "/".join(safe)


def _member_label(raw: str) -> str:
    """A member's path for display: the safe parts of it, never ``..`` or a drive."""
    parts: list[str] = []
    for part in _DRIVE.sub("", raw.replace("\\", "/")).split("/"):
        try:
            parts.append(sanitize_filename(part))
        except UnsafeFilenameError:
            continue
    return "/".join(parts) or "(unnamed member)"


def _member_display(raw: str) -> str:
    return _escaped(raw)[1:-1]


def _safe_suffix(name: str) -> str:
    suffix = extension_of(name)
    return suffix if _SAFE_SUFFIX.match(suffix) else ""


def _escaped(name: str) -> str:
    """A quoted, printable form of an untrusted name, for messages only."""
    shown = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in name[:120])
    return f"'{shown}'" if shown else "'(no name)'"


def _mb(size: int) -> str:
    return f"{size / MiB:,.1f} MB"


def _too_large(name: str, size: int, limit: int) -> FileTooLargeError:
    return FileTooLargeError(
        f"'{name}' is {_mb(size)}, over the {_mb(limit)} limit per file "
        "(setting ingest.max_file_mb)."
    )


def _refused(filename: str, error: CitewiseError) -> IntakeItem:
    return IntakeItem(filename=filename, path=None, error_code=error.code, error=str(error))
