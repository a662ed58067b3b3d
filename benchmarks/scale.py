"""Scale benchmarks (issue 6): synthetic population, batch state on DuckDB vs a bare DuckDB query vs
pandas vs Spark local, bulk import into SQLite and PostgreSQL, online update latency.

    .venv/bin/python -m benchmarks.scale                      # sizes 1,5,10 (million subjects)
    .venv/bin/python -m benchmarks.scale --sizes 1 --quick    # a smoke run

Each measured step runs in its own process; the parent samples the resident memory of that process
and all its children (Spark's JVM included) with psutil and keeps the peak. Results are appended
to benchmarks/results/scale-*.json and the "Scale" section of benchmarks/REPORT.md is rewritten
from them (other sections of the report are left alone). Every figure is measured; sizes that were
not run say so.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "benchmarks" / "REPORT.md"
TODAY = dt.date(2026, 6, 1)
AS_OF = dt.date(2026, 5, 31)
KNOWN = dt.datetime(2026, 6, 1, 0, tzinfo=dt.UTC)
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
# DuckDB batch and bare query run this many times in one process each; the report shows the
# fastest (the machine is shared, so single runs vary by 2-3x) and the runs behind it.
REPEAT = 3


# --- measuring --------------------------------------------------------------------------------------


def measure(args: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run `python -m benchmarks.scale step ...` and return its JSON plus wall time and peak RSS."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.scale", "step", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                total = root.memory_info().rss
                for child in root.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        total += child.memory_info().rss
                peak = max(peak, total)
            except psutil.Error:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        done.set()
        return {"step": args, "error": f"timed out after {timeout} s", "peak_gib": round(peak / 2**30, 2)}
    done.set()
    thread.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"step": args, "error": err.strip().splitlines()[-1:] or ["failed"], "peak_gib": round(peak / 2**30, 2)}
    result = json.loads(out.strip().splitlines()[-1])
    load = round(os.getloadavg()[0], 1)  # the machine is shared: how busy it was as the step ended
    result.update(step=args, wall_s=round(wall, 2), peak_gib=round(peak / 2**30, 2), load=load)
    return result


# --- steps (each in its own process) ----------------------------------------------------------------


def folder(work: Path, size: float) -> Path:
    return work / f"{size:g}M"


def step_synth(work: Path, size: float) -> dict[str, Any]:
    from xinyong.demo.synth import write_parquet

    n = int(size * 1_000_000)
    started = time.perf_counter()
    write_parquet(
        folder(work, size) / "synth", persons=n * 9 // 10, organisations=n // 10, records=5 * n, today=TODAY, seed=6
    )
    return {"seconds": round(time.perf_counter() - started, 2), "subjects": n, "records": 5 * n}


EFFECTS_SQL = """
COPY (
  WITH r AS (
    SELECT row_number() OVER () AS record_id, subject_id, behaviour, occurred_on,
           -- Sources send each month's records three days after the month ends (as the demo does).
           CAST(last_day(occurred_on) + INTERVAL 3 DAY AS DATE) AS recorded_on
    FROM read_parquet({records})
  )
  SELECT p.scheme, p.version, r.record_id, r.subject_id, r.behaviour, p.points, r.occurred_on,
         greatest(r.occurred_on, CAST(r.recorded_on + to_months(p.notice_months) + to_days(p.notice_days) AS DATE))
           AS valid_from,
         CAST(r.occurred_on + to_months(p.months) + to_days(p.days) AS DATE) AS valid_until,
         epoch_us(CAST(r.recorded_on AS TIMESTAMP) + INTERVAL 9 HOUR) AS known_from,
         CAST(NULL AS BIGINT) AS known_until
  FROM r JOIN parameters AS p USING (behaviour)
  WHERE greatest(r.occurred_on, CAST(r.recorded_on + to_months(p.notice_months) + to_days(p.notice_days) AS DATE))
        < CAST(r.occurred_on + to_months(p.months) + to_days(p.days) AS DATE)
  ORDER BY r.subject_id
) TO {out} (FORMAT parquet, ROW_GROUP_SIZE 1000000)
"""


def shipped_versions() -> list[Any]:
    from xinyong.demo.city import SHIPPED_SCHEMES, schemes_dir
    from xinyong.rules.schemes import SchemeVersion, load_scheme_file

    loaded = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    versions = []
    for name in SHIPPED_SCHEMES:
        scheme = load_scheme_file(schemes_dir() / name)
        versions.append(SchemeVersion(scheme, loaded, scheme.digest()))
    return versions


def step_inputs(work: Path, size: float) -> dict[str, Any]:
    """The batch inputs as the store would export them after monthly imports of the synth files."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xinyong.derived.batch import micros

    started = time.perf_counter()
    base = folder(work, size)
    inputs = base / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    versions = shipped_versions()
    rows: dict[str, list[Any]] = {k: [] for k in ("scheme", "version", "behaviour", "points")}
    rows |= {"notice_months": [], "notice_days": [], "months": [], "days": []}
    for version in versions:
        for b in version.scheme.behaviours:
            notice = b.notice_in(version.scheme)
            rows["scheme"].append(version.id)
            rows["version"].append(version.version)
            rows["behaviour"].append(b.code)
            rows["points"].append(b.points)
            rows["notice_months"].append(notice.years * 12 + notice.months)
            rows["notice_days"].append(notice.days)
            rows["months"].append(b.validity.years * 12 + b.validity.months)
            rows["days"].append(b.validity.days)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.register("parameters", pa.table(rows))
    records = f"'{base / 'synth'}/records-*.parquet'"
    con.execute(EFFECTS_SQL.format(records=records, out=f"'{inputs / 'effects.parquet'}'"))
    con.execute(
        f"COPY (SELECT subject_id, kind FROM read_parquet('{base / 'synth' / 'subjects.parquet'}')) "
        f"TO '{inputs / 'subjects.parquet'}' (FORMAT parquet)"
    )
    # 85% of persons consent to the city scheme before the first record (as in the demo).
    granted = micros(dt.datetime(2023, 1, 1, tzinfo=dt.UTC))
    con.execute(
        f"COPY (SELECT CAST(row_number() OVER () AS BIGINT) AS id, subject_id, 'city-points' AS scheme, "
        f"'consent_granted' AS kind, CAST({granted} AS BIGINT) AS recorded_at "
        f"FROM read_parquet('{base / 'synth' / 'subjects.parquet'}') "
        f"WHERE kind = 'person' AND hash(subject_id) % 100 < 85) TO '{inputs / 'consent.parquet'}' (FORMAT parquet)"
    )
    pq.write_table(
        pa.table(
            {
                "scheme": [v.id for v in versions],
                "version": [v.version for v in versions],
                "loaded_at": pa.array([micros(v.loaded_at) for v in versions], pa.int64()),
                "digest": [v.digest for v in versions],
                "document": [v.scheme.model_dump_json(exclude_none=True) for v in versions],
            }
        ),
        inputs / "scheme_versions.parquet",
    )
    effects = con.execute(f"SELECT count(*) FROM read_parquet('{inputs / 'effects.parquet'}')").fetchall()[0][0]
    return {"seconds": round(time.perf_counter() - started, 2), "effects": int(effects)}


