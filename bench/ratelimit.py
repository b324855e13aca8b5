"""Rate limits under load: do they hold, and what do they cost per request?

Not a test. Starts real API servers (``citewise serve``, uvicorn on 127.0.0.1,
extractive tier only, each on a temporary data directory with its own API keys)
and drives ``GET /v1/conversations`` (authenticated, one indexed database query)
with concurrent clients, bounded in time. Prints the hardware, then:

1. **limits hold** (memory storage): ``--clients`` clients on ``--keys`` keys of
   one tenant for ``--seconds`` s, against a tenant limit of ``--tenant-rate``/s
   and a key limit of ``--key-rate``/s: accepted and refused per second beside
   the configured limit;
2. the same against **two servers sharing one Redis** (when
   ``CITEWISE_TEST_REDIS_URL`` or ``--redis`` is given), clients split between
   them, with half the tenant rate (so that two servers on a small machine can
   exceed it): the tenant limit holds across replicas;
3. **overhead**: the same closed-loop load against a server with limits
   disabled and one with limits enabled but out of reach (memory, and Redis if
   given), running side by side and taking turns (so that other load on the
   machine falls on all of them): requests/s and p50/p99 latency, same run; and
   the limiter's own time per request in process (``Limiter.hit_request``: two
   windows hit, two read).

    .venv/bin/python bench/ratelimit.py
    .venv/bin/python bench/ratelimit.py --seconds 20 --clients 16 --json ratelimit.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench_store import hardware
from citewise.api.ratelimit import Limiter
from citewise.auth.keys import KeyStore
from citewise.core.db import Database
from citewise.core.settings import LimitSettings
from citewise.core.tenancy import Principal
from serving import serving

ROOT = Path(__file__).resolve().parents[1]
CITEWISE = Path(sys.executable).parent / "citewise"
TENANT = "bench"
ROUTE = "/v1/conversations"


@contextmanager
def server(limits: dict[str, str], keys: int) -> Iterator[tuple[str, list[str]]]:
    """A running ``citewise serve`` with these limit settings; yields (base URL, API keys)."""
    with tempfile.TemporaryDirectory(prefix="cw-bench-rl-") as data:
        database = Database(f"sqlite:///{Path(data) / 'citewise.db'}")
        database.migrate()
        store = KeyStore(database)
        secrets = [store.create(TENANT, role="user", created_by="bench").key for _ in range(keys)]
        database.dispose()
        env = {
            **os.environ,
            "CITEWISE_DATA_DIR": data,
            "CITEWISE_LOG_LEVEL": "WARNING",
            "CITEWISE_ANSWER__TIERS": '[{"name": "extractive", "kind": "extractive"}]',
            "CITEWISE_OBSERVABILITY__TRACES": "off",
            **{f"CITEWISE_LIMITS__{name.upper()}": value for name, value in limits.items()},
        }
        with serving(env, timeout_s=180) as (base, _pid):
            yield base, secrets


async def drive(
    targets: list[tuple[str, str]], clients: int, seconds: float
) -> tuple[list[tuple[float, int, float]], float]:
    """Closed-loop clients spread over (base URL, key) targets for `seconds`.

    Returns (seconds since start, status, latency s) per request, and the start time.
    """
    results: list[tuple[float, int, float]] = []
    started = time.perf_counter()
    stop = started + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(index: int, http: httpx.AsyncClient) -> None:
        base, key = targets[index % len(targets)]
        headers = {"Authorization": f"Bearer {key}"}
        while (now := time.perf_counter()) < stop:
            response = await http.get(f"{base}{ROUTE}", headers=headers)
            done = time.perf_counter()
            results.append((now - started, response.status_code, done - now))

    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    return results, started


def per_second(results: list[tuple[float, int, float]], seconds: float) -> dict[str, Any]:
    """Accepted and refused per whole second, and over the run."""
    accepted: Counter[int] = Counter()
    refused: Counter[int] = Counter()
    other: Counter[int] = Counter()
    for at, status, _latency in results:
        bucket = accepted if status == 200 else refused if status == 429 else other
        bucket[int(at)] += 1
    whole = range(int(seconds))
    return {
        "accepted_per_s": [accepted[s] for s in whole],
        "refused_per_s": [refused[s] for s in whole],
        "errors": sum(other.values()),
        "accepted_mean_per_s": sum(accepted.values()) / seconds,
        "refused_mean_per_s": sum(refused.values()) / seconds,
    }


def latency(results: list[tuple[float, int, float]], seconds: float) -> dict[str, float]:
    """Requests/s and latency percentiles of successful requests (ms)."""
    ok = sorted(latency for _at, status, latency in results if status == 200)
    if not ok:
        return {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}
    return {
        "rps": len(ok) / seconds,
        "p50_ms": 1000 * ok[len(ok) // 2],
        "p99_ms": 1000 * ok[min(len(ok) - 1, int(len(ok) * 0.99))],
        "mean_ms": 1000 * statistics.fmean(ok),
    }


def limiter_cost(storage_uri: str, calls: int = 500) -> float:
    """Microseconds per `Limiter.hit_request` (two windows hit and read) in process.

    Against 600/minute windows filled to `calls` entries: a moving window's cost
    grows with the entries it holds, at most its limit.
    """
    limiter = Limiter(
        LimitSettings(
            storage_uri=storage_uri, tenant_requests="600/minute", key_requests="600/minute"
        )
    )
    principal = Principal(tenant_id=f"bench-{time.time_ns()}", credential_id="cw_bench")
    started = time.perf_counter()
    for _ in range(calls):
        limiter.hit_request(principal)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    """Run the phases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="Per phase (at most 30).")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--tenant-rate", type=int, default=40, help="Tenant limit per second.")
    parser.add_argument("--key-rate", type=int, default=15, help="Key limit per second.")
    parser.add_argument("--redis", default=os.environ.get("CITEWISE_TEST_REDIS_URL"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)
    limited = {
        "tenant_requests": f"{args.tenant_rate}/second",
        "key_requests": f"{args.key_rate}/second",
    }
    report: dict[str, Any] = {"hardware": hardware(), "seconds": seconds, "clients": args.clients}
    print(f"hardware: {report['hardware']}")
    print(
        f"load: {args.clients} closed-loop clients on {args.keys} keys of one tenant, "
        f"{seconds:g} s per phase, GET {ROUTE}; limits: tenant {args.tenant_rate}/s, "
        f"key {args.key_rate}/s (moving window)"
    )

    def show_hold(name: str, figures: dict[str, Any], limit: int) -> None:
        report[name] = {**figures, "limit_per_s": limit}
        print(
            f"{name}: accepted {figures['accepted_mean_per_s']:.1f}/s "
            f"(limit {limit}/s), refused "
            f"{figures['refused_mean_per_s']:.1f}/s, other errors {figures['errors']}"
        )
        print(f"  accepted per second: {figures['accepted_per_s']}")
        print(f"  refused per second:  {figures['refused_per_s']}")

    with server({"storage_uri": "memory://", **limited}, args.keys) as (base, keys):
        results, _ = asyncio.run(drive([(base, k) for k in keys], args.clients, seconds))
        limit = min(args.tenant_rate, args.key_rate * args.keys)
        show_hold("hold_memory", per_second(results, seconds), limit)
    if args.redis:
        # Half the tenant rate: two servers sharing this machine's CPUs must be able to exceed it.
        shared_rate = max(1, args.tenant_rate // 2)
        redis_limits = {
            "storage_uri": args.redis,
            "tenant_requests": f"{shared_rate}/second",
            "key_requests": f"{args.key_rate}/second",
        }
        with ExitStack() as stack:
            one, keys_one = stack.enter_context(server(redis_limits, args.keys))
            two, keys_two = stack.enter_context(server(redis_limits, args.keys))
            targets = [(one, k) for k in keys_one[: args.keys // 2 or 1]]
            targets += [(two, k) for k in keys_two[: args.keys - len(targets) or 1]]
            results, _ = asyncio.run(drive(targets, args.clients, seconds))
            limit = min(shared_rate, args.key_rate * len(targets))
            show_hold("hold_redis_two_servers", per_second(results, seconds), limit)
    # Limits per second, far above the load: never refused, and a moving window holds at
    # most one second of entries (as a real limit holds at most its amount).
    unreachable = {"tenant_requests": "5000/second", "key_requests": "5000/second"}
    variants: list[tuple[str, dict[str, str]]] = [
        ("disabled", {"enabled": "false"}),
        ("memory", {"storage_uri": "memory://", **unreachable}),
    ]
    if args.redis:
        variants.append(("redis", {"storage_uri": args.redis, **unreachable}))
    rounds, slice_s = 3, min(seconds, 15.0) / 3
    print(
        f"overhead ({args.clients} clients, nothing refused; the servers run side by side "
        f"and take turns, {rounds} rounds of {slice_s:g} s each):"
    )
    with ExitStack() as stack:
        running = {
            name: stack.enter_context(server(limits, args.keys)) for name, limits in variants
        }
        pooled: dict[str, list[tuple[float, int, float]]] = {name: [] for name in running}
        for base, keys in running.values():  # warm up
            asyncio.run(drive([(base, k) for k in keys], args.clients, 1.0))
        for _ in range(rounds):
            for name, (base, keys) in running.items():
                results, _ = asyncio.run(drive([(base, k) for k in keys], args.clients, slice_s))
                pooled[name] += results
    for name, results in pooled.items():
        figures = latency(results, slice_s * rounds)
        report[f"overhead_{name}"] = figures
        print(
            f"  limits {name:8}: {figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.1f} ms, "
            f"p99 {figures['p99_ms']:.1f} ms"
        )
    report["limiter_us_memory"] = limiter_cost("memory://")
    print(f"in-process Limiter.hit_request: memory {report['limiter_us_memory']:.0f} us", end="")
    if args.redis:
        report["limiter_us_redis"] = limiter_cost(args.redis)
        print(f", Redis on loopback {report['limiter_us_redis']:.0f} us", end="")
    print()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
