"""Load test: questions per second and latency for 1, 10 and 50 concurrent users.

Not a test. Ingests the sample documents (``samples/kestrel``) into a temporary
data directory, starts a real ``citewise serve`` on 127.0.0.1 (rate limits and
the answer cache off, so every question is answered afresh) and drives ``POST
/v1/ask`` with closed-loop users, each asking the sample QA set's questions in
turn, for a bounded time per level. Prints the hardware, then per level:
answers/s, p50/p90/p99 latency, errors, the server's CPU use (of all cores),
which says where it saturates, and how many answers each tier gave.

Levels run for the extractive tier (``--tiers extractive``), the default tiers
(the embedded LLM first; slow on CPU, so fewer users and a longer window), or both.

    .venv/bin/python bench/load.py                      # extractive: 1, 10, 50 users
    .venv/bin/python bench/load.py --tiers both --llm-users 1,4 --llm-seconds 240
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench_store import hardware
from serving import CITEWISE, serving

ROOT = Path(__file__).resolve().parents[1]
TENANT = "load"
EXTRACTIVE = '[{"name": "extractive", "kind": "extractive"}]'


def questions() -> list[str]:
    """The sample QA set's questions, in file order."""
    lines = (ROOT / "samples" / "kestrel-qa.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


@contextmanager
def server(tiers: str | None) -> Iterator[tuple[str, str, int]]:
    """``citewise serve`` over the ingested samples; yields (base URL, user key, pid)."""
    with tempfile.TemporaryDirectory(prefix="cw-bench-load-") as data:
        env = {
            **os.environ,
            "CITEWISE_DATA_DIR": data,
            "CITEWISE_LOG_LEVEL": "WARNING",
            "CITEWISE_LIMITS__ENABLED": "false",
            "CITEWISE_CACHE__ENABLED": "false",
            "CITEWISE_OBSERVABILITY__TRACES": "off",
            "HF_HUB_OFFLINE": "1",
        }
        if tiers:
            env["CITEWISE_ANSWER__TIERS"] = tiers
        run = dict(env=env, check=True, capture_output=True, text=True)
        subprocess.run(
            [str(CITEWISE), "ingest", str(ROOT / "samples" / "kestrel"), "--tenant", TENANT], **run
        )  # type: ignore[call-overload]
        key = subprocess.run(
            [str(CITEWISE), "keys", "create", "--tenant", TENANT, "--role", "user"], **run
        ).stdout.strip()  # type: ignore[call-overload]
        with serving(env) as (base, pid):
            yield base, key, pid


async def drive(
    base: str, key: str, users: int, seconds: float, asked: list[str]
) -> list[tuple[int, float, str]]:
    """Closed-loop users asking in turn for `seconds`; (status, latency s, tier) per request.

    A request still running when the window closes is waited for and counted.
    """
    results: list[tuple[int, float, str]] = []
    stop = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)

    async def user(index: int, http: httpx.AsyncClient) -> None:
        turn = index
        while time.perf_counter() < stop:
            question = asked[turn % len(asked)]
            turn += users
            began = time.perf_counter()
            tier = ""
            try:
                response = await http.post(
                    f"{base}/v1/ask", json={"question": question}, headers=headers
                )
                status = response.status_code
                if status == 200:
                    tier = str(response.json().get("tier", ""))
            except httpx.HTTPError:
                status = 0
            results.append((status, time.perf_counter() - began, tier))

    async with httpx.AsyncClient(limits=limits, timeout=600) as http:
        await asyncio.gather(*(user(i, http) for i in range(users)))
    return results


def level(base: str, key: str, pid: int, users: int, seconds: float) -> dict[str, Any]:
    """One load level: throughput, latency percentiles, errors and server CPU."""
    asked = questions()
    cpu_before, began = _cpu_seconds(pid), time.perf_counter()
    results = asyncio.run(drive(base, key, users, seconds, asked))
    wall = time.perf_counter() - began
    cpu = (_cpu_seconds(pid) - cpu_before) / wall
    ok = sorted(latency for status, latency, _ in results if status == 200)
    tiers = Counter(tier for status, _, tier in results if status == 200)

    def pct(q: float) -> float:
        return ok[min(len(ok) - 1, int(q * len(ok)))] * 1000 if ok else float("nan")

    return {
        "users": users,
        "seconds": round(wall, 1),
        "answers": len(ok),
        "answers_per_s": round(len(ok) / wall, 2),
        "p50_ms": round(pct(0.50)),
        "p90_ms": round(pct(0.90)),
        "p99_ms": round(pct(0.99)),
        "mean_ms": round(statistics.fmean(ok) * 1000) if ok else None,
        "errors": sum(status != 200 for status, _, _ in results),
        "answered_by": dict(tiers),
        "server_cpu_cores": round(cpu, 2),
    }


def run(name: str, tiers: str | None, users: list[int], seconds: float) -> list[dict[str, Any]]:
    """Every level against one server; prints a row per level."""
    rows = []
    with server(tiers) as (base, key, pid):
        with httpx.Client(timeout=600) as http:  # warm-up: models, caches of the OS
            http.post(
                f"{base}/v1/ask",
                json={"question": questions()[0]},
                headers={"Authorization": f"Bearer {key}"},
            )
        print(f"\n{name}: {seconds:.0f} s per level")
        print(f"{'users':>5} {'answers/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
              f"{'errors':>6} {'server CPU (cores)':>18}  answered by")  # fmt: skip
        for count in users:
            row = level(base, key, pid, count, seconds)
            rows.append({"tiers": name, **row})
            cells = [row[k] for k in ("answers_per_s", "p50_ms", "p90_ms", "p99_ms", "errors")]
            widths = (9, 8, 8, 8, 6)
            print(f"{count:>5} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))
                  + f" {row['server_cpu_cores']:>18}  {row['answered_by']}")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", choices=["extractive", "llm", "both"], default="extractive")
    parser.add_argument("--users", default="1,10,50", help="Levels for the extractive tier.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Window per level.")
    parser.add_argument("--llm-users", default="1,4", help="Levels for the default tiers.")
    parser.add_argument("--llm-seconds", type=float, default=180.0)
    parser.add_argument("--json", type=Path, help="Also write the rows here.")
    args = parser.parse_args()
    print(json.dumps(hardware()))
    rows: list[dict[str, Any]] = []
    if args.tiers in ("extractive", "both"):
        levels = [int(u) for u in args.users.split(",")]
        rows += run("extractive tier", EXTRACTIVE, levels, args.seconds)
    if args.tiers in ("llm", "both"):
        levels = [int(u) for u in args.llm_users.split(",")]
        rows += run("default tiers (embedded LLM first)", None, levels, args.llm_seconds)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