def _query() -> Any:
    from xinyong.derived import batch

    return batch.build_query(shipped_versions(), AS_OF, KNOWN)


def step_duckdb(work: Path, size: float) -> dict[str, Any]:
    from xinyong.derived import batch

    inputs = batch.Inputs(folder(work, size) / "inputs")
    out = folder(work, size) / "state-duckdb.parquet"
    runs = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        query = batch.build_query(inputs.versions(), AS_OF, KNOWN)
        batch.DuckDBEngine().write(query, inputs, out)
        runs.append(round(time.perf_counter() - started, 2))
    return {"seconds": min(runs), "runs": runs, "rows": batch.read_state(out).num_rows}


def bare_sql(inputs: Path, every_subject: bool = True) -> str:
    """The practical limit: per scheme, the score (initial + the sum of active effects' points) and
    grade of every subject the scheme applies to; no caps, consent, lists or measures. The subjects
    are read and joined once, every scheme's sum side by side, as a careful hand would write it.

    With `every_subject=False`, only the subjects that have active effects: the sum alone, a lower
    floor than any batch that must answer for every subject can reach (shown beside it)."""
    from xinyong.derived.batch import micros

    known = micros(KNOWN)
    effects, subjects = inputs / "effects.parquet", inputs / "subjects.parquet"
    sums, joins, columns, parts = [], [], [], []
    for i, version in enumerate(shipped_versions()):
        s = version.scheme
        bands = " ".join(f"WHEN score >= {g.min} THEN '{g.grade}'" for g in s.grades) or "WHEN FALSE THEN ''"
        sums.append(
            f"sum{i} AS (SELECT subject_id, SUM(points) AS points FROM read_parquet('{effects}') "
            f"WHERE scheme = '{s.scheme}' AND known_from <= {known} AND (known_until IS NULL OR known_until > {known}) "
            f"AND valid_from <= DATE '{AS_OF}' AND valid_until > DATE '{AS_OF}' GROUP BY subject_id)"
        )
        if every_subject:
            joins.append(f" LEFT JOIN sum{i} ON sum{i}.subject_id = s.subject_id")
            columns.append(f"sum{i}.points AS p{i}")
            kinds = ", ".join(f"'{kind}'" for kind in s.applies_to)
            scored = f"SELECT subject_id, {s.initial} + COALESCE(p{i}, 0) AS score FROM joined WHERE kind IN ({kinds})"
        else:
            scored = f"SELECT subject_id, {s.initial} + points AS score FROM sum{i}"
        parts.append(f"SELECT '{s.scheme}' AS scheme, subject_id, score, CASE {bands} END AS grade FROM ({scored})")
    if every_subject:
        sums.append(
            f"joined AS (SELECT s.subject_id, s.kind, {', '.join(columns)} FROM read_parquet('{subjects}') AS s"
            f"{''.join(joins)})"
        )
    return f"WITH {', '.join(sums)} {' UNION ALL '.join(parts)}"


