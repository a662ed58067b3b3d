"""API users are people too: a client generated from /openapi.json by openapi-python-client reads
well (short operation ids, one module per tag) and asks a check of a real server.

openapi-python-client 0.29 needs typer < 0.28, and xinyong's command line is built on typer 0.29,
so the generator cannot share the project's venv: it runs, pinned, in a venv of its own through
uv (`uv tool run`), as a client's author would run it. The generated package is then imported here
(it needs only httpx, attrs and python-dateutil, which the dev venv has)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import World, at, person_id, serving
from xinyong.rules.clock import FixedClock
from xinyong.security.access import Principal, Role
from xinyong.service import Service
from xinyong.storage.store import Store

GENERATOR = "openapi-python-client==0.29.1"
ROOT = Path(__file__).resolve().parents[1]
P1, P2 = person_id(1), person_id(2)
ADMIN = Principal(Role.ADMIN, "setup", channel="test")


def _uv() -> str:
    import shutil

    bootstrapped = ROOT / ".tools" / "uv-venv" / "bin" / "uv"
    found = str(bootstrapped) if bootstrapped.is_file() else shutil.which("uv")
    if found is None:
        pytest.skip("no uv: neither .tools/uv-venv/bin/uv (run `bash run.sh test`) nor uv on PATH")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`xinyong serve` on loopback over a store with P1 on the defaulter list: (base URL, an
    enforcer's bearer token for civil aviation)."""
    folder = tmp_path_factory.mktemp("client")
    store = Store(f"sqlite:///{folder / 'serve.db'}")
    store.migrate()
    world = World(store)
    world.standard()
    world.subjects([(P2, "person", "李四")])
    world.record(P1, "COURT.DEFAULT", "2026-01-05", at("2026-01-06"))
    bearer, _ = Service(store, FixedClock(at("2026-03-01"))).credentials.create_token(
        ADMIN, Role.ENFORCER, agency="civil-aviation"
    )
    store.dispose()
    with serving(store.url) as base:
        yield base, bearer


@pytest.fixture(scope="module")
def client_package(server: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The package openapi-python-client generates from the live server's /openapi.json."""
    base, _ = server
    folder = tmp_path_factory.mktemp("generated")
    spec = folder / "openapi.json"
    spec.write_text(httpx.get(f"{base}/openapi.json", timeout=10).text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    generate = [_uv(), "tool", "run", "--from", GENERATOR, "openapi-python-client", "generate"]
    generate += ["--path", str(spec), "--meta", "none", "--output-path", str(folder / "xinyong_client")]
    done = subprocess.run(generate, cwd=folder, env=env, capture_output=True, text=True, timeout=540, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # Every operation is generated: nothing skipped (the YAML source once was).
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("xinyong_client")
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == "xinyong_client" or n.startswith("xinyong_client.")]:
            del sys.modules[name]


def test_every_operation_has_a_short_stable_id_and_a_tag(server: tuple[str, str]) -> None:
    base, _ = server
    spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
    operations = [(path, op) for path, item in spec["paths"].items() for op in item.values()]
    ids = [op["operationId"] for _, op in operations]
    assert len(ids) == len(set(ids))
    for path, op in operations:
        assert op.get("tags"), path
        assert "v1" not in op["operationId"], op["operationId"]
        assert len(op["operationId"]) <= 24, op["operationId"]
    # Clients call these by name; renaming one breaks them.
    assert {"check", "check_batch", "file_objection", "get_scheme_source", "read_feed"} <= set(ids)


def test_a_generated_client_asks_a_check_of_a_real_server(server: tuple[str, str], client_package: Any) -> None:
    base, bearer = server
    check = importlib.import_module("xinyong_client.api.checks.check")
    client = client_package.AuthenticatedClient(base_url=base, token=bearer)
    with client as session:
        answer = check.sync_detailed(P1, "demo-city", "no-flights", client=session)
        assert answer.status_code == 200
        body = json.loads(answer.content)
        assert body["applies"] is True
        assert body["subject"] != P1  # an enforcer hears a masked id
        parsed = check.sync(P2, "demo-city", "no-flights", client=session)
        assert parsed is not None
        assert parsed.applies is False


def test_the_yaml_source_is_in_the_client(server: tuple[str, str], client_package: Any) -> None:
    base, _ = server
    source = importlib.import_module("xinyong_client.api.schemes.get_scheme_source")
    with client_package.Client(base_url=base) as session:
        answer = source.sync_detailed("demo-city", "2026.1", client=session)
    assert answer.status_code == 200
    assert b"scheme: demo-city" in answer.content
