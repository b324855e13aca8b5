"""Citewise's exception tree. Only `citewise.api.errors` maps it to HTTP.

CitewiseError
├── ConfigError              invalid or missing configuration
├── ModelError               a model could not be loaded or verified
├── IngestError              a file could not be ingested
│   ├── UnsupportedFileError   unknown or disallowed file type
│   │   └── ExecutableFileError  a program or script
│   ├── FileTooLargeError      over the configured size limit
│   ├── ParseError             the parser failed
│   │   ├── CorruptFileError     damaged or truncated file
│   │   ├── EncryptedPDFError    PDF that needs a password
│   │   ├── ParseTimeoutError    took longer than ``ingest.parse_timeout_s``
│   │   ├── ParseMemoryError     needed more than ``ingest.parse_memory_mb``
│   │   └── ParserCrashedError   the parser process died on the file
│   ├── EmptyDocumentError     parsed, but no text to index
│   ├── OCRUnavailableError    needs OCR, tesseract-ocr is not installed
│   ├── UnsafeFilenameError    no safe file name remains after cleaning
│   ├── StoredFileMissingError the stored copy of the file is gone
│   ├── DuplicateInBatchError  same content earlier in the same upload
│   └── ArchiveError           a ZIP archive refused (disabled, damaged)
│       ├── ArchiveLimitError    too many members or nested too deep
│       │   └── ZipBombError       over the size or compression-ratio limit
│       └── UnsafeArchiveMemberError  member path escapes (zip slip), or a link
├── VectorIndexError         the vector index failed or is locked
│   └── IndexLockedError       another process owns the embedded index
├── RetrievalError           a query could not be served
├── AnswerError              no answer could be produced
│   └── LLMUnavailableError    every generating tier failed
├── TenantError              an invalid tenant or principal
├── AuthenticationError      missing, malformed, unknown, revoked or expired credentials
├── PermissionDeniedError    the credentials' role may not do this
├── NotFoundError            no such document or job (for this tenant)
├── ConflictError            the request contradicts the current state (retry a running job)
├── UploadTooLargeError      an upload request over ``ingest.max_request_mb``
├── StorageFullError         no space left to store an upload (nothing of it kept)
├── UnavailableError         a dependency is briefly unreachable (retry later)
│   ├── DatabaseUnavailableError   the metadata database
│   └── RateLimitsUnavailableError the rate limits' store (Redis), when set to refuse
└── RateLimitedError         over a request or token rate limit (retry later)
"""

from __future__ import annotations


class CitewiseError(Exception):
    """Root of every error Citewise raises on purpose."""

    code = "citewise_error"


class ConfigError(CitewiseError):
    """Configuration is invalid or incomplete."""

    code = "config_error"


class ModelError(CitewiseError):
    """A model could not be found, verified or loaded."""

    code = "model_error"


class IngestError(CitewiseError):
    """A file could not be ingested; the batch goes on without it."""

    code = "ingest_error"


class UnsupportedFileError(IngestError):
    """The file's type is not one Citewise parses."""

    code = "unsupported_file"


class FileTooLargeError(IngestError):
    """The file is larger than `ingest.max_file_mb`."""

    code = "file_too_large"


class ParseError(IngestError):
    """The parser failed on the file, usually because it is corrupt."""

    code = "parse_error"


class EmptyDocumentError(IngestError):
    """The file parsed but holds no text to index."""

    code = "empty_document"


class ExecutableFileError(UnsupportedFileError):
    """The file is a program or script (ELF, PE, Mach-O, ``#!``), whatever its name."""

    code = "executable_file"


class CorruptFileError(ParseError):
    """The file is damaged or truncated."""

    code = "corrupt_file"


class EncryptedPDFError(ParseError):
    """The PDF is encrypted and cannot be opened without a password."""

    code = "encrypted_pdf"


class ParseTimeoutError(ParseError):
    """Parsing the file took longer than ``ingest.parse_timeout_s``; it was stopped."""

    code = "parse_timeout"


