"""Start-up of the command line (issue 15): whole commands timed as processes, with the bytecode
compiled and without, and where `xinyong check` spends its start-up.

    .venv/bin/python benchmarks/startup.py [--runs 10] [--no-report] [--src DIR]

`--src DIR` runs a copy of the sources (DIR/xinyong, first on PYTHONPATH) instead of src/, to
measure a change before making it, e.g. `cp -r src /tmp/lazy`, edit, `--src /tmp/lazy --no-report`.

What it does, all on this machine:
1. builds a small store in a temporary folder (`xinyong demo --no-serve --persons 200
   --organisations 20`: the three shipped schemes, SQLite) and takes a subject from it;
2. compiles the bytecode of src/xinyong and of the venv's site-packages in place (`python -m
   compileall`), as run.sh's setup does;
3. times `python -c pass` (the floor: the interpreter alone), `xinyong --help`, `xinyong check
   SUBJECT court-defaulters/no-flights --json` and `xinyong score SUBJECT --scheme city-points
   --json`, each as a new process (`time.perf_counter` around `subprocess.run`), in two modes:
   - compiled: the bytecode of step 2;
   - not compiled: Python looks for bytecode in a cache folder of its own (PYTHONPYCACHEPREFIX)
     that holds only the standard library's, so xinyong and every dependency are compiled from
     source on every start, as in a venv that uv filled without --compile-bytecode when Python may
     not write its cache (PYTHONDONTWRITEBYTECODE, a read-only install);
   one warm-up round, then --runs rounds; each round runs every command in both modes in turn, so
   the load of a shared machine falls on all of them alike; min, median and max of each;
4. runs `xinyong check` under `python -X importtime` (compiled, --importtime-runs times) and lists
   the packages xinyong's modules import that cost the most, each with the chain of xinyong
   modules that first pulls it in and the import line;
5. prints the tables and writes them into the "Start-up (issue 15)" section of
   benchmarks/REPORT.md (other sections are left alone).

PYTHONDONTWRITEBYTECODE=1 throughout, so the runs change no cache. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"  # --src changes it
REPORT = ROOT / "benchmarks" / "REPORT.md"
BEGIN, END = "<!-- startup:begin -->", "<!-- startup:end -->"
HEADING = "## Start-up (issue 15)"
PERSONS, ORGANISATIONS = 200, 20
MEASURE = "court-defaulters/no-flights"
ENTRY = "xinyong.interfaces.cli"  # the console script's module
SCHEME = "city-points"
# Issue 15's targets, on a quiet machine.
TARGETS = {"xinyong --help": 0.3, "xinyong check": 0.6}
# Packages listed in the import table: those costing at least this much (ms, -X importtime).
SHOWN_MS = 5.0


# --- set-up ------------------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without settings of xinyong or a pycache prefix, bytecode never written,
    and the sources measured first on the path."""
    drop = ("XINYONG_", "PYTHONPYCACHEPREFIX", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(SRC)}
    return env | extra


def build_store(xinyong: list[str], work: Path, env: dict[str, str] | None = None) -> tuple[str, str]:
    """A small demo store in `work`, made by the command line `xinyong`: (its URL, a subject of it)."""
    args = [*xinyong, "demo", "--no-serve", "--persons", str(PERSONS), "--organisations", str(ORGANISATIONS)]
    done = subprocess.run(
        [*args, "--json"], cwd=work, env=env or clean_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"xinyong demo failed:\n{done.stderr}")
    summary = json.loads(done.stdout)
    return f"sqlite:///{work / 'xinyong-demo.db'}", summary["examples"][0]["subject"]


def compile_in_place(python: Path) -> list[str]:
    """Compile src/xinyong and the venv's site-packages where Python looks for their bytecode."""
    paths = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    targets = [str(SRC / "xinyong"), *paths]
    # A few files of some packages do not compile (templates, Python 2 examples): compileall says
    # so and exits 1; Python never imports them.
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-j", "0", *targets],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        check=False,
    )
    return targets


def stdlib_only_cache(prefix: Path) -> int:
    """A PYTHONPYCACHEPREFIX folder with the standard library's own bytecode and nothing else.

    With a prefix Python reads bytecode only from there (PREFIX/<source folder>/<name>.<tag>.pyc),
    for the standard library too; copying its files keeps the interpreter's own start as it is
    and leaves xinyong and its dependencies to be compiled from source."""
    stdlib = Path(sysconfig.get_path("stdlib"))
    suffix = f".{sys.implementation.cache_tag}.pyc"
    copied = 0
    for pyc in stdlib.rglob(f"__pycache__/*{suffix}"):
        if "site-packages" in pyc.parts or ".opt-" in pyc.name:
            continue
        target = prefix / pyc.parent.parent.relative_to("/") / pyc.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(pyc, target)
        copied += 1
    return copied


