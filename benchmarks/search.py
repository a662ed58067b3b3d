"""The public look-up at national scale (issue 18): the index's build, size and answers over HTTP,
beside the candidates it was chosen from and the linear scan it replaced, in one run.

    .venv/bin/python -m benchmarks.search                       # 1 M organisations, baseline 100,000
    .venv/bin/python -m benchmarks.search --size 10000000

1. Synthetic organisations in the style of real names (`names`): a place, a two- or three-character
   brand from a pool of 170 characters, an industry and a company form (威海鑫源水产有限公司), each
   with a legal representative (surname and one or two given characters); ids are 18-character
   codes. Written into a fresh SQLite store (`subjects`).
2. The index: `xinyong search rebuild` in a child process, its peak resident memory sampled
   (psutil); names/s, and the index's size on disk (the store's growth, WAL checkpointed).
3. Over HTTP: `xinyong serve` with one worker; per class of query (`queries`: 2 characters, 4
   characters, full pinyin, initials, legal representative, code, one mistyped character),
   wrk at 8 connections for `--seconds`, each connection cycling through 2,000 queries of the
   class from its own place (GET /v1/subjects?q=…, as the public); then the classes mixed at 64
   connections. The worker's resident memory afterwards.
4. Side by side, in this process, one query at a time over the same names and queries: the chosen
   index (FTS5 over pairs, syllables and initial pairs), SQLite FTS5's trigram tokenizer (names,
   pinyin, initials and representatives as text; two characters by LIKE, a full scan; shorter
   names first by sorting the matches), and — at `--baseline` names — the linear scan this
   replaced, loaded from git history (commit `OLD_SCAN`).

Targets: p99 ≤ 50 ms for each class at 8 connections, ≥ 300 queries/s of the mix at 64, build ≥
25,000 names/s. The "Search" section of benchmarks/REPORT.md is rewritten from the run's JSON
(benchmarks/results/search-*.json); the machine is shared, so its load average is recorded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.parse
from pathlib import Path
from typing import Any

from benchmarks.bench_checks import ensure_wrk, free_port, parse_wrk, stop, wait_ready
from benchmarks.under_import import THREADS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "benchmarks" / "REPORT.md"
BEGIN, END = "<!-- search:begin -->", "<!-- search:end -->"
OLD_SCAN = "677b1d8"  # the last commit with the in-memory scan (src/xinyong/derived/search.py)
PER_CLASS = 2_000
SEQUENTIAL = 200  # queries per class asked one at a time in process, for the side-by-side
CLASSES = ("2 chars", "4 chars", "full pinyin", "initials", "legal rep", "code", "one typo")

_PLACES_TEXT = """
北京 上海 天津 重庆 长沙 长春 成都 广州 深圳 厦门 福州 南京 苏州 无锡 杭州
宁波 温州 合肥 蚌埠 六安 济南 青岛 烟台 威海 潍坊 临沂 郑州 洛阳 武汉 宜昌
南昌 赣州 西安 兰州 银川 西宁 乌鲁木齐 拉萨 昆明 贵阳 南宁 桂林 海口 三亚
太原 大同 石家庄 保定 唐山 沈阳 大连 哈尔滨 齐齐哈尔 呼和浩特 包头 东莞 佛山
珠海 汕头 台州 丽水 绍兴 嘉兴 湖州 乐山 绵阳 宜宾 朝阳 单县 曲阜 荣成 文登
乳山
"""
PLACES = _PLACES_TEXT.split()
BRAND_CHARS = (
    "华兴盛达通恒泰瑞丰宏鑫源隆昌富安康海润金银天宇辰星光明远航新立德信诚和顺发祥福嘉佳美益利民众"
    "凯旋腾飞龙凤鹏鸿运开泽汇聚博雅正大中东南西北方圆汉唐宋元春秋松柏竹梅兰菊荷云峰山川江河湖洋"
    "晨曦晖耀锦绣宝鼎固坚实业永久长重行乐都藏会调单传朝"
)
_INDUSTRIES_TEXT = """
食品 水产 机械 橡胶制品 化工 纺织 建材 电子科技 信息技术 科技 新能源科技 商贸
物流 建筑工程 房地产开发 旅游开发 酒店管理 汽车销售服务 装饰工程 印刷 医药
农业开发 环保科技 网络科技 文化传媒 教育咨询 投资管理 供应链管理 餐饮管理 物业管理
会计服务 银行
"""
INDUSTRIES = _INDUSTRIES_TEXT.split()
FORMS = ("有限公司",) * 7 + ("有限责任公司", "股份有限公司", "集团有限公司")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁芳娜敏静丽艳娟霞秀玲燕婷雪慧红琳颖倩洁晶"


def names(n: int, seed: int = 18) -> dict[str, list[str]]:
    """`n` organisations: id, name, legal representative, and the parts of the name the queries
    are cut from."""
    rng = random.Random(seed)
    out: dict[str, list[str]] = {k: [] for k in ("id", "name", "rep", "place", "brand", "industry")}
    for i in range(n):
        place = rng.choice(PLACES)
        brand = "".join(rng.choice(BRAND_CHARS) for _ in range(3 if rng.random() < 0.1 else 2))
        industry = rng.choice(INDUSTRIES)
        out["id"].append(f"91{rng.randrange(110000, 660000)}{i:010d}")
        out["name"].append(f"{place}{brand}{industry}{rng.choice(FORMS)}")
        out["rep"].append(rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))))
        out["place"].append(place)
        out["brand"].append(brand)
        out["industry"].append(industry)
    return out


def subjects(url: str, orgs: dict[str, list[str]]) -> None:
    """A migrated store holding the organisations, written straight into the subjects table."""
    from xinyong.storage.store import Store

    store = Store(url)
    store.migrate()
    store.dispose()
    path = url.removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    rows = zip(orgs["id"], orgs["name"], orgs["rep"], strict=True)
    con.executemany(
        "INSERT INTO subjects (id, kind, name, legal_representative, division, registered_at) "
        "VALUES (?, 'organisation', ?, ?, substr(?, 3, 6), '2026-01-01 00:00:00.000000')",
        ((i, name, rep, i) for i, name, rep in rows),
    )
    con.commit()
    con.close()


def queries(orgs: dict[str, list[str]], seed: int = 7) -> dict[str, list[str]]:
    """`PER_CLASS` queries of each class, cut from randomly chosen organisations."""
    from xinyong.derived import search_terms

    rng = random.Random(seed)
    picks = [rng.randrange(len(orgs["id"])) for _ in range(PER_CLASS)]
    made: dict[str, list[str]] = {c: [] for c in CLASSES}
    for i in picks:
        place, brand, industry = orgs["place"][i], orgs["brand"][i], orgs["industry"][i]
        four = (brand + industry)[:4] if rng.random() < 0.5 else (place + brand)[-4:]
        made["2 chars"].append(brand[:2])
        made["4 chars"].append(four)
        made["full pinyin"].append(search_terms.read(brand + industry).full)
        made["initials"].append(search_terms.read(place + brand).initials)
        made["legal rep"].append(orgs["rep"][i])
        made["code"].append(orgs["id"][i])
        wrong = rng.randrange(4)
        made["one typo"].append(four[:wrong] + rng.choice(BRAND_CHARS.replace(four[wrong], "")) + four[wrong + 1 :])
    return made


def _peak_rss(process: subprocess.Popen[str], into: dict[str, float]) -> threading.Thread:
    import psutil

    def sample() -> None:
        peak = 0
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                break
            time.sleep(0.2)
        into["peak_rss_mb"] = round(peak / 2**20, 1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return thread


def _db_bytes(path: str) -> int:
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return os.path.getsize(path)


def build(url: str, env: dict[str, str]) -> dict[str, Any]:
    """`xinyong search rebuild`: its time, peak memory and what it added on disk."""
    path = url.removeprefix("sqlite:///")
    before = _db_bytes(path)
    xinyong = str(Path(sys.executable).with_name("xinyong"))
    process = subprocess.Popen([xinyong, "search", "rebuild", "--json"], env=env, stdout=subprocess.PIPE, text=True)
    memory: dict[str, float] = {}
    sampler = _peak_rss(process, memory)
    out, _ = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError("xinyong search rebuild failed")
    done = json.loads(out)
    size = _db_bytes(path) - before
    return {
        **done,
        **memory,
        "names_per_s": round(done["subjects"] / done["seconds"]),
        "index_mb": round(size / 2**20, 1),
    }


SCRIPT = (
    """