class ParseMemoryError(ParseError):
    """Parsing the file needed more memory than a parser process may use."""

    code = "parse_out_of_memory"


class ParserCrashedError(ParseError):
    """The process parsing the file died (a crash in a native library, or killed)."""

    code = "parser_crashed"


class OCRUnavailableError(IngestError):
    """The file needs OCR and the tesseract-ocr (or poppler-utils) programs are missing."""

    code = "ocr_unavailable"


class UnsafeFilenameError(IngestError):
    """Nothing safe remains of a file name after cleaning it."""

    code = "unsafe_filename"


class DuplicateInBatchError(IngestError):
    """The same content came earlier in the same upload; it is ingested once."""

    code = "duplicate_in_batch"


class ArchiveError(IngestError):
    """A ZIP archive was refused: expansion disabled, or the archive is damaged or encrypted."""

    code = "archive_refused"


class ArchiveLimitError(ArchiveError):
    """A ZIP archive has too many members or is nested too deep."""

    code = "archive_limit"


class ZipBombError(ArchiveLimitError):
    """A ZIP archive expands past the size or compression-ratio limit."""

    code = "zip_bomb"


class UnsafeArchiveMemberError(ArchiveError):
    """An archive member's path leaves the archive (zip slip), or it is a link or device."""

    code = "unsafe_archive_member"


class VectorIndexError(CitewiseError):
    """The vector index failed."""

    code = "index_error"


class IndexLockedError(VectorIndexError):
    """Another process holds the embedded index open."""

    code = "index_locked"


class RetrievalError(CitewiseError):
    """A query could not be served."""

    code = "retrieval_error"


class AnswerError(CitewiseError):
    """No answer could be produced."""

    code = "answer_error"


class LLMUnavailableError(AnswerError):
    """Every generating tier failed."""

    code = "llm_unavailable"


class TenantError(CitewiseError):
    """A tenant id or principal is invalid."""

    code = "tenant_error"


class NotFoundError(CitewiseError):
    """No such document or job for this tenant."""

    code = "not_found"


class ConflictError(CitewiseError):
    """The request contradicts the current state (a job that cannot be retried, ...)."""

    code = "conflict"


class UploadTooLargeError(CitewiseError):
    """An upload request is larger than ``ingest.max_request_mb``."""

    code = "upload_too_large"


class RequestTooLargeError(UploadTooLargeError):
    """A JSON request body is larger than ``api.max_json_kb``."""

    code = "request_too_large"


class StorageFullError(CitewiseError):
    """The disk (or quota) holding uploads is full; nothing of the request was kept."""

    code = "storage_full"


class UnavailableError(CitewiseError):
    """A dependency is briefly unreachable; the request can be retried unchanged."""

    code = "unavailable"
    retry_after = 5
    """Seconds a client should wait before retrying (the ``Retry-After`` header)."""


class DatabaseUnavailableError(UnavailableError):
    """The metadata database cannot be reached (down, restarting, out of connections)."""

    code = "database_unavailable"


class RateLimitsUnavailableError(UnavailableError):
    """The rate limits' store cannot be reached and ``limits.on_storage_error`` is refuse."""

    code = "rate_limits_unavailable"


class StoredFileMissingError(IngestError):
    """The stored copy of a document's file is gone, so it cannot be (re-)ingested."""

    code = "stored_file_missing"


class AuthenticationError(CitewiseError):
    """Missing, malformed, unknown, revoked or expired credentials (HTTP 401)."""

    code = "unauthenticated"


class PermissionDeniedError(CitewiseError):
    """The credentials are valid but their role may not do this (HTTP 403)."""

    code = "forbidden"


class RateLimitedError(CitewiseError):
    """Over a rate limit of the tenant or the credential (requests or LLM tokens per window).

    Args:
        message: What was exceeded.
        retry_after: Seconds until the window has room again.
        headers: Rate-limit headers for the response (``X-RateLimit-*``, ``Retry-After``).
    """

    code = "rate_limited"

    def __init__(
        self, message: str, *, retry_after: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.headers["Retry-After"] = str(retry_after)
