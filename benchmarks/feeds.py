"""Feeds benchmark (issue 21): the time and size of cutting one feed version for a day of changes.

    .venv/bin/python -m benchmarks.feeds --subjects 100000            # build a synthetic store first
    .venv/bin/python -m benchmarks.feeds --store /tmp/xinyong-bench/1M/store.db   # a copy of a store

A store is built from `xinyong synth` files (90% persons, 10% organisations, 5 records each, the
three shipped schemes, bulk-imported as `benchmarks.scale` does) or copied from an existing SQLite
store (the original is never opened). Then, on the copy:

1. every agency that implements a shipped measure gets a feed key, and the first versions are cut
   for day D−1 (the whole set; nothing is served for that day, so the batch engine answers);
2. the nightly batch for day D fills the serving state (`xinyong state --serve`);
3. a day of changes on D, each through the service as an interface would make it: repairs and
   revocations of court records (removals) and consent grants to city-points (additions);
4. D's versions are cut (`xinyong feeds publish`): the headline — the set found from the serving
   state plus the online path for the day's changes; beside it the same set found by the batch
   engine over the whole population and by the served path alone, timed on their own.

Results go to benchmarks/results/feeds-*.json; `--report` also rewrites the "Feeds" section of
benchmarks/REPORT.md. Every figure is measured on this machine in this run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "benchmarks" / "REPORT.md"
BEGIN, END = "<!-- feeds:begin -->", "<!-- feeds:end -->"
ZONE = ZoneInfo("Asia/Shanghai")
# After the notice period (P10D) of the records a scale store imports on 2026-06-01.
DAY = dt.date(2026, 6, 15)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), ZONE).astimezone(dt.UTC)


def timed(work: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, round(time.perf_counter() - started, 3)


def build(work: Path, subjects: int) -> Path:
    """A store of `subjects` synthetic subjects, as the scale benchmark builds its import store."""
    from benchmarks import scale

    size = subjects / 1_000_000
    scale.step_synth(work, size)
    db = scale.folder(work, size) / "store.db"
    for file in db.parent.glob("store*.db*"):
        file.unlink()
    store = scale._prepare_store(f"sqlite:///{db}", work, size)
    scale._import_all(store, work, size)
    store.dispose()
    return db


def copy(source: Path, work: Path) -> Path:
    """A copy of an SQLite store (and its audit log's file, if it has one), never the original."""
    work.mkdir(parents=True, exist_ok=True)
    target = work / "store.db"
    for file in work.glob("store*.db*"):
        file.unlink()
    for file in source.parent.glob(f"{source.stem}*.db"):
        shutil.copyfile(file, work / file.name.replace(source.stem, "store", 1))
    return target


def run(db: Path, work: Path, changes: int, seed: int, profile: bool = False) -> dict[str, Any]:
    from sqlalchemy import func, select

    from xinyong.derived import feeds
    from xinyong.rules.clock import FixedClock
    from xinyong.security.access import Principal, Role
    from xinyong.security.keys import KeyRing
    from xinyong.service import Service
    from xinyong.storage import tables as t
    from xinyong.storage.store import Store

    store = Store(f"sqlite:///{db}")
    _, migrated = timed(store.migrate)
    ring = KeyRing(work / "keys")
    shutil.rmtree(ring.folder, ignore_errors=True)
    ring.ensure()
    admin = Principal(Role.ADMIN, "bench", channel="cli")

    def service(at: dt.datetime) -> Service:
        return Service(store, FixedClock(at), cache_answers=False, keys=ring)

    with store.read() as conn:
        population = conn.execute(select(func.count()).select_from(t.subjects)).scalar_one()
        records = conn.execute(select(func.count()).select_from(t.records)).scalar_one()
        agencies = sorted(feeds.known_agencies(conn))
    for agency in agencies:
        service(local(DAY, 0)).feeds.make_key(admin, agency)

    # 1. The first versions, for D-1: the whole set.
    first, first_seconds = timed(lambda: service(local(DAY - dt.timedelta(days=1), 23)).feeds.publish(admin))
    first_entries = _entries(store, 1)

    # 2. The nightly batch for D.
    batch, batch_seconds = timed(
        lambda: service(local(DAY, 0, 5)).operations.batch_state(admin, out=work / "state.parquet", as_of=DAY)
    )

    # 3. A day of changes.
    rng = random.Random(seed)
    with store.read() as conn:
        court = list(
            conn.execute(
                select(t.records.c.id)
                .where(t.records.c.behaviour == "COURT.DEFAULT")
                .order_by(t.records.c.id)
                .limit(changes * 50)
            ).scalars()
        )
        persons = list(
            conn.execute(
                select(t.subjects.c.id)
                .where(t.subjects.c.kind == "person")
                .order_by(t.subjects.c.id)
                .limit(changes * 50)
            ).scalars()
        )
    chosen = rng.sample(court, min(len(court), 2 * changes))
    ended, revoked = chosen[:changes], chosen[changes:]
    granted = rng.sample(persons, min(len(persons), changes))
    events, started = 0, time.perf_counter()
    minute = 0
    for record in ended:
        minute += 1
        service(local(DAY, 8) + dt.timedelta(seconds=minute)).records.end(admin, str(record), on=DAY, reason="repaired")
        events += 1
    for record in revoked:
        minute += 1
        service(local(DAY, 9) + dt.timedelta(seconds=minute)).records.revoke(admin, str(record), reason="wrong person")
        events += 1
    for person in granted:
        minute += 1
        service(local(DAY, 10) + dt.timedelta(seconds=minute)).subjects.change_consent(
            admin, person, "city-points", True
        )
        events += 1
    changes_seconds = round(time.perf_counter() - started, 2)

    # 4. D's versions, and the set found each way.
    known = local(DAY, 18)
    with store.read() as conn:
        measures = feeds.measures_on(conn, DAY, known, agencies)
    ways: dict[str, Any] = {}
    for path in ("auto", "batch"):
        found, seconds = timed(lambda path=path: feeds.membership(store, DAY, known, measures, path=path))
        ways[path] = {"seconds": seconds, "paths": found.paths, "online": found.online}
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    published, publish_seconds = timed(lambda: service(known).feeds.publish(admin))
    if profile:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    day_versions = [v for v in published["versions"] if v["created"]]
    sizes = {}
    for version in day_versions:
        shown = service(known).feeds.show(admin, version["agency"], since=version["version"] - 1)
        sizes[version["agency"]] = len(json.dumps(shown["versions"][0], separators=(",", ":")).encode())
    result = {
        "subjects": population,
        "records": records,
        "agencies": len(agencies),
        "migrate_seconds": migrated,
        "first": {
            "seconds": first_seconds,
            "paths": first["paths"],
            "members": sum(v["add"] for v in first["versions"]),
            "entries": first_entries,
        },
        "batch_serve_seconds": batch_seconds,
        "served_rows": batch.served,
        "changes": {"events": events, "seconds": changes_seconds},
        "publish": {
            "seconds": publish_seconds,
            "paths": published["paths"],
            "online": published["online"],
            "versions": len(day_versions),
            "add": sum(v["add"] for v in day_versions),
            "del": sum(v["del"] for v in day_versions),
            "bytes": sum(sizes.values()),
            "largest_bytes": max(sizes.values(), default=0),
        },
        "set_served_and_online": ways["auto"],
        "set_batch": ways["batch"],
    }
    store.dispose()
    return result


def _entries(store: Any, version: int) -> int:
    from sqlalchemy import func, select

    from xinyong.storage import tables as t

    with store.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(t.feed_entries).where(t.feed_entries.c.version == version)
            ).scalar_one()
        )


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
    }


