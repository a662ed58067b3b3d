"""Enforcers at national traffic (issue 21): cold single checks and batch checks on a store of a
million subjects, beside the bare endpoint of the same server in the same run.

A step of `benchmarks/scale.py` (`bash run.sh bench`; steps `checks-cold-sqlite` and
`checks-cold-postgres`), in its own process like the others:

1. the store: on SQLite a copy of the import step's store (`store.db` of the size: 1 M subjects,
   5 M records; run the `import-sqlite` step first); on PostgreSQL a throwaway cluster filled the
   same way (the shipped schemes, the synthetic subjects, every source's records in bulk);
2. `xinyong init` (its migrations), then `xinyong state` for today (the DuckDB batch, which
   refreshes the serving state, as a nightly run does), and a civil-aviation enforcer's token;
3. for one worker, then two: `xinyong serve` with the answer cache off (XINYONG_CHECK_CACHE=0), and,
   once its workers have finished starting (each builds the portal's in-memory search index, holding
   the GIL), at 64 connections for 20 s each (and GET /healthz, the site's own cheapest route,
   beside them):
   - *cold checks*: GET /v1/checks/SUBJECT/court-defaulters/no-flights, each SUBJECT drawn at
     random from 300,000 of the store's subjects sampled uniformly (persons and organisations), so
     nearly every check asks about a subject nobody asked about before; every answer computed (the
     serving state answers a fresh "no", the online path the rest) and audited before it is sent;
   - *batch checks*: POST /v1/checks/court-defaulters/no-flights with 1,000 random subjects, one
     request at a time per client (one client per worker), for 20 s;
4. the audit log's check entries are counted against the answers given;
5. the bare endpoint, with the server stopped: a Starlette app on granian with as many workers,
   answering the same route with a check's JSON from memory, asked by the same wrk script.

Target (issue 21): cold single checks ≥ 0.5 × the bare endpoint's throughput with p99 ≤ 2 × its
p99 on SQLite, ≥ 0.2 × and ≤ 4 × on PostgreSQL, one worker; batch checks ≥ 50,000 subjects/s per
worker with p99 ≤ 50 ms per request of 1,000.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.bench_checks import BARE_APP, ensure_wrk, free_port, stop, wait_ready
from benchmarks.scale import ROOT, _import_all, _prepare_store, folder
from benchmarks.under_import import THREADS, _checks_audited, _summary, _until_quiet, _wrk

MEASURE = "court-defaulters/no-flights"
SECONDS = 20
SAMPLE = 300_000
BATCH = 1_000
CONNECTIONS = 64
SCRIPT = (
    """
local subjects = {{{subjects}}}
"""
    + THREADS
    + """init = function(args)
  math.randomseed(21 + offset)
