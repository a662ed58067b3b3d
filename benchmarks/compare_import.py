"""The bulk import and the online update before and after a change of the code, in one run.

A change that moves code (issue 15 moved every module and put the import behind the service)
must not slow the paths that were tuned. This runs the same work with two source trees — the
working tree and a git revision checked out beside it — alternating them, each in a process of
its own with the same interpreter and packages, so that the machine's drift hits both alike:

    .venv/bin/python benchmarks/compare_import.py --old 91bcdfc [--file records-tax.parquet]
        [--rounds 2] [--samples 300] [--work /tmp/xinyong-bench]

For each round and each tree: a fresh SQLite store (and a throwaway PostgreSQL cluster) with the
shipped schemes, the six sources and the 1 M synthetic subjects of `bash run.sh bench` (run that,
or `xinyong synth`, first: it reads WORK/1M/synth), then one source's Parquet file imported in
bulk, then (SQLite) `--samples` online updates: a one-record import and the subject's serving
state recomputed, as the scale benchmark's latency step does. It prints one Markdown table.

The revision before issue 15 had another layout and no service in front of the import; the child
below speaks both (`OLD_API`). Nothing here is imported by the package.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, datetime as dt
from pathlib import Path
sys.path.insert(0, ROOT_TESTS)
import pyarrow.parquet as pq

new = not OLD_API
synth, src = Path(SYNTH), Path(SYNTH) / FILE
now = dt.datetime(2026, 6, 1, 1, tzinfo=dt.UTC)
setup = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
if new:
    from xinyong.demo.city import SHIPPED_SCHEMES, schemes_dir
    from xinyong.demo.synth import SOURCES
    from xinyong.due_process.after_append import AFTER_APPEND
    from xinyong.ledger import imports, registry
    from xinyong.derived import serving
    from xinyong.rules.schemes import load_scheme_file
    from xinyong.storage import tables as t
    from xinyong.storage.store import Store
else:
    from xinyong import imports, ledger, registry, serving
    from xinyong import store as t
    from xinyong.demo import SHIPPED_SCHEMES, schemes_dir
    from xinyong.schemes import load_scheme_file
    from xinyong.store import Store
    from xinyong.synth import SOURCES
store = Store(URL)
store.migrate()
subjects = pq.read_table(synth / "subjects.parquet")
with store.write() as conn:
    for name in SHIPPED_SCHEMES:
        path = schemes_dir() / name
        text = path.read_text(encoding="utf-8")
        if new:
            registry.publish_scheme(conn, load_scheme_file(path), text, setup, after=AFTER_APPEND)
        else:
            ledger.load_scheme(conn, load_scheme_file(path), text, setup)
    for source, codes in SOURCES.items():
        registry.add_source(conn, source, codes, setup)
    stamp = setup.replace(tzinfo=None)
    for batch in subjects.to_batches(200_000):
        conn.execute(t.subjects.insert(), [
            {"id": r["subject_id"], "kind": r["kind"], "name": r["name"],
             "legal_representative": r["legal_representative"], "division": r["division"], "registered_at": stamp}
            for r in batch.to_pylist()])
source = src.name[len("records-"):-len(".parquet")]
server = SERVER_CPU()
started, cpu = time.perf_counter(), time.process_time()
if new:
    from xinyong.rules.clock import FixedClock
    from xinyong.security.access import Principal, Role
    from xinyong.service import Service
    operator = Principal(Role.ADMIN, "bench", channel="cli")
    result = Service(store, FixedClock(now), cache_answers=False).records.import_path(operator, src, source, bulk=True)
else:
    from xinyong import bulk
    result = bulk.import_records(store, src, source=source, now=now, actor="bench")
out = {"records": result.imported, "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
       "server_cpu": SERVER_CPU() - server}
if SAMPLES:
    subject = subjects.column("subject_id")[0].as_py()
    day = dt.date(2026, 5, 31)
    timings = []
    for n in range(SAMPLES):
        at = now + dt.timedelta(seconds=n + 1)
        body = f"subject_id,behaviour,occurred_on,document_ref\n{subject},TRAFFIC.MINOR,2026-05-01,L-{n}\n"
        started = time.perf_counter()
        with store.write() as conn:
            if new:
                imports.import_records(conn, "one.csv", body.encode(), source="transport", now=at, actor="bench",
                                       after=AFTER_APPEND)
            else:
                imports.import_records(conn, "one.csv", body.encode(), source="transport", now=at, actor="bench")
            serving.refresh_subject(conn, subject, day, at)
        timings.append((time.perf_counter() - started) * 1000)
    out["latency_ms"] = timings
store.dispose()
print(json.dumps(out))
"""


