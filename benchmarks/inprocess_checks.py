"""The check endpoint without HTTP: where its time goes, with no server or load generator in the way.

    .venv/bin/python benchmarks/inprocess_checks.py [--rounds 300] [--callers 64] [--no-audit] [--cache-off]

Builds the same synthetic store as bench_checks.py, then drives the ASGI application itself with
`--callers` concurrent callers, each asking `--rounds` checks in turn (answer cache warm), and
prints checks/s, CPU µs per check (all threads), latency p50/p99, and the audit group commits
(how many, their size, their duration). `--no-audit` replaces the audit writer with one that
stores nothing, to show what the entry costs; it is a measurement aid, never a mode of the product.
`--cache-off` turns the answer cache off (XINYONG_CHECK_CACHE=0), so every check is computed on
the online path (this store has no serving state): what a check the cache cannot answer costs.
Figures are printed, not written to REPORT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_checks import MEASURE, build_store


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(app: Any, token: str, ids: list[str], rounds: int, callers: int) -> list[float]:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    latencies: list[float] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one(path: str) -> None:
        scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": headers}
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        started = time.perf_counter()
        await app(scope, receive, send)
        latencies.append(time.perf_counter() - started)
        if sent[0]["status"] != 200:
            raise SystemExit(f"unexpected answer: {sent}")

    async def caller(k: int) -> None:
        for i in range(rounds):
            await one(f"/v1/checks/{ids[(k * rounds + i) % len(ids)]}/{MEASURE}")

    await asyncio.gather(*(caller(k) for k in range(callers)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--no-audit", action="store_true")
    parser.add_argument("--cache-off", action="store_true")
    args = parser.parse_args()
    import uvloop

    folder = Path(tempfile.mkdtemp(prefix="xinyong-inprocess-"))
    url, token, ids, _ = build_store(folder, args.subjects)
    os.environ["XINYONG_DB"] = url
    if args.cache_off:
        os.environ["XINYONG_CHECK_CACHE"] = "0"
    from xinyong.interfaces.site import app_from_environment

    app = app_from_environment()
    service = app.state.service  # type: ignore[attr-defined]
    commits: list[tuple[int, float, float]] = []
    log = service.door.log

    def timed_log(entries: Any) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        log(entries)
        commits.append((len(entries), time.perf_counter() - started, time.thread_time() - cpu))

    service.door.log = timed_log
    if args.no_audit:

        async def nothing(entries: Any) -> None:
            return None

        app.state.audit_writer.append = nothing  # type: ignore[attr-defined]

    async def measured() -> None:
        await run(app, token, ids, 20, args.callers)  # warm-up: caches, connections
        commits.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        latencies = await run(app, token, ids, args.rounds, args.callers)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        n = len(latencies)
        print(f"{n / wall:,.0f} checks/s, {cpu / n * 1e6:.1f} µs CPU a check (all threads)")
        print(f"latency p50 {percentile(latencies, 0.5) * 1e3:.2f} ms, p99 {percentile(latencies, 0.99) * 1e3:.2f} ms")
        if commits:
            sizes = [c[0] for c in commits]
            times = [c[1] for c in commits]
            print(
                f"audit commits: {len(commits)}, mean size {sum(sizes) / len(sizes):.1f}, "
                f"p50 {percentile(times, 0.5) * 1e3:.2f} ms, p99 {percentile(times, 0.99) * 1e3:.2f} ms, "
                f"{sum(c[2] for c in commits) / n * 1e6:.1f} µs of the committing thread's CPU a check"
            )

    uvloop.run(measured())


if __name__ == "__main__":
    main()
