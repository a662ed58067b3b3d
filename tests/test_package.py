"""xinyong is a real package: the wheel hatchling builds holds every module and data file, and a
core install of it (no extras) into a fresh venv runs the demo from an empty folder.

The wheel is built by uv (`uv build --wheel`) and installed by uv into a venv this Python makes
(`sys.executable -m venv`), with the core dependencies pinned to the lock's versions (`uv export`
as constraints): then a warm uv cache is all it needs. Each uv call is tried `--offline` first and
goes to the package registry only for what the cache lacks (the first run on a machine: about
15 s here, 10 s warm). The extras (spark, pdf, uvicorn) are left out, so the second test also shows
that the demo needs none of them and that each feature that does names the extra to install.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "xinyong"
EXTRAS = {"spark": "pyspark", "pdf": "weasyprint", "uvicorn": "uvicorn"}
PERSONS, ORGANISATIONS = 200, 20
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted({d.metadata['Name'].lower().replace('_', '-') for d in m.distributions()})))"
)


def find_uv() -> str | None:
    """run.sh's uv (.tools/uv-venv/bin/uv), else one on PATH."""
    bootstrapped = ROOT / ".tools" / "uv-venv" / "bin" / "uv"
    return str(bootstrapped) if bootstrapped.is_file() else shutil.which("uv")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no store, setting or venv of this run leaks in."""
    drop = ("XINYONG_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT")
    env = {key: value for key, value in os.environ.items() if not key.startswith(drop)}
    return env | {"UV_PYTHON_DOWNLOADS": "never"} | extra


def run(args: list[str], cwd: Path, env: Mapping[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def run_uv(uv: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`uv ARGS`, from the cache alone if it can, else with the registry; fails the test if neither."""
    env = clean_env()
    done = run([uv, *args, "--offline"], cwd, env)
    if done.returncode != 0:
        done = run([uv, *args], cwd, env)
    assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@dataclass(frozen=True)
class Install:
    venv: Path
    python: Path
    xinyong: Path


def uv_or_skip() -> str:
    uv = find_uv()
    if uv is None:
        pytest.skip("no uv: neither .tools/uv-venv/bin/uv (run `bash run.sh test`) nor uv on PATH")
    return uv


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel hatchling builds from this tree."""
    work = tmp_path_factory.mktemp("dist")
    run_uv(uv_or_skip(), ["build", "--wheel", "--out-dir", str(work), "--python", sys.executable, str(ROOT)], work)
    (built,) = work.glob("xinyong-*.whl")
    return built


@pytest.fixture(scope="module")
def install(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    """The wheel installed without extras into a new venv, its dependencies at the lock's versions."""
    uv = uv_or_skip()
    work = tmp_path_factory.mktemp("install")
    exported = run_uv(
        uv, ["export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--project", str(ROOT)], work
    )
    constraints = work / "constraints.txt"
    constraints.write_text(exported.stdout, encoding="utf-8")
    venv = work / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work, clean_env())
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    run_uv(uv, ["pip", "install", "--python", str(python), "--constraints", str(constraints), str(wheel)], work)
    return Install(venv, python, venv / "bin" / "xinyong")


def test_the_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    (dist_info,) = {name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info")}
    on_disk = {
        "xinyong/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert on_disk - names == set(), "files of src/xinyong missing from the wheel"
    package_files = {name for name in names if not name.startswith(f"{dist_info}/")}
    assert package_files == on_disk, "the wheel holds files that are not in src/xinyong"
    for kind in (".yaml", ".html", ".po", ".mo", ".css", ".js", ".LICENSE", "py.typed", "script.py.mako"):
        assert any(name.endswith(kind) for name in names), kind
    assert {name for name in names if name.startswith("xinyong/demo/schemes/")} == {
        "xinyong/demo/schemes/city-points.yaml",
        "xinyong/demo/schemes/court-defaulters.yaml",
        "xinyong/demo/schemes/suqian-points.yaml",
        "xinyong/demo/schemes/tax-credit.yaml",
    }
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "xinyong = xinyong.interfaces.cli:main" in entry_points


# One test, so that pytest-xdist runs it on one worker: the demo is the slow part.
def test_a_core_install_runs_the_demo_from_an_empty_folder(install: Install, tmp_path: Path) -> None:
    listed = run([str(install.python), "-c", LIST_DISTRIBUTIONS], install.venv, clean_env())
    assert listed.returncode == 0, listed.stderr
    installed = set(json.loads(listed.stdout))
    assert {"xinyong", "duckdb", "granian", "uvloop"} <= installed
    assert installed.isdisjoint({"pyspark", "py4j", "weasyprint", "uvicorn", "httptools"}), "an extra came along"
    # The package runs from the venv, not from this source tree.
    where = run([str(install.python), "-c", "import xinyong; print(xinyong.__file__)"], install.venv, clean_env())
    assert Path(where.stdout.strip()).is_relative_to(install.venv), where.stdout + where.stderr

    folder = tmp_path / "empty"
    folder.mkdir()
    args = [str(install.xinyong), "demo", "--no-serve", "--persons", str(PERSONS)]
    done = run([*args, "--organisations", str(ORGANISATIONS), "--json"], folder, clean_env())
    assert done.returncode == 0, f"xinyong demo failed:\n{done.stdout}\n{done.stderr}"
    summary = json.loads(done.stdout)
    # The store, its audit log apart, and the folder of the audit's signing keys with the public
    # copy of its checkpoints: nothing else is left in the folder (SQLite's -wal/-shm aside).
    kept = sorted(path.name for path in folder.iterdir() if not path.name.endswith(("-wal", "-shm")))
    assert kept == ["xinyong-demo-audit.db", "xinyong-demo-keys", "xinyong-demo.db"]
    keys = {path.name for path in (folder / "xinyong-demo-keys").iterdir()}
    signing = {name for name in keys if name.endswith(".key")}
    assert len(signing) == 1, keys
    assert keys - signing == {"checkpoints.jsonl", "current", "feeds"}, keys
    # The demo's one feed key (civil aviation's), beside the signing key, never in the database.
    assert [path.name for path in (folder / "xinyong-demo-keys" / "feeds").iterdir()] == ["civil-aviation.1.key"]
    assert set(summary["grades"]) == {"city-points", "court-defaulters", "tax-credit"}  # the shipped schemes
    for scheme, per_grade in summary["grades"].items():
        assert sum(per_grade.values()) == PERSONS + ORGANISATIONS, scheme
    assert summary["grades"]["tax-credit"]["(no state)"] == PERSONS  # persons are not rated for tax
    assert summary["records_in_ledger"] == summary["events"]["records"] > PERSONS
    assert summary["lists"]
    assert summary["measures"]
    assert len(summary["examples"]) == 2

    # What needs an extra says which one, on the store the demo built (exit 2: bad input).
    with socket.socket() as free:  # were the uvicorn extra's check to fail, the server would start here
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    subject = summary["examples"][0]["subject"]
    for extra, command in (
        ("pdf", ["report", subject, "--format", "pdf", "--out", "report.pdf"]),
        ("spark", ["state", "--engine", "spark", "--out", "state"]),
        ("uvicorn", ["serve", "--server", "uvicorn", "--port", str(port)]),
    ):
        env = clean_env(XINYONG_DB="sqlite:///xinyong-demo.db")
        done = run([str(install.xinyong), *command], folder, env, timeout=60)
        assert done.returncode == 2, f"{extra}: {done.stdout}{done.stderr}"
        assert f"pip install 'xinyong[{extra}]'" in done.stderr, extra
        assert "Traceback" not in done.stderr, extra
