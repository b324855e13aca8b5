"""Citewise's exception tree. Only `citewise.api.errors` maps it to HTTP.

CitewiseError
├── ConfigError              invalid or missing configuration
├── ModelError               a model could not be loaded or verified
├── IngestError              a file could not be ingested
│   ├── UnsupportedFileError   unknown or disallowed file type
│   ├── FileTooLargeError      over the configured size limit
│   ├── ParseError             the parser failed (corrupt file)
│   └── EmptyDocumentError     parsed, but no text to index
├── VectorIndexError         the vector index failed or is locked
│   └── IndexLockedError       another process owns the embedded index
├── RetrievalError           a query could not be served
├── AnswerError              no answer could be produced
│   └── LLMUnavailableError    every generating tier failed
└── TenantError              an invalid tenant or principal
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