def render(result: dict[str, Any], command: str) -> str:
    p, first = result["publish"], result["first"]
    lines = [
        BEGIN,
        "## Feeds: one version for a day of changes (issue 21)",
        "",
        f"- command: `{command}`",
        f"- machine: {result['machine']['platform']}, {result['machine']['cpus']} cores, Python "
        f"{result['machine']['python']}; 1-minute load average at the end {result['machine']['load'][0]:.1f}",
        f"- store: SQLite, {result['subjects']:,} subjects, {result['records']:,} records, "
        f"{result['agencies']} agencies with a feed key",
        "",
        "| step | time | notes |",
        "| --- | --- | --- |",
        f"| first versions (day D−1, the whole set) | {first['seconds']} s | {first['members']:,} members in all; "
        f"{first['entries']:,} entries; set found by {first['paths']} |",
        f"| nightly batch for D with the serving state refreshed | {result['batch_serve_seconds']} s | "
        f"{result['served_rows']:,} serving rows |",
        f"| a day of changes through the service | {result['changes']['seconds']} s | "
        f"{result['changes']['events']} events (repairs, revocations, consent grants) |",
        f"| **D's versions cut** (`feeds publish`) | **{p['seconds']} s** | {p['versions']} versions, "
        f"+{p['add']} / −{p['del']} hashes, {p['bytes']:,} bytes of JSON (largest {p['largest_bytes']:,}); "
        f"{p['online']} subjects on the online path; {p['paths']} |",
        f"| the set alone: serving state + online path | {result['set_served_and_online']['seconds']} s | "
        f"{result['set_served_and_online']['online']} subjects online |",
        f"| the set alone: DuckDB batch over everyone | {result['set_batch']['seconds']} s | export and query |",
        "",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=None, help="Build a synthetic store of this many subjects.")
    parser.add_argument("--store", type=Path, default=None, help="Copy this SQLite store instead (never opened).")
    parser.add_argument("--work", type=Path, default=Path("/tmp/xinyong-feeds-bench"), help="Scratch folder.")
    parser.add_argument("--changes", type=int, default=200, help="Repairs, revocations and consent grants, each.")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--report", action="store_true", help="Rewrite the Feeds section of benchmarks/REPORT.md.")
    parser.add_argument("--profile", action="store_true", help="Print where D's publish spends its time (stderr).")
    args = parser.parse_args(argv)
    if (args.subjects is None) == (args.store is None):
        parser.error("give --subjects N or --store FILE")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.store is not None:
        db, built = timed(lambda: copy(args.store, args.work))
    else:
        db, built = timed(lambda: build(args.work, args.subjects))
    result = run(db, args.work, args.changes, args.seed, args.profile)
    result["prepare_seconds"] = built
    result["machine"] = machine()
    result["at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"feeds-{result['subjects']}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    if args.report:
        command = "python -m benchmarks.feeds " + " ".join(argv)
        section = render(result, command)
        text = REPORT.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        REPORT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
