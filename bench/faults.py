"""Fault drill: what a client sees while Redis or PostgreSQL is down, and after.

Not a test (the assertions live in ``tests/integration/test_faults.py``). Prints the
hardware, then starts a private PostgreSQL cluster and Redis server on loopback with
the suite's scripts, a real ``citewise serve`` on them (extractive tier, limits on
Redis with ``limits.on_storage_error``), and times ``--requests`` sequential
``GET /v1/tenants/bench/documents`` (authenticated, rate-limited, one database
query) in each phase: healthy (the baseline), Redis paused, Redis resumed,
PostgreSQL paused, PostgreSQL resumed. Each phase prints the status codes and the
p50/p99 latency with its ratio to the baseline. Loopback only; it stops by itself.

    .venv/bin/python bench/faults.py
    .venv/bin/python bench/faults.py --on-storage-error refuse --json faults.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench_store import hardware, percentile
from citewise.auth.keys import KeyStore
from citewise.core.db import Database
from serving import serving

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TENANT = "bench"
ROUTE = f"/v1/tenants/{TENANT}/documents"


@contextmanager
def private(script: str) -> Iterator[dict[str, str]]:
    """A server started by one of the test scripts; yields its exported variables."""
    out = subprocess.run(
        ["bash", str(SCRIPTS / script), "start"], capture_output=True, text=True, check=True
    ).stdout
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    folder = next(v for k, v in exports.items() if k.endswith("_TEST_DIR"))
    try:
        yield {**exports, "folder": folder, "script": str(SCRIPTS / script)}
    finally:
        subprocess.run(["bash", str(SCRIPTS / script), "stop", folder], capture_output=True)


def control(service: dict[str, str], command: str) -> None:
    """Pause or resume a private server."""
    subprocess.run(
        ["bash", service["script"], command, service["folder"]], check=True, capture_output=True
    )


def phase(base: str, key: str, requests: int) -> dict[str, Any]:
    """Time `requests` sequential requests; status counts and latency percentiles."""
    statuses: Counter[int] = Counter()
    latencies = []
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for _ in range(requests):
            start = time.perf_counter()
            statuses[http.get(f"{base}{ROUTE}").status_code] += 1
            latencies.append((time.perf_counter() - start) * 1000)
    return {
        "statuses": dict(statuses),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="Requests per phase.")
    parser.add_argument("--on-storage-error", choices=["allow", "refuse"], default="allow")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    report: dict[str, Any] = {"hardware": hardware(), "on_storage_error": args.on_storage_error}
    print(f"hardware: {report['hardware']}")
    with (
        private("pg_test_cluster.sh") as postgres,
        private("redis_test_server.sh") as redis,
        tempfile.TemporaryDirectory(prefix="cw-bench-faults-") as data,
    ):
        url = postgres["CITEWISE_TEST_POSTGRES_URL"]
        database = Database(url)
        database.migrate()
        key = KeyStore(database).create(TENANT, role="admin", created_by="bench").key
        database.dispose()
        env = {
            **os.environ,
            "CITEWISE_DATA_DIR": data,
            "CITEWISE_DATABASE_URL": url,
            "CITEWISE_LOG_LEVEL": "ERROR",
            "CITEWISE_ANSWER__TIERS": '[{"name": "extractive", "kind": "extractive"}]',
            "CITEWISE_OBSERVABILITY__TRACES": "off",
            "CITEWISE_LIMITS__STORAGE_URI": redis["CITEWISE_TEST_REDIS_URL"],
            "CITEWISE_LIMITS__ON_STORAGE_ERROR": args.on_storage_error,
        }
        steps = [
            ("healthy", None, ""),
            ("redis down", redis, "pause"),
            ("redis back", redis, "resume"),
            ("postgres down", postgres, "pause"),
            ("postgres back", postgres, "resume"),
        ]
        with serving(env, timeout_s=180) as (base, _pid):
            phases: dict[str, dict[str, Any]] = {}
            for name, service, command in steps:
                if service is not None:
                    control(service, command)
                phases[name] = phase(base, key, args.requests)
        report["phases"] = phases
    baseline = phases["healthy"]["p50_ms"]
    print(f"{'phase':<15} {'statuses':<18} {'p50 ms':>8} {'p99 ms':>8} {'p50 / healthy':>14}")
    for name, figures in phases.items():
        statuses = ", ".join(f"{code}×{n}" for code, n in sorted(figures["statuses"].items()))
        ratio = figures["p50_ms"] / baseline
        print(
            f"{name:<15} {statuses:<18} {figures['p50_ms']:>8} {figures['p99_ms']:>8} "
            f"{ratio:>14.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