def step_bare(work: Path, size: float, every_subject: bool = True) -> dict[str, Any]:
    """The bare query on the batch engine's connection, with its DuckDB settings and Parquet options."""
    import duckdb

    from xinyong.derived import batch

    inputs = batch.Inputs(folder(work, size) / "inputs")
    out = folder(work, size) / "state-bare.parquet"
    engine = batch.DuckDBEngine()
    runs = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        con = engine.connect(inputs)
        engine.copy(con, bare_sql(inputs.folder, every_subject), out)
        runs.append(round(time.perf_counter() - started, 2))
        con.close()
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchall()[0][0]
    return {"seconds": min(runs), "runs": runs, "rows": int(rows)}


def step_bare_sum(work: Path, size: float) -> dict[str, Any]:
    return step_bare(work, size, every_subject=False)


def step_pandas(work: Path, size: float) -> dict[str, Any]:
    """The same semantics as the batch (caps, clamp, grades, consent, lists, measures) in pandas."""
    import numpy as np
    import pandas as pd

    from xinyong.derived.batch import micros

    inputs = folder(work, size) / "inputs"
    started = time.perf_counter()
    known = micros(KNOWN)
    day = pd.Timestamp(AS_OF)
    effects = pd.read_parquet(inputs / "effects.parquet")
    subjects = pd.read_parquet(inputs / "subjects.parquet")
    consent = pd.read_parquet(inputs / "consent.parquet")
    occurred = pd.to_datetime(effects["occurred_on"])
    active_mask = (
        (effects["known_from"] <= known)
        & (effects["known_until"].isna() | (effects["known_until"] > known))
        & (pd.to_datetime(effects["valid_from"]) <= day)
        & (pd.to_datetime(effects["valid_until"]) > day)
    )
    effects = effects.assign(occurred=occurred)[active_mask]
    states: dict[str, pd.DataFrame] = {}
    versions = {v.id: v.scheme for v in shipped_versions()}

    def list_rule(rule: Any, frame: pd.DataFrame, active: pd.DataFrame) -> pd.Series:
        if rule.any_of is not None:
            hits = active[active["behaviour"].isin(rule.any_of)].groupby("subject_id").size()
            return frame["subject_id"].map(hits).fillna(0).gt(0)
        if rule.count is not None:
            earliest = pd.Timestamp(rule.count.within.before(AS_OF))
            sel = active[
                active["behaviour"].isin(rule.count.codes)
                & (active["occurred"] > earliest)
                & (active["occurred"] <= day)
            ]
            return frame["subject_id"].map(sel.groupby("subject_id").size()).fillna(0).ge(rule.count.at_least)
        if rule.grade_in is not None:
            return frame["grade"].isin(rule.grade_in)
        children = [list_rule(c, frame, active) for c in (rule.all or rule.any)]
        out = children[0]
        for c in children[1:]:
            out = (out & c) if rule.all is not None else (out | c)
        return out

    for scheme_id, s in versions.items():
        active = effects[(effects["scheme"] == scheme_id) & (effects["version"] == s.version)]
        frame = subjects[subjects["kind"].isin(s.applies_to)]
        if s.consent == "required":
            latest = (
                consent[consent["scheme"] == scheme_id].sort_values(["recorded_at", "id"]).groupby("subject_id").last()
            )
            granted = set(latest.index[latest["kind"] == "consent_granted"])
            frame = frame[(frame["kind"] != "person") | frame["subject_id"].isin(granted)]
        totals = active.groupby(["subject_id", "behaviour"], as_index=False)["points"].sum()
        caps = totals["behaviour"].map({b.code: b.cap for b in s.behaviours if b.cap})
        totals["points"] = np.where(caps.notna(), totals["points"].clip(-caps, caps), totals["points"])
        delta = totals.groupby("subject_id")["points"].sum()
        score = s.initial + frame["subject_id"].map(delta).fillna(0).astype("int64")
        if s.floor is not None:
            score = score.clip(lower=s.floor)
        if s.ceiling is not None:
            score = score.clip(upper=s.ceiling)
        frame = frame.assign(score=score.to_numpy())
        if s.grades:
            frame["grade"] = np.select([frame["score"] >= g.min for g in s.grades], [g.grade for g in s.grades], None)
        else:
            frame["grade"] = None
        for item in s.lists:
            frame[f"l:{item.id}"] = list_rule(item.rule, frame, active).to_numpy()
        states[scheme_id] = frame
    for scheme_id, s in versions.items():
        frame = states[scheme_id]

        def measure_rule(rule: Any, frame: pd.DataFrame = frame, scheme_id: str = scheme_id) -> pd.Series:
            if rule.on_list is not None:
                other, list_id = rule.on_list.split("/", 1) if "/" in rule.on_list else (scheme_id, rule.on_list)
                source = states[other].set_index("subject_id")[f"l:{list_id}"]
                return frame["subject_id"].map(source).fillna(False).astype(bool)
            if rule.grade_in is not None:
                return frame["grade"].isin(rule.grade_in)
            children = [measure_rule(c) for c in (rule.all or rule.any)]
            out = children[0]
            for c in children[1:]:
                out = (out & c) if rule.all is not None else (out | c)
            return out

        for m in s.measures:
            frame[f"m:{m.id}"] = measure_rule(m.applies_when).to_numpy()
    rows = sum(len(f) for f in states.values())
    for scheme_id, frame in states.items():
        frame.to_parquet(folder(work, size) / f"state-pandas-{scheme_id}.parquet")
    return {"seconds": round(time.perf_counter() - started, 2), "rows": rows}


