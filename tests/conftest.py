"""Shared fixtures: settings on a temporary data directory, one runtime per session."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from citewise.core.db import Database
from tests.jwt_issuer import Issuer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Spans of the many test apps (and `citewise serve` children) are not printed;
# tests/integration/test_observability.py checks the console default explicitly.
os.environ.setdefault("CITEWISE_OBSERVABILITY__TRACES", "off")
# Files are parsed on the ingesting thread: the parser processes of the default
# (ingest.parse_processes = 1) take about 2.5 s to start, in each of the hundreds of
# runtimes and servers the tests open. tests/integration/test_parser_pool.py and the
# crash test run the default.
os.environ.setdefault("CITEWISE_INGEST__PARSE_PROCESSES", "0")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "kestrel"
QUESTIONS = ROOT / "samples" / "questions.json"
BAD = ROOT / "tests" / "fixtures" / "bad"
MODELS_DIR = ROOT / "data" / "models"  # the assembled GGUF (1.1 GB) is kept between runs


@pytest.fixture(scope="session")
def sample_questions() -> list[dict[str, object]]:
    return json.loads(QUESTIONS.read_text())


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from citewise.core.models import Embedder
    from citewise.core.settings import EmbeddingSettings

    model = Embedder(EmbeddingSettings())
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def demo_runtime(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[object]:
    """A runtime (no LLM) with the sample set ingested into tenant ``demo``."""
    from citewise.core.settings import load_settings
    from citewise.ingest.pipeline import doc_id_for
    from citewise.runtime import Runtime

    data_dir = tmp_path_factory.mktemp("citewise-data")
    # Answer caches and rate limits off: tests ask the same questions many times and
    # check fresh answers; tests/integration/test_caches.py and test_rate_limits.py turn them on.
    settings = load_settings(data_dir=data_dir, cache={"enabled": False}, limits={"enabled": False})
    runtime = Runtime.open(settings, start_llm=False, embedder=embedder)
    for path in sorted(SAMPLES.iterdir()):
        outcome = runtime.ingestor.ingest_file(
            path, tenant_id="demo", doc_id=doc_id_for(path, SAMPLES)
        )
        assert outcome.status == "indexed", outcome
    runtime.store.optimize("demo")
    yield runtime
    runtime.close()


# --- metadata database backends: SQLite always, PostgreSQL when a server is given -------------

POSTGRES_URL_ENV = "CITEWISE_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty metadata database URL: SQLite in tmp_path, or a new PostgreSQL database.

    PostgreSQL comes from ``CITEWISE_TEST_POSTGRES_URL`` (``.ci/run`` starts a cluster and
    sets it). Without it the PostgreSQL variant is skipped locally and fails under CI.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'citewise.db'}"
        return
    base = os.environ.get(POSTGRES_URL_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_ENV} is not set; .ci/run must start PostgreSQL")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_ENV} (bash scripts/pg_test_cluster.sh)")
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"cw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture()
def database(database_url: str) -> Iterator[Database]:
    """A migrated metadata database on each backend (`database_url`), disposed afterwards."""
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()


# --- an OIDC provider: signing keys and a JWKS served over loopback HTTP ----------------------


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    """One test identity provider for the run (`tests.jwt_issuer.Issuer`)."""
    idp = Issuer()
    yield idp
    idp.stop()


# --- the job queue's Redis backend: a real server when one is given ---------------------------

REDIS_URL_ENV = "CITEWISE_TEST_REDIS_URL"


@pytest.fixture()
def redis_url() -> str:
    """A Redis server URL from ``CITEWISE_TEST_REDIS_URL`` (``.ci/run`` starts one and sets it).

    Without it the test is skipped locally and fails under CI. Tests keep apart by
    queue name (a Huey name is the prefix of its Redis keys).
    """
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{REDIS_URL_ENV} is not set; .ci/run must start Redis")
        pytest.skip(f"Redis queue tests need {REDIS_URL_ENV} (bash scripts/redis_test_server.sh)")
    return url