# --- timing ------------------------------------------------------------------------------------


@dataclass
class Series:
    label: str
    mode: str
    shown: str
    args: list[str]
    env: dict[str, str]
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def run_once(self) -> tuple[float, float]:
        """Wall time and CPU time (user + system) of one run. The CPU time moves less when other
        work shares the machine."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(self.args, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.exit(f"{self.label} ({self.mode}) exited {done.returncode}:\n{done.stderr.decode()}")
        return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_all(series: list[Series], runs: int, warmup: int) -> None:
    for _ in range(warmup):
        for one in series:
            one.run_once()
    for _ in range(runs):
        for one in series:
            wall, cpu = one.run_once()
            one.seconds.append(wall)
            one.cpu.append(cpu)


# --- where the time goes -----------------------------------------------------------------------


@dataclass
class Node:
    name: str
    self_us: int
    cumulative_us: int
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None


LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def parse_importtime(text: str) -> list[Node]:
    """The import tree `-X importtime` prints (children before their parent, indented deeper)."""
    pending: list[tuple[int, Node]] = []
    for line in text.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        depth = len(match.group(3)) // 2
        node = Node(match.group(4), int(match.group(1)), int(match.group(2)))
        while pending and pending[-1][0] > depth:
            _, child = pending.pop()
            child.parent = node
            node.children.insert(0, child)
        pending.append((depth, node))
    return [node for _, node in pending]


def walk(nodes: list[Node]) -> list[Node]:
    out: list[Node] = []
    for node in nodes:
        out.append(node)
        out.extend(walk(node.children))
    return out


def top(name: str) -> str:
    return name.split(".")[0]


def import_line(module: str, package: str) -> str:
    """Where `module` (of xinyong) imports `package`: path:line and the line, or '' if not found."""
    base = SRC / module.replace(".", "/")
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not path.exists():
        return ""
    pattern = re.compile(rf"^\s*(from\s+{re.escape(package)}(\.\S+)?\s+import\b|import\s+{re.escape(package)}\b)")
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if pattern.match(text):
            return f"`src/{path.relative_to(SRC).as_posix()}:{number}` `{text.strip()}`"
    return ""


@dataclass
class Cost:
    """A package imported straight from a module of xinyong (or, importer "", from a function as
    it runs): its cost in each run (ms, with what it brings along), the other packages it brings
    along, and the xinyong modules above it."""

    package: str
    importer: str
    chain: list[str]
    lazy: bool = False  # the chain's first module was imported by a function, as the command ran
    ms: list[float] = field(default_factory=list)
    nested: dict[str, list[float]] = field(default_factory=dict)


def import_costs(args: list[str], env: dict[str, str], runs: int) -> tuple[list[Cost], list[float], list[float]]:
    """Packages imported straight from xinyong's modules while `args` runs, costliest first (median
    of `runs` runs under -X importtime); also all imports' time and xinyong's own modules' time."""
    costs: dict[tuple[str, str], Cost] = {}
    totals: list[float] = []
    own: list[float] = []
    for _ in range(runs):
        done = subprocess.run(
            [args[0], "-X", "importtime", *args[1:]], env=env, capture_output=True, text=True, check=False
        )
        roots = parse_importtime(done.stderr)
        nodes = walk(roots)
        # Trees that start after the command line's own module were imported by a function, lazily.
        entry = next((i for i, root in enumerate(roots) if root.name == ENTRY), len(roots))
        lazy = {id(root) for root in roots[entry + 1 :]}
        totals.append(sum(node.cumulative_us for node in roots) / 1000)
        own.append(sum(node.self_us for node in nodes if top(node.name) == "xinyong") / 1000)
        # `import pyarrow as pa` and `import pyarrow.compute as pc` in one module are one cost.
        this_run: dict[tuple[str, str], float] = {}
        nested: dict[tuple[str, str], dict[str, float]] = {}
        for node in nodes:
            parent = node.parent
            if top(node.name) == "xinyong" or (parent is not None and top(parent.name) != "xinyong"):
                continue
            # Imported by a module of xinyong as it loads, or (no parent) by a function as it runs.
            key = (top(node.name), parent.name) if parent is not None else (node.name, "")
            if key not in costs:
                above = [node, *ancestors(node)]
                chain = [up.name for up in reversed(above[1:]) if top(up.name) == "xinyong"]
                costs[key] = Cost(key[0], key[1], chain, lazy=id(above[-1]) in lazy)
            this_run[key] = this_run.get(key, 0.0) + node.cumulative_us / 1000
            for inner in walk(node.children):
                if inner.parent is not None and top(inner.name) not in (top(node.name), top(inner.parent.name)):
                    into = nested.setdefault(key, {})
                    into[top(inner.name)] = into.get(top(inner.name), 0.0) + inner.cumulative_us / 1000
        for key, ms in this_run.items():
            costs[key].ms.append(ms)
            for name, inner_ms in nested.get(key, {}).items():
                costs[key].nested.setdefault(name, []).append(inner_ms)
    return sorted(costs.values(), key=lambda c: -statistics.median(c.ms)), totals, own