def step_spark(work: Path, size: float) -> dict[str, Any]:
    from xinyong.derived import batch

    inputs = batch.Inputs(folder(work, size) / "inputs")
    out = folder(work, size) / "state-spark.parquet"
    started = time.perf_counter()
    session = batch.spark_session(
        "local[2]", "xinyong-bench", **{"spark.driver.memory": "8g", "spark.sql.shuffle.partitions": "8"}
    )
    ready = time.perf_counter()
    query = batch.build_query(inputs.versions(), AS_OF, KNOWN)
    batch.SparkEngine(session).write(query, inputs, out)
    seconds = time.perf_counter() - started
    session.stop()
    return {
        "seconds": round(seconds, 2),
        "session_s": round(ready - started, 2),
        "rows": batch.read_state(out).num_rows,
    }


def _prepare_store(url: str, work: Path, size: float, emails: float = 0.0) -> Any:
    """A migrated store with the shipped schemes, the six sources and the synth subjects, `emails`
    of them (a share, every n-th subject) with an e-mail address, so their notices queue e-mails."""
    import pyarrow.parquet as pq

    from xinyong.demo.city import SHIPPED_SCHEMES, schemes_dir
    from xinyong.demo.synth import SOURCES
    from xinyong.due_process.after_append import AFTER_APPEND
    from xinyong.ledger import registry
    from xinyong.rules.schemes import load_scheme_file
    from xinyong.storage import tables as t
    from xinyong.storage.store import Store

    store = Store(url)
    store.migrate()
    setup = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    subjects = pq.read_table(folder(work, size) / "synth" / "subjects.parquet")
    with store.write() as conn:
        for name in SHIPPED_SCHEMES:
            path = schemes_dir() / name
            registry.publish_scheme(
                conn, load_scheme_file(path), path.read_text(encoding="utf-8"), setup, after=AFTER_APPEND
            )
        for source, codes in SOURCES.items():
            registry.add_source(conn, source, codes, setup)
        stamp = setup.replace(tzinfo=None)
        every = round(1 / emails) if emails else 0
        for batch in subjects.to_batches(200_000):
            rows = batch.to_pylist()
            conn.execute(
                t.subjects.insert(),
                [
                    {
                        "id": r["subject_id"],
                        "kind": r["kind"],
                        "name": r["name"],
                        "legal_representative": r["legal_representative"],
                        "division": r["division"],
                        "registered_at": stamp,
                    }
                    for r in rows
                ],
            )
            if every:
                addressed = rows[::every]
                conn.execute(
                    t.contacts.insert(),
                    [
                        {
                            "subject_id": r["subject_id"],
                            "email": f"{r['subject_id'].lower()}@example.invalid",
                            "language": "zh_Hans",
                            "updated_at": stamp,
                        }
                        for r in addressed
                    ],
                )
    return store


def _import_all(store: Any, work: Path, size: float, workers: int = 1) -> dict[str, Any]:
    """Every source's file, one import (one transaction) each: one after another, or `workers` at a
    time, largest files first (PostgreSQL imports of different sources write side by side)."""
    from concurrent.futures import ThreadPoolExecutor

    from xinyong.rules.clock import FixedClock
    from xinyong.security.access import Principal, Role
    from xinyong.service import Service

    now = dt.datetime(2026, 6, 1, 1, tzinfo=dt.UTC)
    # Through the service, as `xinyong records import` runs it: authorised, audited.
    service = Service(store, FixedClock(now), cache_answers=False)
    operator = Principal(Role.ADMIN, "bench", channel="cli")
    paths = sorted((folder(work, size) / "synth").glob("records-*.parquet"))
    if workers > 1:  # the two largest files (transport, civil affairs) side by side
        paths.sort(key=lambda path: -path.stat().st_size)

    def one(path: Path) -> int:
        source = path.name[len("records-") : -len(".parquet")]
        return service.records.import_path(operator, path, source, bulk=True).imported

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        records = sum(pool.map(one, paths))
    seconds = time.perf_counter() - started
    # This process's CPU (SQLite runs in it): steadier than the wall clock on a shared machine.
    cpu_seconds = time.process_time() - cpu
    with store.read() as conn:
        effects = conn.exec_driver_sql("SELECT count(*) FROM effects").scalar()
        emails = conn.exec_driver_sql("SELECT count(*) FROM outbox").scalar()
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "records": records,
        "effects": int(effects or 0),
        "emails": int(emails or 0),
        "records_per_s": round(records / seconds),
    }


