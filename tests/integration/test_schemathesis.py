"""The OpenAPI document is truthful: schemathesis finds no 5xx and no schema violation.

Schemathesis generates requests for every operation of ``/openapi.json`` (the
app in-process over ASGI, with a real admin API key of the tenant named in
``/v1/tenants/{tenant}/...``, so admin routes are exercised past the credential
check) and checks each response: no server error, a status the operation
documents, and a body that matches the documented schema.

A runtime of its own (one small document, extractive tier only, no reranker,
caches and rate limits off): uploads, deletions and new keys do not touch the shared
demo runtime. Every operation is included; the stream's ``text/event-stream``
has no schema to check beyond status and content type, and uploads are sent as
the documented multipart form.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from citewise.api.app import create_app
from citewise.core.settings import load_settings
from tests.auth import admin_headers

pytestmark = pytest.mark.integration

TENANT = "fuzz"
SAMPLE = Path(__file__).parents[2] / "samples" / "kestrel" / "employee-handbook.md"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
CREDENTIAL_HEADERS = {"authorization", "x-api-key"}
STATUSES: dict[str, Counter[int]] = defaultdict(Counter)
"""Statuses seen per operation (the last test checks the run got past the credentials)."""
EXAMPLES = int(os.environ.get("CITEWISE_TEST_FUZZ_EXAMPLES", "25"))
"""Generated requests per operation (~1 minute on 2 CPUs at 25; raise it for a deeper run)."""

# The schema is read at collection time, so the app is made at import (cheap: its
# lifespan opens the runtime). schemathesis' lazy `from_fixture` does not work with
# pytest 9 (it sets `Function._nodeid`), and `from_asgi` would start the lifespan at
# import: the document comes from `app.openapi()` and the calls go to the app.
DATA_DIR = Path(tempfile.mkdtemp(prefix="citewise-fuzz-"))
atexit.register(shutil.rmtree, DATA_DIR, True)
SETTINGS = load_settings(
    data_dir=DATA_DIR,
    cache={"enabled": False},
    limits={"enabled": False},
    retrieval={"rerank": {"backend": "none"}},
    answer={"tiers": [{"name": "extractive", "kind": "extractive"}]},
    queue={"api_workers": 0},
)
APP: FastAPI = create_app(SETTINGS)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # requests go to the app in-process (schemathesis' ASGI transport)


@pytest.fixture(scope="module")
def fuzz_headers() -> dict[str, str]:
    """An admin key of the fuzzed tenant, on the app's runtime (one document ingested).

    schemathesis starts the app's lifespan once and keeps it to the end of the
    process; the first request starts it here, so the runtime exists.
    """
    with asgi.get_client(APP) as client:  # type: ignore[arg-type]
        assert client.get("/healthz").status_code == 200
    runtime = APP.state.runtime
    outcome = runtime.ingestor.ingest_file(SAMPLE, tenant_id=TENANT, doc_id=SAMPLE.name)
    assert outcome.status == "indexed", outcome
    return admin_headers(runtime, TENANT)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_matches_its_openapi_document(case: Any, fuzz_headers: dict[str, str]) -> None:
    if case.path_parameters and "tenant" in case.path_parameters:
        case.path_parameters["tenant"] = TENANT  # past the tenant check, into the route
    if case.headers:  # generated credentials (bearer and X-API-Key both) would be refused
        for name in [n for n in case.headers if n.lower() in CREDENTIAL_HEADERS]:
            del case.headers[name]
    response = case.call_and_validate(headers=fuzz_headers, checks=CHECKS)
    STATUSES[f"{case.method} {case.path}"][response.status_code] += 1


def test_the_run_got_past_the_credential_check() -> None:
    """Most operations answered something other than 401: the admin key was used."""
    if not STATUSES:
        pytest.skip("the schemathesis test did not run")
    authorized = [op for op, seen in STATUSES.items() if set(seen) - {401}]
    assert len(authorized) == len(STATUSES), dict(STATUSES)