def server_cpu_source(data_dir: Path | None) -> str:
    if data_dir is None:
        return "(lambda: 0.0)"
    return f"(lambda: __import__('benchmarks.scale', fromlist=['_server_cpu'])._server_cpu(Path({str(data_dir)!r})))"


def run_child(src: Path, old_api: bool, url: str, args: argparse.Namespace, data_dir: Path | None) -> dict:
    code = CHILD
    for name, value in {
        "ROOT_TESTS": repr(str(ROOT / "tests")),
        "OLD_API": repr(old_api),
        "SYNTH": repr(str(Path(args.work) / "1M" / "synth")),
        "FILE": repr(args.file),
        "URL": repr(url),
        "SAMPLES": repr(args.samples if data_dir is None else 0),
        "SERVER_CPU": server_cpu_source(data_dir),
    }.items():
        code = code.replace(name, value)
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT, timeout=3600
    )
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="The git revision to compare with (before the change).")
    parser.add_argument("--file", default="records-tax.parquet", help="The synthetic source file to import.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=300, help="Online updates per SQLite run.")
    parser.add_argument("--work", default="/tmp/xinyong-bench")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import ThrowawayCluster

    with tempfile.TemporaryDirectory(prefix="xinyong-compare-") as scratch:
        old_tree = Path(scratch) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old_tree), args.old], cwd=ROOT, check=True, capture_output=True
        )
        trees = {"before": (old_tree / "src", True), "after": (ROOT / "src", False)}
        rows: list[tuple[str, str, dict]] = []
        try:
            for round_ in range(args.rounds):
                for label, (src, old_api) in trees.items():
                    db = Path(scratch) / f"{label}-{round_}.db"
                    rows.append((label, "SQLite", run_child(src, old_api, f"sqlite:///{db}", args, None)))
                    with ThrowawayCluster() as cluster:
                        url = cluster.url
                        rows.append((label, "PostgreSQL", run_child(src, old_api, url, args, cluster.data_dir)))
                    print(label, rows[-2][2]["seconds"], rows[-1][2]["seconds"], file=sys.stderr)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False, capture_output=True
            )

    print(f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; load at the end {os.getloadavg()[0]:.1f}")
    print(
        f"- command: `.venv/bin/python benchmarks/compare_import.py --old {args.old} --file {args.file} "
        f"--rounds {args.rounds} --samples {args.samples}`\n"
    )
    print("| code | store | records | import s | client CPU s | server CPU s | update p50 ms | update p99 ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, store, r in rows:
        latency = r.get("latency_ms")
        p50 = f"{statistics.median(latency):.2f}" if latency else "—"
        p99 = f"{sorted(latency)[int(len(latency) * 0.99) - 1]:.2f}" if latency else "—"
        server = f"{r['server_cpu']:.1f}" if store == "PostgreSQL" else "—"
        print(
            f"| {label} | {store} | {r['records']:,} | {r['seconds']:.2f} | {r['cpu']:.2f} | {server} | {p50} | {p99} |"
        )


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"\n({time.perf_counter() - started:.0f} s)", file=sys.stderr)