def ancestors(node: Node) -> list[Node]:
    out, up = [], node.parent
    while up is not None:
        out.append(up)
        up = up.parent
    return out


# --- the report --------------------------------------------------------------------------------


def render(series: list[Series], costs: list[Cost], totals: list[float], own: list[float], meta: dict[str, str]) -> str:
    baseline = {s.mode: statistics.median(s.seconds) for s in series if s.label == "python -c pass"}
    for one in series:  # code of another revision: against the compiled interpreter
        baseline.setdefault(one.mode, baseline.get("compiled", 0.0))
    lines = [
        BEGIN,
        HEADING,
        "",
        f"- date: {meta['date']}",
        f"- machine: `{meta['uname']}`, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        f"- command: `{meta['command']}`",
        f"- load: 1-minute load average {meta['load_before']} before the runs, {meta['load_after']} after, "
        f"on {os.cpu_count()} CPUs (above about 1, other work shared the machine: compare rows of one run)",
        f"- store: `xinyong demo --no-serve --persons {PERSONS} --organisations {ORGANISATIONS}` (SQLite, the "
        f"three shipped schemes); SUBJECT is a person of it",
        f"- each command is a new process, timed with `time.perf_counter` around `subprocess.run`: one warm-up "
        f"round, then {meta['runs']} rounds, each running every row once in turn. *compiled*: `python -m "
        "compileall` of src/xinyong and of the venv's site-packages, as `bash run.sh` sets up; *not compiled*: "
        "Python reads bytecode from a cache folder of its own (PYTHONPYCACHEPREFIX) holding only the standard "
        "library's, so xinyong and its dependencies are compiled from source at every start (a venv filled "
        "without `--compile-bytecode` where Python may not write its cache: PYTHONDONTWRITEBYTECODE, a "
        "read-only install). PYTHONDONTWRITEBYTECODE=1 in both. CPU: user + system time of the process, "
        "which moves less than the wall time when other work shares the machine.",
        "",
        "| command | bytecode | min s | median s | max s | median − `python -c pass` | CPU s, median |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for one in series:
        median = statistics.median(one.seconds)
        over = "—" if one.label == "python -c pass" else f"{median - baseline[one.mode]:.3f}"
        lines.append(
            f"| `{one.shown}` | {one.mode} | {min(one.seconds):.3f} | {median:.3f} | {max(one.seconds):.3f} | {over} "
            f"| {statistics.median(one.cpu):.3f} |"
        )
    lines.append("")
    for label, limit in TARGETS.items():
        for one in series:
            if one.label == label and one.mode == "compiled":
                median = statistics.median(one.seconds)
                verdict = "met" if median < limit else "not met"
                lines.append(
                    f"- target `{label}` under {limit} s (issue 15): median {median:.3f} s compiled, {verdict}"
                )
    lines += [
        "",
        "### Where `xinyong check` spends its start-up",
        "",
        f"`python -X importtime .venv/bin/xinyong check SUBJECT {MEASURE} --json`, compiled, "
        f"{len(totals)} runs (medians; -X importtime adds its own overhead, so the figures are larger than the "
        f"wall-time difference they explain): all imports {statistics.median(totals):.0f} ms, of which "
        f"xinyong's own modules {statistics.median(own):.0f} ms. Below, each package imported straight from "
        f"a module of xinyong, or by a function as the command runs, costing at least {SHOWN_MS:g} ms, with "
        "what it brings along and the chain of xinyong modules that first pulls it in; a package imported "
        "lazily, or first by another module, moves rather than disappears, so measure again after a change.",
        "",
        "| package | ms (with what it brings) | brings along (ms) | first pulled in by | import line |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for cost in costs:
        ms = statistics.median(cost.ms)
        if ms < SHOWN_MS:
            continue
        nested = sorted(((n, statistics.median(v)) for n, v in cost.nested.items()), key=lambda item: -item[1])
        brings = ", ".join(f"{name} {value:.0f}" for name, value in nested if value >= SHOWN_MS) or "—"
        names = [f"`{name}`" for name in cost.chain]
        if names and cost.lazy:
            names[0] += " (imported by a function)"
        chain = " → ".join(names) or "a function of the package, as it runs"
        lines.append(
            f"| {cost.package} | {ms:.0f} | {brings} | {chain} | {import_line(cost.importer, cost.package) or '—'} |"
        )
    lines += ["", END]
    return "\n".join(lines) + "\n"


def before_series(rev: str, work: Path, python: Path) -> list[Series]:
    """The same commands run by the code of `rev` (compiled, from a worktree in `work`), as
    `python -m MODULE` of its command line (`xinyong.cli` before issue 15 moved it), on a store
    that code made itself (a store's layout changes with the migrations)."""
    tree = work / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True, capture_output=True)
    subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", str(tree / "src" / "xinyong")], check=False)
    module = "xinyong.interfaces.cli" if (tree / "src/xinyong/interfaces/cli").exists() else "xinyong.cli"
    cli = [str(python), "-m", module]
    made = work / "before-store"
    made.mkdir()
    db, subject = build_store(cli, made, {**clean_env(), "PYTHONPATH": str(tree / "src")})
    env = {**clean_env(XINYONG_DB=db), "PYTHONPATH": str(tree / "src")}
    return [
        Series("xinyong --help", f"before ({rev})", "xinyong --help", [*cli, "--help"], env),
        Series(
            "xinyong check",
            f"before ({rev})",
            f"xinyong check SUBJECT {MEASURE} --json",
            [*cli, "check", subject, MEASURE, "--json"],
            env,
        ),
        Series(
            "xinyong score",
            f"before ({rev})",
            f"xinyong score SUBJECT --scheme {SCHEME} --json",
            [*cli, "score", subject, "--scheme", SCHEME, "--json"],
            env,
        ),
    ]


def write_report(section: str) -> None:
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    REPORT.write_text(text, encoding="utf-8")


def main() -> None:
    global SRC
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--importtime-runs", type=int, default=5, help="runs under -X importtime (default 5)")
    parser.add_argument("--no-report", action="store_true", help="print only; leave benchmarks/REPORT.md alone")
    parser.add_argument("--src", type=Path, default=SRC, help="the folder holding xinyong/ to measure (default src)")
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also time the command line of a git revision (checked out beside, compiled, same venv and store): "
        "the same commands, `python -m xinyong.cli` before the layers of issue 15",
    )
    args = parser.parse_args()
    SRC = args.src.resolve()
    if not (SRC / "xinyong" / "__init__.py").exists():
        sys.exit(f"--src: no xinyong package in {SRC}")

    python = Path(sys.executable)
    xinyong = python.parent / "xinyong"
    if not xinyong.exists():
        sys.exit(f"no {xinyong}: run this with the project's venv (.venv/bin/python benchmarks/startup.py)")
    with tempfile.TemporaryDirectory(prefix="xinyong-startup-") as tmp:
        work = Path(tmp)
        print("building the store …", file=sys.stderr)
        db, subject = build_store([str(xinyong)], work)
        print("compiling bytecode in place …", file=sys.stderr)
        compile_in_place(python)
        prefix = work / "pycache-stdlib-only"
        print(f"stdlib-only bytecode cache: {stdlib_only_cache(prefix)} files", file=sys.stderr)

        commands = [
            ("python -c pass", "python -c pass", [str(python), "-c", "pass"]),
            ("xinyong --help", "xinyong --help", [str(xinyong), "--help"]),
            (
                "xinyong check",
                f"xinyong check SUBJECT {MEASURE} --json",
                [str(xinyong), "check", subject, MEASURE, "--json"],
            ),
            (
                "xinyong score",
                f"xinyong score SUBJECT --scheme {SCHEME} --json",
                [str(xinyong), "score", subject, "--scheme", SCHEME, "--json"],
            ),
        ]
        modes = {
            "compiled": clean_env(XINYONG_DB=db),
            "not compiled": clean_env(XINYONG_DB=db, PYTHONPYCACHEPREFIX=str(prefix)),
        }
        series = [
            Series(label, mode, shown, argv, env) for label, shown, argv in commands for mode, env in modes.items()
        ]
        if args.before:
            series += before_series(args.before, work, python)
        load_before = os.getloadavg()[0]
        print(f"timing {len(series)} series × {args.runs} runs …", file=sys.stderr)
        time_all(series, args.runs, args.warmup)
        load_after = os.getloadavg()[0]
        print("import costs of check …", file=sys.stderr)
        check = [str(python), str(xinyong), "check", subject, MEASURE, "--json"]
        costs, totals, own = import_costs(check, modes["compiled"], args.importtime_runs)
    if args.before:  # its worktree was in the temporary folder, now gone
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)

    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=False).stdout.strip()
    meta = {
        "date": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "uname": uname,
        "command": ".venv/bin/python benchmarks/startup.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "load_before": f"{load_before:.1f}",
        "load_after": f"{load_after:.1f}",
        "runs": str(args.runs),
    }
    section = render(series, costs, totals, own, meta)
    print(section)
    if not args.no_report:
        write_report(section)
        print(f"written to {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
