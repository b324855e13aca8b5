"""Prometheus metrics: one registry, every series Citewise exports at ``/metrics``.

Every module records through the objects defined here, so the names, labels and
buckets of the whole product are in one place. Label values are bounded sets
(routes, stages, tiers, caches): never a tenant-supplied string beyond the tenant id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
"""Citewise's registry (not the global one, so tests can open several apps)."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)

REQUEST_LATENCY = Histogram(
    "citewise_http_request_duration_seconds",
    "HTTP request latency by route template, method and status class.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
STAGE_LATENCY = Histogram(
    "citewise_stage_duration_seconds",
    "Latency of one answer stage (retrieval, rerank, generation, verification, ...).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "citewise_time_to_first_token_seconds",
    "Time from the question to the answering tier's first token.",
    ["tier"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "citewise_llm_tokens",
    "LLM tokens used, as reported by the model (direction: prompt or completion).",
    ["tier", "direction"],
    registry=REGISTRY,
)
ANSWERS = Counter(
    "citewise_answers",
    "Answers the pipeline produced (cache hits are in citewise_cache_lookups), by tier and "
    "decline reason (none when answered).",
    ["tier", "decline_reason"],
    registry=REGISTRY,
)
GROUNDEDNESS = Histogram(
    "citewise_groundedness_score",
    "Verification score of each answer a tier wrote (0 to 1), declined ones included.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    registry=REGISTRY,
)
CACHE_LOOKUPS = Counter(
    "citewise_cache_lookups",
    "Cache lookups by cache (embedding, answer_exact, answer_semantic) and result (hit or miss).",
    ["cache", "result"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "citewise_rate_limited",
    "Requests refused with 429, by limit (requests or tokens) and scope (tenant or key).",
    ["limit", "scope"],
    registry=REGISTRY,
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "citewise_rate_limit_storage_errors",
    "Rate-limit checks that failed because the limits' storage (Redis) was unreachable, by "
    "what the request got (allowed: served unlimited; refused: 503).",
    ["outcome"],
    registry=REGISTRY,
)
JOB_OUTCOMES = Counter(
    "citewise_ingest_jobs_finished",
    "Ingestion jobs finished, by final status (succeeded, partial, failed, dead).",
    ["status"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "citewise_ingest_jobs",
    "Ingestion jobs by status (queued and running are the queue's depth).",
    ["status"],
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "citewise_breaker_state",
    "Circuit breaker state per LLM tier: 0 closed, 1 half-open, 2 open.",
    ["tier"],
    registry=REGISTRY,
)


def record_cache(cache: str, *, hit: bool) -> None:
    """Count one lookup of `cache`."""
    CACHE_LOOKUPS.labels(cache=cache, result="hit" if hit else "miss").inc()


def record_rate_limit_storage_error(outcome: str) -> None:
    """Count one rate-limit check the storage could not answer (``allowed`` or ``refused``)."""
    RATE_LIMIT_STORAGE_ERRORS.labels(outcome=outcome).inc()


def record_rate_limited(limit: str, scope: str) -> None:
    """Count one request refused by the `limit` ("requests" or "tokens") of `scope`."""
    RATE_LIMITED.labels(limit=limit, scope=scope).inc()
