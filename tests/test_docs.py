"""Docs stay in sync with the code: every command of the command line is in docs/cli.md, and every
path, module and dotted name the docs put in backticks exists."""

from __future__ import annotations

import functools
import importlib
import re
from pathlib import Path

import pytest
from typer.main import get_command

from xinyong.interfaces.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def command_names() -> list[str]:
    def walk(command: object, prefix: list[str]) -> list[str]:
        children = getattr(command, "commands", None) or {}
        if not children:
            return [" ".join(prefix)]
        return [name for key, child in children.items() for name in walk(child, [*prefix, key])]

    return walk(get_command(app), [])


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    documented = {
        re.sub(r"\s+", " ", m.group(1)) for m in re.finditer(r"^\| `([a-z][a-z -|\\]*?)(?: [A-Z\[-]|`)", text, re.M)
    }
    expanded = set()
    for entry in documented:
        words = entry.replace("\\|", "|").split(" ")
        variants = [""]
        for word in words:
            variants = [f"{v} {w}".strip() for v in variants for w in word.split("|")]
        expanded.update(variants)
    missing = [name for name in command_names() if name not in expanded]
    assert not missing, f"docs/cli.md does not document: {', '.join(missing)}"
    assert len(command_names()) > 20


# --- every code reference in the docs names something that exists ---------------------------------

ROOT = DOCS.parent
SRC = ROOT / "src" / "xinyong"
DOCUMENTS = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# Folders a doc names that a run makes (run.sh, the browser test): not in a fresh clone.
MADE_BY_RUNNING = {".tools/", ".venv/", "test-artifacts/"}
# The first folder of a path that is a reference even without a file name: the repository's
# folders of code and data, and src/xinyong's (`derived/batch`).
TOP_FOLDERS = {"benchmarks", "docs", "examples", "schemes", "scripts", "src", "tests"}
FOLDERS = TOP_FOLDERS | {p.name for p in SRC.glob("[!_]*/")}
# The first word of a dotted name that is a reference: the package, or one of its modules or
# folders without `xinyong.` (`rules.effects.active_window`, `service.questions.check`).
PACKAGES = {"xinyong"} | {p.stem for p in SRC.glob("[!_]*.py")} | {p.parent.name for p in SRC.glob("*/__init__.py")}
FENCED = re.compile(r"^```.*?^```", re.M | re.S)
SPAN = re.compile(r"`([^`\n]+)`")
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
BARE_MODULE = re.compile(r"[\w-]+\.py")
BRACES = re.compile(r"\{([^{}]*)\}")


def code_words(document: Path) -> list[str]:
    """The words of the document's inline code, outside fenced examples, each cut before a call's
    arguments: `xinyong.interfaces.site.create_app(store)` gives `xinyong.interfaces.site.create_app`."""
    text = FENCED.sub("", document.read_text(encoding="utf-8"))
    words = [word.split("(")[0].strip("\"',;") for span in SPAN.findall(text) for word in span.split()]
    return [word for word in words if word]


def is_path(word: str) -> bool:
    """`src/xinyong/rules/values.py`, `storage/sqlite.py`, `interfaces/cli/`, `derived/batch`,
    `tests/`; not `/v1/records`, `sqlite:///x.db`, `court-defaulters/no-flights` or `--a/--b`."""
    if "/" not in word or word.startswith("/") or ":" in word or "…" in word:
        return False
    parts = word.rstrip("/").split("/")
    return word.endswith("/") or "." in parts[-1].lstrip(".") or parts[0] in FOLDERS


def expand(path: str) -> list[str]:
    """`locale/{zh_Hans,en}/x.po` is two paths."""
    found = BRACES.search(path)
    if found is None:
        return [path]
    head, tail = path[: found.start()], path[found.end() :]
    return [p for choice in found.group(1).split(",") for p in expand(head + choice + tail)]