def step_import_sqlite(work: Path, size: float, emails: float = 0.0) -> dict[str, Any]:
    """Into a new SQLite store: store.db, which the latency step then uses, or (with e-mail
    addresses) a store of its own, removed afterwards."""
    from xinyong.storage.store import Store

    db = folder(work, size) / ("store-emails.db" if emails else "store.db")
    files = Store(f"sqlite:///{db}").database_files()  # the audit log's file too
    for file in files:
        file.unlink(missing_ok=True)
    store = _prepare_store(f"sqlite:///{db}", work, size, emails)
    result = _import_all(store, work, size)
    store.dispose()
    if emails:
        for file in files:
            file.unlink(missing_ok=True)
    return result


def step_import_postgres(work: Path, size: float, workers: int = 1, emails: float = 0.0) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    import pgcluster
    from pgcluster import ThrowawayCluster

    # The test cluster is tuned for many tiny databases; a bulk load wants room for its indexes.
    pgcluster.SERVER_SETTINGS.update(shared_buffers="2GB", max_wal_size="8GB", maintenance_work_mem="512MB")

    with ThrowawayCluster() as cluster:
        store = _prepare_store(cluster.url, work, size, emails)
        server = _server_cpu(cluster.data_dir)
        result = _import_all(store, work, size, workers)
        # The server's single backend is the import's bottleneck: its CPU, beside this process's.
        result["server_cpu_seconds"] = round(_server_cpu(cluster.data_dir) - server, 2)
        store.dispose()
    result["note"] = (
        "throwaway cluster (tests/pgcluster.py): fsync, synchronous_commit and full_page_writes off, "
        "shared_buffers 2GB, max_wal_size 8GB"
    )
    return result


def _server_cpu(data_dir: Path) -> float:
    """CPU seconds of a local PostgreSQL server so far: the postmaster's own and its reaped
    children's, and those of its running children (backends, writers, autovacuum), from /proc."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(entry.name) == postmaster:
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def step_latency(work: Path, size: float, samples: int = 1000) -> dict[str, Any]:
    """A new record → the subject's serving state updated: row-wise import of one record (with its
    effects), then the subject's state on the online path written to serving_state.

    The store is set up as the API server sets it up, since that is where records arrive one at a
    time: its WAL checkpointed by a thread of its own. With SQLite's default (the commit that
    crosses 1,000 WAL pages checkpoints into the 5 GB file and syncs it) p99 was 42–44 ms, with the
    thread 7.7–7.9 ms, at a p50 of 4.4 ms either way (1,000 samples each, two runs). Document
    references are new on every run, so a run on a store an earlier run used imports as much.
    """
    import random

    from xinyong.derived import serving
    from xinyong.due_process.after_append import AFTER_APPEND
    from xinyong.ledger import imports
    from xinyong.storage.store import Store

    store = Store(f"sqlite:///{folder(work, size) / 'store.db'}")
    store.checkpoint_in_background()
    run = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    with store.read() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM subjects WHERE kind = 'person' LIMIT 200000")]
    rng = random.Random(6)
    timings = []
    base = dt.datetime(2026, 6, 2, 1, tzinfo=dt.UTC)
    for i in range(samples):
        subject = rng.choice(ids)
        now = base + dt.timedelta(seconds=i)
        body = f"subject_id,behaviour,occurred_on,document_ref\n{subject},TRAFFIC.MINOR,2026-05-30,BENCH-{run}-{i}\n"
        started = time.perf_counter()
        with store.write() as conn:
            imports.import_records(
                conn, "one.csv", body.encode(), source="transport", now=now, actor="bench", after=AFTER_APPEND
            )
            serving.refresh_subject(conn, subject, AS_OF, now)
        timings.append((time.perf_counter() - started) * 1000)
    store.dispose()
    timings.sort()
    return {
        "samples": samples,
        "p50_ms": round(timings[len(timings) // 2], 2),
        "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
        "max_ms": round(timings[-1], 2),
    }


def step_checks_during_import(work: Path, size: float, backend: str) -> dict[str, Any]:
    """Cold checks at 64 connections while a bulk import runs (`benchmarks/under_import.py`)."""
    from benchmarks import under_import

    return under_import.step(work, size, backend)


def step_checks_cold(work: Path, size: float, backend: str) -> dict[str, Any]:
    """Cold single checks and batch checks on the import size's store (`benchmarks/cold_checks.py`)."""
    from benchmarks import cold_checks

    return cold_checks.step(work, size, backend)


COLD_CHECK_STEPS = {"checks-cold-sqlite": "sqlite", "checks-cold-postgres": "postgresql"}

# Checks during an import: the size whose records (5× its subjects) are imported meanwhile.
UNDER_IMPORT_SIZE = 0.4
UNDER_IMPORT_STEPS = {"checks-during-import-sqlite": "sqlite", "checks-during-import-postgres": "postgresql"}

