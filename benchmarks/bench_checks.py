"""Benchmark the check endpoint (the API's hot path) against a bare Starlette endpoint.

    .venv/bin/python benchmarks/bench_checks.py [--duration 10] [--connections 64] [--subjects 1000]

What it does, all on this machine and on loopback (127.0.0.1) only:
1. installs wrk with apt-get if it is missing (Debian's package; needs root);
2. builds a synthetic store in a temporary folder: the shipped court-defaulters scheme, N synthetic
   persons, a COURT.DEFAULT record for every other one, and a civil-aviation enforcer token;
3. for each ASGI server (granian, uvicorn), one worker each, in the same run:
   - a bare Starlette app whose one route returns the same JSON answer from memory,
   - the xinyong app, asked `GET /v1/checks/{subject}/court-defaulters/no-flights` for the N
     subjects in turn with the enforcer's token (the answer cache warm, as in steady state),
   - the xinyong app with the answer cache off (XINYONG_CHECK_CACHE=0), after a DuckDB batch has
     filled the serving state for today: a "no" read from it, a "yes" computed online;
   - the same with no serving state (a copy of the store made before the batch): every check
     computed on the online path;
   each with wrk, 64 connections, 2 threads, a bounded duration, after a short warm-up;
4. writes the numbers into benchmarks/REPORT.md under its own heading (other sections are kept).

Every server it starts is stopped before it exits. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "benchmarks" / "REPORT.md"
HEADING = "## Checks endpoint (the API issue)"
MEASURE = "court-defaulters/no-flights"

BARE_APP = """
import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

BODY = orjson.dumps({answer!r})