def path_problem(word: str) -> str | None:
    if word in MADE_BY_RUNNING:
        return None
    missing = [p for p in expand(word) if not (ROOT / p).exists() and not (SRC / p).exists()]
    return f"{missing[0]}: neither in the repository nor in src/xinyong/" if missing else None


def bare_module_problem(word: str) -> str | None:
    found = sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob(word))
    if len(found) == 1:
        return None
    if not found:
        return f"{word}: no such module under src/xinyong/"
    return f"{word}: ambiguous, write its folder: {', '.join(found)}"


@functools.cache
def a_service() -> object:
    """A `Service`, to look up `service.AREA.METHOD` as an interface calls it."""
    from xinyong.service import Service
    from xinyong.storage.store import Store

    return Service(Store("sqlite://"), cache_answers=False)


def resolve(name: str) -> object:
    """What a dotted name means: the longest part of it that imports as a module, then attributes.
    `service.questions.check` is looked up on a `Service` when the modules do not have it."""
    parts = name.split(".")
    if parts[0] != "xinyong":
        parts = ["xinyong", *parts]
    end = len(parts)
    while True:
        try:
            found: object = importlib.import_module(".".join(parts[:end]))
            break
        except ModuleNotFoundError as exc:  # not a module: an attribute, unless a dependency is missing
            if end == 1 or not ".".join(parts).startswith(exc.name or "\0"):
                raise
            end -= 1
    try:
        return functools.reduce(getattr, parts[end:], found)
    except AttributeError:
        if parts[1] != "service":
            raise
        return functools.reduce(getattr, parts[2:], a_service())


def dotted_problem(word: str) -> str | None:
    try:
        resolve(word)
    except (ImportError, AttributeError) as exc:
        return f"{word}: {exc}"
    return None


def reference_problems(document: Path) -> tuple[int, list[str]]:
    """How many code references the document makes, and what is wrong with those that are wrong."""
    checked, problems = 0, set()
    for word in code_words(document):
        if is_path(word):
            problem = path_problem(word)
        elif BARE_MODULE.fullmatch(word):
            problem = bare_module_problem(word)
        elif DOTTED.fullmatch(word) and word.split(".")[0] in PACKAGES:
            problem = dotted_problem(word)
        else:
            continue
        checked += 1
        if problem:
            problems.add(problem)
    return checked, sorted(problems)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_code_references_exist(document: Path) -> None:
    """What a document puts in backticks as code exists: a path from the repository's root or from
    src/xinyong/, a bare `module.py` as exactly one file under src/xinyong/, and `xinyong.x.y` (or
    `x.y` for a module or folder of src/xinyong) as something that imports and has the attribute."""
    checked, problems = reference_problems(document)
    assert checked > 0, f"{document.name}: no code references found; is the matching broken?"
    assert not problems, f"{document.name} names what does not exist:\n" + "\n".join(problems)


def test_the_matching_finds_stale_references(tmp_path: Path) -> None:
    """Names of the old flat layout are caught; text that only looks like code is left alone."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "`access.py`, `service.py`, `api/routes.py`, `xinyong.api.create_app(store)`, `storage.Store`,"
        " `service.questions.ask`; fine: `security/access.py`, `interfaces/api/routes.py`,"
        " `xinyong.interfaces.site.create_app(store)`, `service.questions.check`, `rules/`,"
        " `src/xinyong/locale/{zh_Hans,en}/LC_MESSAGES/xinyong.po`, `GET /v1/checks/{subject}`,"
        " `court-defaulters/no-flights`, `sqlite:///xinyong.db`, `records.read`, `--a/--b`\n"
        "```bash\nxinyong synth --out pop/records.parquet\n```\n",
        encoding="utf-8",
    )
    checked, problems = reference_problems(doc)
    assert checked == 12
    assert [p.split(":")[0] for p in problems] == [
        "access.py",
        "api/routes.py",
        "service.py",
        "service.questions.ask",
        "storage.Store",
        "xinyong.api.create_app",
    ]