# The share of subjects with an e-mail address in the "-emails" import steps.
EMAIL_SHARE = 0.5
IMPORT_STEPS = (
    "import-sqlite",
    "import-postgres",
    "import-postgres-2",
    "import-sqlite-emails",
    "import-postgres-emails",
)
STEPS = {
    "synth": step_synth,
    "inputs": step_inputs,
    "duckdb": step_duckdb,
    "bare": step_bare,
    "bare-sum": step_bare_sum,
    "pandas": step_pandas,
    "spark": step_spark,
    "import-sqlite": step_import_sqlite,
    "import-postgres": step_import_postgres,
    "import-postgres-2": functools.partial(step_import_postgres, workers=2),
    "import-sqlite-emails": functools.partial(step_import_sqlite, emails=EMAIL_SHARE),
    "import-postgres-emails": functools.partial(step_import_postgres, emails=EMAIL_SHARE),
    "latency": step_latency,
    "checks-during-import-sqlite": functools.partial(step_checks_during_import, backend="sqlite"),
    "checks-during-import-postgres": functools.partial(step_checks_during_import, backend="postgresql"),
    "checks-cold-sqlite": functools.partial(step_checks_cold, backend="sqlite"),
    "checks-cold-postgres": functools.partial(step_checks_cold, backend="postgresql"),
}