local paths = {{{paths}}}
"""
    + THREADS
    + """init = function(args)
  i = offset * 7919
end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""
)


def _wrk(wrk: str, port: int, script: Path, connections: int, seconds: int) -> dict[str, float]:
    cmd = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script)]
    done = subprocess.run([*cmd, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True)
    return {k: round(v, 2) for k, v in parse_wrk(done.stdout).items()}


def _script(folder: Path, name: str, asked: list[str]) -> Path:
    paths = ", ".join(f'"/v1/subjects?q={urllib.parse.quote(q)}&limit=20"' for q in asked)
    path = folder / f"{name.replace(' ', '-')}.lua"
    path.write_text(SCRIPT.format(paths=paths), encoding="utf-8")
    return path


def over_http(url: str, env: dict[str, str], asked: dict[str, list[str]], seconds: int) -> dict[str, Any]:
    """One worker of `xinyong serve`: each class at 8 connections, the mix at 64."""
    import httpx
    import psutil

    wrk = ensure_wrk()
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="xinyong-search-wrk-"))
    server_env = {**env, "XINYONG_PORT": str(port), "XINYONG_WORKERS": "1"}
    xinyong = str(Path(sys.executable).with_name("xinyong"))
    server = subprocess.Popen([xinyong, "serve"], env=server_env, start_new_session=True)
    results: dict[str, Any] = {"classes": {}}
    try:
        wait_ready(port, "/readyz", {}, timeout=120)
        time.sleep(3)  # the worker's warm-up thread (pinyin tables, dashboard counts)
        results["sample"] = {
            c: httpx.get(f"http://127.0.0.1:{port}/v1/subjects", params={"q": asked[c][0], "limit": 3}).json()
            for c in CLASSES
        }
        for c in CLASSES:
            results["classes"][c] = _wrk(wrk, port, _script(folder, c, asked[c]), 8, seconds)
        mixed = [q for c in CLASSES for q in asked[c][: PER_CLASS // len(CLASSES)]]
        random.Random(3).shuffle(mixed)
        results["mix"] = _wrk(wrk, port, _script(folder, "mix", mixed), 64, seconds)
        tree = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
        results["server_rss_mb"] = round(sum(p.memory_info().rss for p in tree) / 2**20, 1)
    finally:
        stop(server)  # type: ignore[arg-type]
    return results


def _timed(ask: Any, asked: list[str]) -> dict[str, float]:
    took = []
    for q in asked[:SEQUENTIAL]:
        started = time.perf_counter()
        ask(q)
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return {"p50": round(statistics.median(took), 2), "p99": round(took[int(len(took) * 0.99) - 1], 2)}


def chosen_in_process(url: str, asked: dict[str, list[str]]) -> dict[str, Any]:
    from xinyong.derived import search
    from xinyong.storage.store import Store

    store = Store(url)
    try:
        with store.read() as conn:
            return {
                c: _timed(lambda q: search.search(conn, q, organisations_only=True, limit=20), asked[c])
                for c in CLASSES
            }
    finally:
        store.dispose()


def trigram(orgs: dict[str, list[str]], asked: dict[str, list[str]], folder: Path) -> dict[str, Any]:
    """SQLite FTS5's trigram tokenizer over the same names: build, size, answers one at a time."""
    from xinyong.derived import search_terms

    path = folder / "trigram.db"
    con = sqlite3.connect(path)
    con.execute("CREATE VIRTUAL TABLE t USING fts5(id UNINDEXED, name, pinyin, initials, rep, tokenize='trigram')")
    # SQLite's trigram index answers no pattern under three characters (3.40 returns no rows):
    # two characters are a LIKE over a plain table of the names, every row.
    con.execute("ATTACH ':memory:' AS mem")  # not the index's size
    con.execute("CREATE TABLE mem.plain (id TEXT, name TEXT)")
    started = time.perf_counter()
    rows = []
    for i, name, rep in zip(orgs["id"], orgs["name"], orgs["rep"], strict=True):
        said = search_terms.read(name)
        rows.append((i, name, said.full, said.initials, rep))
        if len(rows) == 50_000:
            con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
            rows = []
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    con.executemany("INSERT INTO mem.plain VALUES (?, ?)", zip(orgs["id"], orgs["name"], strict=True))
    con.commit()
    seconds = time.perf_counter() - started

    def ask(q: str) -> list[Any]:
        if len(q) < 3:
            sql = "SELECT id, name FROM mem.plain WHERE name LIKE ? ORDER BY length(name) LIMIT 20"
            return con.execute(sql, (f"%{q}%",)).fetchall()
        if search_terms.has_han(q):
            where, arg = "t MATCH ?", f'{{name rep}} : "{q}"'
        else:
            where, arg = "t MATCH ?", f'{{pinyin initials id}} : "{q.lower()}"'
        sql = f"SELECT id, name FROM t WHERE {where} ORDER BY length(name) LIMIT 20"
        return con.execute(sql, (arg,)).fetchall()

    # A code is a look-up of the subjects table's key in either design; a typo, nothing trigrams do.
    timed = {c: _timed(ask, asked[c]) for c in CLASSES if c not in ("code", "one typo")}
    found = {c: sum(bool(ask(q)) for q in asked[c][:SEQUENTIAL]) for c in timed}
    con.close()
    return {
        "build_seconds": round(seconds, 1),
        "names_per_s": round(len(orgs["id"]) / seconds),
        "index_mb": round(os.path.getsize(path) / 2**20, 1),
        "classes": timed,
        "found": found,
    }


def old_scan(orgs: dict[str, list[str]], asked: dict[str, list[str]], url: str) -> dict[str, Any]:
    """The linear scan this replaced (commit OLD_SCAN), over the first organisations of the run."""
    from xinyong.storage.store import Store

    source = subprocess.run(
        ["git", "show", f"{OLD_SCAN}:src/xinyong/derived/search.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("old_search")
    sys.modules["old_search"] = module
    exec(compile(source, "old_search.py", "exec"), module.__dict__)
    store = Store(url)
    try:
        with store.read() as conn:
            index = module.SearchIndex.build(conn)
    finally:
        store.dispose()
    n = len(index.entries)
    timed = {c: _timed(lambda q: index.search(q, organisations_only=True, limit=20), asked[c][:20]) for c in CLASSES}
    return {
        "names": n,
        "build_seconds": round(index.build_seconds, 1),
        "names_per_s": round(n / index.build_seconds),
        "classes": timed,
    }


def run(size: int, baseline: int, seconds: int, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    orgs = names(size)
    asked = queries(orgs)
    generated = time.perf_counter() - started
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}",
        "size": size,
        "baseline": baseline,
        "seconds": seconds,
        "distinct_names": len(set(orgs["name"])),
        "generate_seconds": round(generated, 1),
        "load_before": os.getloadavg(),
    }
    small = {k: v[:baseline] for k, v in orgs.items()}
    small_url = f"sqlite:///{work / 'baseline.db'}"
    subjects(small_url, small)
    result["old_scan"] = old_scan(small, queries(small), small_url)
    print("old scan", result["old_scan"], file=sys.stderr, flush=True)
    url = f"sqlite:///{work / 'store.db'}"
    env = {**os.environ, "XINYONG_DB": url, "XINYONG_KEYS": str(work / "keys")}
    subjects(url, orgs)
    result["build"] = build(url, env)
    print("build", result["build"], file=sys.stderr, flush=True)
    result["http"] = over_http(url, env, asked, seconds)
    print("http", result["http"]["classes"], result["http"]["mix"], file=sys.stderr, flush=True)
    result["chosen_in_process"] = chosen_in_process(url, asked)
    result["trigram"] = trigram(orgs, asked, work)
    print("trigram", result["trigram"], file=sys.stderr, flush=True)
    result["load_after"] = os.getloadavg()
    return result


def render(r: dict[str, Any]) -> list[str]:
    """The report's section from one run's JSON."""
    http, tri, old, build_ = r["http"], r["trigram"], r["old_scan"], r["build"]
    size, base = f"{r['size']:,}", f"{r['baseline']:,}"

    def both(m: dict[str, float] | None) -> str:
        return "—" if m is None else f"{m['p50']:g} / {m['p99']:g}"

    def target(ok: bool) -> str:
        return "met" if ok else "**missed**"

    def missing(c: str) -> str:
        found = tri["found"].get(c, SEQUENTIAL)
        return "" if found == SEQUENTIAL else f" (found {found} of {SEQUENTIAL})"

    lines = [
        BEGIN,
        "## Search: the public look-up at national scale (issue 18)",
        "",
        f"`.venv/bin/python -m benchmarks.search --size {r['size']} --baseline {r['baseline']} --seconds "
        f"{r['seconds']}`, {r['date']}; {r['machine']}; load average {r['load_before'][0]:.1f} before, "
        f"{r['load_after'][0]:.1f} after (a shared machine: other engineers' tests ran meanwhile). "
        f"{size} synthetic organisations ({r['distinct_names']:,} distinct names) with legal representatives; "
        f"queries cut from {PER_CLASS:,} of them per class. Over HTTP: `xinyong serve`, one worker, wrk at 8 "
        f"connections per class for {r['seconds']} s, GET /v1/subjects?q=…&limit=20 as the public. In process: "
        f"{SEQUENTIAL} queries per class one at a time (the old scan: 20, at {base} names).",
        "",
        f"| class | chosen: HTTP p50 / p99 ms | HTTP req/s | target p99 ≤ 50 ms | chosen in process p50 / p99 ms "
        f"| FTS5 trigram in process | old scan at {base} |",
        "| --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for c in CLASSES:
        h = http["classes"][c]
        lines.append(
            f"| {c} | {both(h)} | {h['rps']:,.0f} | {target(h['p99'] <= 50 and not h['non2xx'])} "
            f"| {both(r['chosen_in_process'][c])} | {both(tri['classes'].get(c))}{missing(c)} "
            f"| {both(old['classes'][c])} |"
        )
    mix = http["mix"]
    lines += [
        "",
        f"Mix of the classes at 64 connections: **{mix['rps']:,.0f} queries/s**, p50 {mix['p50']:g} ms, p99 "
        f"{mix['p99']:g} ms, {mix['non2xx']:.0f} non-2xx (target ≥ 300/s: {target(mix['rps'] >= 300)}). The "
        f"worker's resident memory afterwards: {http['server_rss_mb']:,} MB.",
        "",
        "| index | build names/s | build s | on disk | peak memory of the build |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| chosen: FTS5 over pairs, syllables, initial pairs (`xinyong search rebuild`) | "
        f"{build_['names_per_s']:,} ({target(build_['names_per_s'] >= 25_000)}) | {build_['seconds']:g} | "
        f"{build_['index_mb']:,} MB | {build_.get('peak_rss_mb', '—')} MB |",
        f"| FTS5 trigram (names, pinyin, initials, representatives as text) | {tri['names_per_s']:,} | "
        f"{tri['build_seconds']:g} | {tri['index_mb']:,} MB | — |",
        f"| old linear scan, in memory, at {base} | {old['names_per_s']:,} | {old['build_seconds']:g} | — | — |",
        "",
        END,
    ]
    return lines


def write_report(lines: list[str]) -> None:
    text = REPORT.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + "\n".join(lines) + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    REPORT.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="organisations in the store")
    parser.add_argument("--baseline", type=int, default=100_000, help="organisations the old scan is measured at")
    parser.add_argument("--seconds", type=int, default=10, help="wrk's time per class")
    parser.add_argument("--work", type=Path, help="a folder for the stores (default: a temporary one)")
    parser.add_argument("--no-report", action="store_true", help="print only; leave benchmarks/REPORT.md alone")
    parser.add_argument("--render", type=Path, help="rewrite the report's section from this results file only")
    args = parser.parse_args(argv)
    if args.render:
        write_report(render(json.loads(args.render.read_text(encoding="utf-8"))))
        return
    with tempfile.TemporaryDirectory(prefix="xinyong-search-", dir=args.work) as work:
        result = run(args.size, args.baseline, args.seconds, Path(work))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"search-{args.size}-{result['date'][:19].replace(':', '')}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print("\n".join(render(result)))
    if not args.no_report:
        write_report(render(result))


if __name__ == "__main__":
    main(sys.argv[1:])