async def check(request):
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/v1/checks/{{subject}}/{{scheme}}/{{measure}}", check)])
"""

LUA = """
local subjects = {{{subjects}}}
local i = 0
request = function()
  i = i + 1
  local s = subjects[(i % #subjects) + 1]
  return wrk.format("GET", "/v1/checks/" .. s .. "/{measure}", {{["Authorization"] = "Bearer {token}"}})
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (apt-get install -y wrk)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in range(30):
        done = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, text=True)
        if done.returncode == 0:
            break
        if "lock" in done.stderr and attempt < 29:
            time.sleep(5)  # another apt-get is running
            continue
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is not installed and apt-get could not install it")
    return found


def person_id(n: int) -> str:
    from stdnum.cn import ric

    first17 = f"110105{19700101 + (n // 1000) * 10000:08d}{n % 1000:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def build_store(folder: Path, subjects: int) -> tuple[str, str, list[str], dict[str, Any]]:
    """A synthetic store; returns its URL, an enforcer token, the subject ids and one answer."""
    from xinyong.due_process.after_append import AFTER_APPEND
    from xinyong.ledger import imports, registry
    from xinyong.rules.clock import FixedClock
    from xinyong.rules.schemes import parse_scheme
    from xinyong.security.access import Principal, Role
    from xinyong.service import Service
    from xinyong.storage.store import Store

    url = f"sqlite:///{folder / 'bench.db'}"
    store = Store(url)
    store.migrate()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    text = (ROOT / "schemes" / "court-defaulters.yaml").read_text(encoding="utf-8")
    ids = [person_id(n) for n in range(subjects)]
    with store.write() as conn:
        registry.publish_scheme(conn, parse_scheme(text), text, start, after=AFTER_APPEND)
        registry.add_source(conn, "court", ["COURT.DEFAULT"], start)
        rows = "subject_id,kind,name\n" + "".join(f"{s},person,Person {n}\n" for n, s in enumerate(ids))
        imports.import_subjects(conn, "subjects.csv", rows.encode(), now=start, actor="bench", after=AFTER_APPEND)
        records = "subject_id,behaviour,occurred_on,document_ref\n" + "".join(
            f"{s},COURT.DEFAULT,2025-12-01,({n})执{n}号\n" for n, s in enumerate(ids) if n % 2 == 0
        )
        imports.import_records(
            conn, "court.csv", records.encode(), source="court", now=start, actor="bench", after=AFTER_APPEND
        )
    now = dt.datetime.now(dt.UTC)
    service = Service(store, FixedClock(now))
    admin = Principal(Role.ADMIN, "bench", channel="cli")
    token, _ = service.credentials.create_token(admin, Role.ENFORCER, agency="civil-aviation", label="benchmark")
    answer = service.questions.check(Principal(Role.ENFORCER, "bench", agency="civil-aviation"), ids[0], MEASURE)
    store.dispose()
    # The same store without serving state (every check computed online), then the batch that
    # serves today's state from the same file.
    with sqlite3.connect(folder / "bench.db") as source, sqlite3.connect(folder / "online.db") as copy:
        source.backup(copy)  # the WAL's pages included, which a file copy could miss
    from xinyong.derived import batch
    from xinyong.rules.clock import local_day

    batch.run(store, batch.DuckDBEngine(), as_of=local_day(now), known_at=now, out=folder / "state.parquet")
    store.dispose()
    return url, token, ids, answer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, path: str, headers: dict[str, str], timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not become ready")


def start_server(server: str, target: str, port: int, env: dict[str, str], factory: bool) -> subprocess.Popen[bytes]:
    python = sys.executable
    if server == "granian":
        cmd = [python, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--workers", "1", "--loop", "uvloop", "--log-level", "warning"]
        cmd += ["--factory", target] if factory else [target]
    else:
        cmd = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        cmd += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
        cmd += ["--factory", target] if factory else [target]
    return subprocess.Popen(cmd, env=env, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_wrk(wrk: str, port: int, script: Path, duration: int, connections: int) -> dict[str, float]:
    cmd = [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script)]
    cmd.append(f"http://127.0.0.1:{port}/")
    return parse_wrk(subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout)


def parse_wrk(out: str) -> dict[str, float]:
    """wrk's summary: requests, rate, latency p50/p99/max (ms), non-2xx answers, socket errors
    (a request past wrk's `--timeout` is one: counted, not in the latencies)."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    row = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+\w+)", out, re.M)
    requests = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "requests": float(requests.group(1)) if requests else float("nan"),
        "p50": latency.get("50", float("nan")),
        "p99": latency.get("99", float("nan")),
        "max": _ms(row.group(1)) if row else float("nan"),
        "non2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": float(sum(int(n) for n in socket_errors.groups())) if socket_errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def ask_each(port: int, ids: list[str], headers: dict[str, str]) -> None:
    """Every subject asked once, in turn, before the load starts: the answer cache is warm, as in
    steady state. A timed warm-up alone did not always get through the first, computed, answers
    on a busy machine, and those landed in the measured tail."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
        for subject in ids:
            client.get(f"/v1/checks/{subject}/{MEASURE}").raise_for_status()


def measure(
    wrk: str, server: str, target: str, env: dict[str, str], factory: bool, script: Path, args: argparse.Namespace
) -> dict[str, float]:
    port = free_port()
    process = start_server(server, target, port, env, factory)
    try:
        headers = {"Authorization": f"Bearer {args.token}"}
        wait_ready(port, f"/v1/checks/{args.subject}/{MEASURE}", headers)
        ask_each(port, args.ids, headers)
        run_wrk(wrk, port, script, 2, args.connections)  # warm-up: connections, the loop, the allocator
        return run_wrk(wrk, port, script, args.duration, args.connections)
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (bounded: max 60)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--servers", default="granian,uvicorn")
    parser.add_argument("--no-report", action="store_true", help="print the results, do not write REPORT.md")
    args = parser.parse_args()
    args.duration = max(1, min(args.duration, 60))
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="xinyong-bench-") as tmp:
        folder = Path(tmp)
        url, token, ids, answer = build_store(folder, args.subjects)
        args.token, args.subject, args.ids = token, ids[0], ids
        (folder / "bare_app.py").write_text(BARE_APP.format(answer=answer), encoding="utf-8")
        script = folder / "checks.lua"
        script.write_text(
            LUA.format(subjects=", ".join(f'"{s}"' for s in ids), measure=MEASURE, token=token), encoding="utf-8"
        )
        base_env = {**os.environ, "PYTHONPATH": str(folder), "XINYONG_DB": url}
        results: dict[str, dict[str, dict[str, float]]] = {}
        for server in [s.strip() for s in args.servers.split(",") if s.strip()]:
            print(f"--- {server}", flush=True)
            results[server] = {
                "bare Starlette (answer from memory)": measure(
                    wrk, server, "bare_app:app", base_env, False, script, args
                ),
                "xinyong check (answer cache warm)": measure(
                    wrk, server, "xinyong.interfaces.site:app_from_environment", base_env, True, script, args
                ),
                "xinyong check (answer cache off: serving state)": measure(
                    wrk,
                    server,
                    "xinyong.interfaces.site:app_from_environment",
                    {**base_env, "XINYONG_CHECK_CACHE": "0"},
                    True,
                    script,
                    args,
                ),
                "xinyong check (answer cache off, no serving state: all online)": measure(
                    wrk,
                    server,
                    "xinyong.interfaces.site:app_from_environment",
                    {**base_env, "XINYONG_CHECK_CACHE": "0", "XINYONG_DB": f"sqlite:///{folder / 'online.db'}"},
                    True,
                    script,
                    args,
                ),
            }
            for name, r in results[server].items():
                print(f"{name:40} {r['rps']:>9.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms", flush=True)
    section = render(results, args)
    print(section)
    if not args.no_report:
        write_section(section)


def render(results: dict[str, dict[str, dict[str, float]]], args: argparse.Namespace) -> str:
    lines = [
        HEADING,
        "",
        f"Run on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load generator (wrk, "
        f"2 threads, {args.connections} connections, {args.duration} s after a 2 s warm-up) on the same machine, "
        f"one server worker, SQLite store, {args.subjects} synthetic subjects asked in turn by a "
        "civil-aviation enforcer token (every check writes its audit entry). Load average when the run "
        f"ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work shared them; compare rows of one run).",
        "",
        "Command: `.venv/bin/python benchmarks/bench_checks.py"
        + (f" --duration {args.duration}" if args.duration != 10 else "")
        + (f" --connections {args.connections}" if args.connections != 64 else "")
        + (f" --subjects {args.subjects}" if args.subjects != 1000 else "")
        + "`",
        "",
        "| server | endpoint | req/s | p50 ms | p99 ms | × bare | non-2xx |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for server, rows in results.items():
        bare = next(iter(rows.values()))["rps"]
        for name, r in rows.items():
            lines.append(
                f"| {server} | {name} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                f"{r['rps'] / bare:.2f} | {r['non2xx']:.0f} |"
            )
    best = max(results.items(), key=lambda kv: list(kv[1].values())[1]["rps"]) if results else None
    if best is not None:
        server, rows = best
        bare, warm, *_ = rows.values()
        met = warm["rps"] >= 0.5 * bare["rps"] and warm["p99"] <= 10
        lines += [
            "",
            f"Result: target {'met' if met else 'NOT met'} (at least 0.5 × the bare endpoint's throughput with "
            f"p99 ≤ 10 ms). Best here: {server}, {warm['rps']:.0f} req/s = {warm['rps'] / bare['rps']:.2f} × "
            f"bare, p99 {warm['p99']:.1f} ms.",
        ]
    lines += [
        "",
        textwrap.dedent(
            """\
            Where the time goes: in-process, without HTTP (`benchmarks/inprocess_checks.py`, 64
            concurrent callers driving the ASGI app, same store), a repeated check costs about 28 µs of
            CPU with its audit entry (13 µs of it on the thread that commits the entries) and 8 µs
            without. Behind granian the worker spends about 71 µs of CPU per check against 48 µs for
            the bare endpoint (read from /proc per thread: event loop 29 against 26 µs, commit thread
            20 µs, checkpointer 6 µs, granian's threads 15 against 17 µs). A check the answer cache
            cannot answer costs about 0.23 ms in-process for a "no" from the serving state and
            0.38 ms computed online (`inprocess_checks.py --cache-off`); its lookups go straight
            to the driver (`store.DriverQuery`), the rest is SQLAlchemy's read transaction and the
            state computation. How the path is kept lean, where the tail came
            from, and what the answer cache trades, is in docs/api.md ("Performance")."""
        ),
        "",
    ]
    return "\n".join(lines)


def write_section(section: str) -> None:
    """Replace this benchmark's section of REPORT.md (between its markers), keep every other section."""
    begin, end = "<!-- checks:begin -->", "<!-- checks:end -->"
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) + 1 :]
    elif HEADING in text and "<!--" not in text[text.index(HEADING) :]:
        text = text[: text.index(HEADING)] + block  # an unmarked section of ours at the end (older runs)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    REPORT.write_text(text, encoding="utf-8")
    print(f"written: {REPORT}")


if __name__ == "__main__":
    main()