# --- the report -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def render(run: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "## Scale: batch state, bulk import, online updates (issue 6)",
        "",
        f"- date: {run['date']}",
        f"- machine: {run['machine']['cpu']}, {run['machine']['cores']} cores, "
        f"{run['machine']['memory_gib']} GiB RAM, {run['machine']['os']}, Python {run['machine']['python']}",
        f"- command: `{run['command']}`",
        "- data: `xinyong synth` (90% persons, 10% organisations, 5 records per subject, 3 years), the three "
        "shipped schemes; effects derived as after monthly imports; 85% of persons consent to city-points; "
        f"state on {AS_OF} as known at {KNOWN.isoformat()}.",
        "- every figure below was measured by the command(s) above, on this machine, one step per process "
        "(a later `--merge` invocation replaces the steps it ran); nothing is projected. Peak memory is the "
        "resident set of the step's process and all its children (Spark's JVM included), sampled every 0.2 s.",
        "",
        "### Batch state (all three schemes, every subject)",
        "",
        "| subjects | records | effects | DuckDB batch | bare query, every subject | bare query, sum only | pandas "
        "| Spark local[2] | batch / bare | batch / sum only | pandas / batch |",
        "| ---: | ---: | ---: | --- | --- | --- | --- | --- | ---: | ---: | ---: |",
    ]

    def cell(result: dict[str, Any] | None) -> str:
        if not result:
            return "not run"
        if result.get("reused"):
            return "reused from an earlier run (not timed)"
        if "error" in result:
            return f"failed: {result['error']} (peak {result.get('peak_gib')} GiB)"
        runs = f" (runs: {', '.join(map(str, result['runs']))} s)" if len(result.get("runs", [])) > 1 else ""
        return f"{result['seconds']} s{runs}, {result['peak_gib']} GiB"

    for size in run["sizes"]:
        r = run["results"].get(f"{size:g}", {})
        duck, bare, pandas, spark = r.get("duckdb"), r.get("bare"), r.get("pandas"), r.get("spark")
        floor = r.get("bare-sum")
        ratio, to_floor, speed = _ratio(duck, bare), _ratio(duck, floor), _ratio(pandas, duck, "{:.1f}×")
        effects = r.get("inputs", {}).get("effects", r.get("effects", "—"))
        shown = f"{effects:,}" if isinstance(effects, int) else "—"
        lines.append(
            f"| {size:g} M | {5 * size:g} M | {shown} | {cell(duck)} | {cell(bare)} | {cell(floor)} | "
            f"{cell(pandas)} | {cell(spark)} | {ratio} | {to_floor} | {speed} |"
        )
    lines += ["", *targets(run)]
    lines += [
        "",
        "The bare query is the practical limit of the batch's job: per scheme, the score (initial points plus "
        "the sum of active effects' points) and grade of every subject the scheme applies to, over the same "
        "Parquet files, without caps, clamping, consent, lists or measures; the batch computes all of those. "
        "Beside it, the sum alone (only subjects that have active effects, no row for the others) is a floor no "
        "batch that answers for every subject can reach; runs before 2026-11-22 16:00 compared the batch with "
        "that floor only. Both bare queries run on the batch engine's DuckDB connection (the same settings, e.g. "
        "DuckDB's partitioned_execution optimiser off) and write Parquet the same way. Spark's time includes "
        "starting its session (JVM) and writing its output folder.",
        "",
        "### Synthetic data",
        "",
        "| subjects | records | synth | effects derivation (DuckDB) |",
        "| ---: | ---: | --- | --- |",
    ]
    for size in run["sizes"]:
        r = run["results"].get(f"{size:g}", {})
        lines.append(f"| {size:g} M | {5 * size:g} M | {cell(r.get('synth'))} | {cell(r.get('inputs'))} |")
    lines += [
        "",
        "### Bulk import (records with their effects and notices, into the store, in one transaction per file)",
        "",
        "Each notice also queues an e-mail (an outbox row) when its subject has an address. The synthetic "
        f"subjects have none, except in the rows marked so, where one in {round(1 / EMAIL_SHARE)} has one.",
        "",
    ]
    lines += [
        "| store | subjects | records | effects | e-mails queued | time | records/s | peak |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    addressed = f"one subject in {round(1 / EMAIL_SHARE)} with an e-mail address"
    for key, label in (
        ("import-sqlite", "SQLite (WAL)"),
        ("import-postgres", "PostgreSQL 15 (COPY)"),
        ("import-postgres-2", "PostgreSQL 15 (COPY), two imports at a time"),
        ("import-sqlite-emails", f"SQLite (WAL), {addressed}"),
        ("import-postgres-emails", f"PostgreSQL 15 (COPY), {addressed}"),
    ):
        result = run["results"].get("import", {}).get(key)
        if not result:
            lines.append(f"| {label} | — | — | — | — | not run | — | — |")
        elif "error" in result:
            lines.append(f"| {label} | — | — | — | — | failed: {result['error']} | — | — |")
        else:
            emails = f"{result['emails']:,}" if "emails" in result else "—"
            lines.append(
                f"| {label} | {run['import_size']:g} M | {result['records']:,} | {result['effects']:,} | {emails} | "
                f"{result['seconds']} s | {result['records_per_s']:,} | {result['peak_gib']} GiB |"
            )
    note = run["results"].get("import", {}).get("import-postgres", {}).get("note")
    if note:
        lines += ["", f"PostgreSQL: {note}."]
    latency = run["results"].get("latency")
    lines += ["", "### Online update latency", ""]
    if latency and "error" not in latency:
        lines += [
            f"A new record → the subject's serving state updated (row-wise import of one record with its effects, "
            f"then the subject's state under every scheme recomputed on the online path and written to "
            f"serving_state), on the SQLite store of the import benchmark ({run['import_size']:g} M subjects), "
            "its WAL checkpointed by a thread of its own as in the API server: "
            f"{latency['samples']} samples, p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, "
            f"max {latency['max_ms']} ms.",
        ]
    else:
        lines.append(f"not run{': ' + str(latency.get('error')) if latency else ''}")
    from benchmarks import cold_checks, under_import

    if run["results"].get("checks-cold"):
        lines += ["", *cold_checks.render(run["results"]["checks-cold"])]
    under = run["results"].get("under-import", {})
    lines += ["", *under_import.render(under, run.get("under_import_size", UNDER_IMPORT_SIZE))]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def _ratio(slow: dict[str, Any] | None, fast: dict[str, Any] | None, form: str = "{:.2f}×") -> str:
    if not slow or not fast or "error" in slow or "error" in fast or "seconds" not in slow or "seconds" not in fast:
        return "—"
    return form.format(slow["seconds"] / fast["seconds"])


def targets(run: dict[str, Any]) -> list[str]:
    """Issue 6's targets against this run's figures, size by size, as measured."""
    out = []
    loads = [
        r["load"]
        for size in run["results"].values()
        for r in (size.values() if isinstance(size, dict) else [])
        if isinstance(r, dict) and "load" in r
    ]
    for size in run["sizes"]:
        r = run["results"].get(f"{size:g}", {})
        duck, bare, pandas = r.get("duckdb"), r.get("bare"), r.get("pandas")
        if not duck or "error" in duck or not bare or "error" in bare:
            continue
        ratio = duck["seconds"] / bare["seconds"]
        text = (
            f"- {size:g} M subjects: batch / bare (every subject) = {ratio:.2f}× "
            f"(target ≤ 2×: {'met' if ratio <= 2 else 'not met'})"
        )
        floor = r.get("bare-sum")
        if floor and "error" not in floor and "seconds" in floor:
            text += f"; batch / sum only = {duck['seconds'] / floor['seconds']:.2f}×"
        if pandas and "error" not in pandas:
            speed = pandas["seconds"] / duck["seconds"]
            text += f"; pandas / batch = {speed:.1f}× (target ≥ 3×: {'met' if speed >= 3 else 'not met'})"
        text += (
            f"; batch peak {duck['peak_gib']} GiB (target ≤ 8 GiB: {'met' if duck['peak_gib'] <= 8 else 'not met'})."
        )
        out.append(text)
    if loads:
        out.append(
            f"- The 1-minute load average on the machine's 2 cores was {min(loads)}–{max(loads)} as the steps "
            f"ended (the benchmark's own threads count: above about 2, other work shared the machine), so single "
            f"timings vary; the DuckDB batch and the bare queries are each run {REPEAT} times and the fastest run "
            f"is shown."
        )
    return out


def write_report(run: dict[str, Any]) -> None:
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n\n"
    section = render(run)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    REPORT.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> None:
    if argv[:1] == ["step"]:
        name, work, size = argv[1], Path(argv[2]), float(argv[3])
        print(json.dumps(STEPS[name](work, size)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,10", help="Million subjects per run (records are 5×).")
    parser.add_argument("--pandas-sizes", default=None, help="Sizes for pandas (default: all).")
    parser.add_argument("--spark-sizes", default=None, help="Sizes for Spark (default: all).")
    parser.add_argument("--import-size", type=float, default=1.0, help="Size whose files are imported (default 1).")
    parser.add_argument("--skip", default="", help="Comma-separated steps to skip (e.g. import-postgres,latency).")
    parser.add_argument("--work", default="/tmp/xinyong-bench", help="Scratch folder (several GiB at 10 M).")
    parser.add_argument(
        "--reuse", action="store_true", help="Keep synth and inputs files already in --work (not timed then)."
    )
    parser.add_argument(
        "--merge", action="store_true", help="Start from the newest results file and replace only the steps run."
    )
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds before a step is given up.")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",") if s]
    pandas_sizes = [float(s) for s in (args.pandas_sizes or args.sizes).split(",") if s]
    spark_sizes = [float(s) for s in (args.spark_sizes or args.sizes).split(",") if s]
    skip = set(args.skip.split(",")) - {""}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "bash run.sh bench " + " ".join(argv) if argv else "bash run.sh bench",
        "sizes": sizes,
        "import_size": args.import_size,
        "results": {},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    earlier = sorted(RESULTS.glob("scale-*.json"))
    if args.merge and earlier:
        previous = json.loads(earlier[-1].read_text(encoding="utf-8"))
        run["results"] = previous["results"]
        run["sizes"] = sorted(set(previous["sizes"]) | set(sizes))
        run["command"] = previous["command"] + "; then " + run["command"]
        run["date"] = previous["date"] + " to " + run["date"]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M")
    out = RESULTS / f"scale-{stamp}.json"

    def save() -> None:
        out.write_text(json.dumps(run, indent=2), encoding="utf-8")
        write_report(run)

    def do(size: float, name: str) -> dict[str, Any]:
        print(f"[{dt.datetime.now():%H:%M:%S}] {name} at {size:g} M ...", file=sys.stderr, flush=True)
        result = measure([name, str(work), str(size)], timeout=args.timeout)
        print(f"    {result}", file=sys.stderr, flush=True)
        return result

    importing = not set(IMPORT_STEPS) <= skip
    deferred: list[float] = []
    for size in sorted(set(sizes) | ({args.import_size} if importing else set())):
        key = f"{size:g}"
        slot: dict[str, Any] = run["results"].setdefault(key, {})
        for name in ("synth", "inputs"):
            done_already = (
                folder(work, size) / ("synth" if name == "synth" else "inputs") / "subjects.parquet"
            ).exists()
            measured = isinstance(slot.get(name), dict) and "seconds" in slot[name]
            if args.reuse and done_already and measured:
                continue  # merged from an earlier run that measured it
            if args.reuse and done_already:
                slot[name] = {"reused": True}
                if name == "inputs":
                    import pyarrow.parquet as pq

                    effects_file = folder(work, size) / "inputs" / "effects.parquet"
                    slot[name]["effects"] = pq.ParquetFile(effects_file).metadata.num_rows
            elif name not in skip:
                slot[name] = do(size, name)
                save()
        if size not in sizes:
            continue
        for name in ("duckdb", "bare", "bare-sum", "pandas", "spark"):
            if name in skip or (name == "pandas" and size not in pandas_sizes):
                continue
            if name == "spark" and size not in spark_sizes:
                continue
            if name == "spark":
                deferred.append(size)  # the slowest steps go last, after everything else is saved
                continue
            slot[name] = do(size, name)
            save()
    imports: dict[str, Any] = run["results"].setdefault("import", {})
    for name in IMPORT_STEPS:
        if name not in skip:
            imports[name] = do(args.import_size, name)
            save()
    if "latency" not in skip:  # on the import step's store, of this run or an earlier one
        run["results"]["latency"] = do(args.import_size, "latency")
    save()
    cold: dict[str, Any] = run["results"].setdefault("checks-cold", {})
    for name, backend in COLD_CHECK_STEPS.items():
        if name not in skip:  # on the import step's store (SQLite) or its files (PostgreSQL)
            cold[backend] = do(args.import_size, name)
            save()
    under: dict[str, Any] = run["results"].setdefault("under-import", {})
    for name, backend in UNDER_IMPORT_STEPS.items():
        if name in skip:
            continue
        if not (folder(work, UNDER_IMPORT_SIZE) / "synth" / "subjects.parquet").exists():
            run["results"].setdefault(f"{UNDER_IMPORT_SIZE:g}", {})["synth"] = do(UNDER_IMPORT_SIZE, "synth")
        run["under_import_size"] = UNDER_IMPORT_SIZE
        under[backend] = do(UNDER_IMPORT_SIZE, name)
        save()
    for size in deferred:
        run["results"][f"{size:g}"]["spark"] = do(size, "spark")
        save()
    print(f"report: {REPORT}; raw results: {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