end
request = function()
  local s = subjects[math.random(#subjects)]
  return wrk.format("GET", "/v1/checks/" .. s .. "/{measure}", {{["Authorization"] = "Bearer {token}"}})
end
"""
)


def _store(work: Path, size: float, backend: str, stack: ExitStack, scratch: Path) -> str:
    """The store's URL: a copy of the import step's SQLite store, or a new PostgreSQL one."""
    if backend == "sqlite":
        source = folder(work, size) / "store.db"
        if not source.exists():
            raise RuntimeError(f"{source} is missing: run the import-sqlite step first")
        for file in sorted(folder(work, size).glob("store*.db")):
            if "emails" not in file.name:
                shutil.copy(file, scratch / file.name)
        return f"sqlite:///{scratch / 'store.db'}"
    sys.path.insert(0, str(ROOT / "tests"))
    import pgcluster
    from pgcluster import ThrowawayCluster

    pgcluster.SERVER_SETTINGS.update(shared_buffers="2GB", max_wal_size="8GB")
    url: str = stack.enter_context(ThrowawayCluster()).url
    store = _prepare_store(url, work, size)
    _import_all(store, work, size)
    store.dispose()
    return url


def _batches(port: int, token: str, subjects: list[str], seconds: float, clients: int) -> dict[str, Any]:
    """`clients` clients, each POSTing batches of BATCH random subjects one after another."""
    import httpx

    timings: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds
    url = f"http://127.0.0.1:{port}/v1/checks/{MEASURE}"
    headers = {"Authorization": f"Bearer {token}"}

    def client(seed: int) -> None:
        nonlocal failed
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as http:
            while time.perf_counter() < deadline:
                asked = rng.sample(subjects, BATCH)
                started = time.perf_counter()
                answer = http.post(url, json={"subjects": asked}, headers=headers)
                timings.append(time.perf_counter() - started)
                if answer.status_code != 200 or len(answer.json()["answers"]) != BATCH:
                    failed += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    timings.sort()
    return {
        "requests": len(timings),
        "failed": failed,
        "subjects_per_s": round(len(timings) * BATCH / wall),
        "p50_ms": round(timings[len(timings) // 2] * 1e3, 2),
        "p99_ms": round(timings[max(0, int(len(timings) * 0.99) - 1)] * 1e3, 2),
        "max_ms": round(timings[-1] * 1e3, 2),
    }


def _bare(script: Path, workers: int, answer: dict[str, Any]) -> dict[str, float]:
    """The bare endpoint: a Starlette app answering the same route with a check's JSON from memory,
    on the same server (granian, uvloop) with as many workers, asked by the same wrk script."""
    wrk = ensure_wrk()
    port = free_port()
    (script.parent / "bare_app.py").write_text(BARE_APP.format(answer=answer), encoding="utf-8")
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--loop", "uvloop", "--log-level", "warning", "bare_app:app"]
    env = {**os.environ, "PYTHONPATH": str(script.parent)}
    server = subprocess.Popen(cmd, env=env, start_new_session=True, cwd=script.parent)
    try:
        wait_ready(port, f"/v1/checks/{answer['subject']}/{MEASURE}", {})
        _summary(_wrk(wrk, port, script, 2), interrupt=False)  # warm-up: connections, the loop
        return _summary(_wrk(wrk, port, script, SECONDS), interrupt=False)
    finally:
        stop(server)


def _serve(url: str, token: str, subjects: list[str], script: Path, workers: int) -> dict[str, Any]:
    import httpx

    wrk = ensure_wrk()
    port = free_port()
    env = {**os.environ, "XINYONG_DB": url, "XINYONG_CHECK_CACHE": "0", "XINYONG_PORT": str(port)}
    env["XINYONG_WORKERS"] = str(workers)
    env["XINYONG_KEYS"] = str(Path(script).parent / "keys")
    xinyong = str(Path(sys.executable).with_name("xinyong"))
    server = subprocess.Popen([xinyong, "serve"], env=env, start_new_session=True)
    try:
        wait_ready(port, "/readyz", {}, timeout=120)
        warm_up = _until_quiet(server.pid)
        headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/checks/{subjects[0]}/{MEASURE}", headers=headers).json()
        healthz = _summary(_wrk(wrk, port, None, SECONDS), interrupt=False)
        before = _checks_audited(url)
        cold = _summary(_wrk(wrk, port, script, SECONDS), interrupt=False)
        audited = _checks_audited(url) - before
        batches = _batches(port, token, subjects, SECONDS, clients=workers)
    finally:
        stop(server)
    bare = _bare(script, workers, answer)  # with the server stopped: each has the machine to itself
    answered = int(cold["requests"] - cold["non2xx"])
    return {
        "workers": workers,
        "warm_up_seconds": warm_up,
        "bare": bare,
        "healthz": healthz,
        "cold": cold,
        "answered": answered,
        "audited": audited,
        "every_answer_audited": audited >= answered,
        "batch": batches,
        "load_average": os.getloadavg()[0],
    }


def step(work: Path, size: float, backend: str) -> dict[str, Any]:
    from sqlalchemy import select

    from xinyong.rules.clock import FixedClock
    from xinyong.security.access import Principal, Role
    from xinyong.service import Service
    from xinyong.storage import tables as t
    from xinyong.storage.store import Store

    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xinyong-cold-checks-")))
        started = time.perf_counter()
        url = _store(work, size, backend, stack, scratch)
        env = {**os.environ, "XINYONG_DB": url, "XINYONG_KEYS": str(scratch / "keys")}
        xinyong = str(Path(sys.executable).with_name("xinyong"))
        subprocess.run([xinyong, "init"], env=env, check=True, capture_output=True)
        prepared = time.perf_counter() - started
        started = time.perf_counter()
        batch = subprocess.run(
            [xinyong, "state", "--out", str(scratch / "state.parquet"), "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        batch_seconds = time.perf_counter() - started
        store = Store(url)
        service = Service(store, FixedClock(dt.datetime.now(dt.UTC)))
        admin = Principal(Role.ADMIN, "bench", channel="cli")
        token, _ = service.credentials.create_token(admin, Role.ENFORCER, agency="civil-aviation", label="benchmark")
        with store.read() as conn:
            every = [row.id for row in conn.execute(select(t.subjects.c.id))]
        store.dispose()
        subjects = random.Random(21).sample(every, min(SAMPLE, len(every)))
        script = scratch / "checks.lua"
        listed = ", ".join(f'"{s}"' for s in subjects)
        script.write_text(SCRIPT.format(subjects=listed, measure=MEASURE, token=token), encoding="utf-8")
        runs = [_serve(url, token, subjects, script, workers) for workers in (1, 2)]
    return {
        "subjects": len(every),
        "sampled": len(subjects),
        "prepare_seconds": round(prepared, 1),
        "batch_seconds": round(batch_seconds, 1),
        "served_rows": json.loads(batch.stdout)["served"],
        "runs": runs,
    }


def render(results: dict[str, Any]) -> list[str]:
    """The section's lines: per backend and worker count, bare against cold, and the batches."""
    lines = [
        "### Enforcers at national traffic: cold checks and batch checks (issue 21)",
        "",
        f"`benchmarks/cold_checks.py`: a store of the size's subjects; `xinyong state` for today (the serving "
        f"state); the server with the answer cache off, once its workers have started; wrk at {CONNECTIONS} "
        f"connections for {SECONDS} s each: single checks "
        f"(`{MEASURE}`) about subjects drawn at random from {SAMPLE:,} sampled from the whole store (cold: "
        "nearly every subject asked about once), each audited before it answers; then batch checks of "
        f"{BATCH:,} random subjects, one request at a time per client, one client per worker; with the server "
        "stopped, the bare endpoint: a Starlette app answering the same route with a check's JSON from memory, "
        "on granian with as many workers, asked by the same wrk script. "
        "Targets: cold checks ≥ 0.5 × bare throughput and p99 ≤ 2 × bare p99 on SQLite (≥ 0.2 ×, ≤ 4 × on "
        "PostgreSQL), one worker; batches ≥ 50,000 subjects/s per worker, p99 ≤ 50 ms.",
        "",
        "| store | subjects | workers | warm-up | bare req/s, p50 / p99 ms | cold checks/s, p50 / p99 / max ms "
        "| × bare (throughput, p99) | non-2xx | answered / audited | batches: subjects/s, p50 / p99 ms | "
        "load avg | target |",
        "| --- | ---: | ---: | ---: | --- | --- | --- | ---: | --- | --- | ---: | --- |",
    ]
    for backend, label, (share, tail) in (
        ("sqlite", "SQLite (WAL)", (0.5, 2.0)),
        ("postgresql", "PostgreSQL 15", (0.2, 4.0)),
    ):
        result = results.get(backend)
        if not result:
            continue
        if "error" in result:
            lines.append(f"| {label} | — | — | — | failed: {result['error']} | | | | | | | |")
            continue
        for run in result["runs"]:
            bare, cold, batch = run["bare"], run["cold"], run["batch"]
            ratio, tail_ratio = cold["rps"] / bare["rps"], cold["p99"] / bare["p99"]
            per_worker = batch["subjects_per_s"] / run["workers"]
            met = ratio >= share and tail_ratio <= tail and per_worker >= 50_000 and batch["p99_ms"] <= 50
            verdict = ("met" if met else "not met") if run["workers"] == 1 else "(two workers, beside)"
            lines.append(
                f"| {label} | {result['subjects']:,} | {run['workers']} | {run['warm_up_seconds']} s "
                f"| {bare['rps']:,.0f}, {bare['p50']} / {bare['p99']} "
                f"| {cold['rps']:,.0f}, {cold['p50']} / {cold['p99']} / {cold['max']} "
                f"| {ratio:.2f} ×, {tail_ratio:.2f} × | {cold['non2xx']:.0f} "
                f"| {run['answered']:,} / {run['audited']:,} "
                f"| {batch['subjects_per_s']:,} ({per_worker:,.0f} a worker), {batch['p50_ms']} / {batch['p99_ms']} "
                f"| {run['load_average']:.1f} | {verdict} |"
            )
    lines += [
        "",
        "The bare endpoint's rate moves between runs by a third on this shared 2-core machine (its own "
        "column above): compare each row with its own bare figure. Every answered check had its audit entry "
        "(the audit log also holds the few checks of the warm-up). Where the time of a cold check goes, "
        'measured in-process, is in docs/api.md ("Performance", cold checks).',
    ]
    return lines
