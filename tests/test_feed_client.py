"""The example feed client of docs/enforcers.md (docs/examples/feed_client.py) against a real server:
it fetches the feed over HTTP with an enforcer's token, verifies every version's signature and
chain, keeps the set, looks a passenger up by the hash of their id, and acknowledges."""

from __future__ import annotations

import importlib.util
import io
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from helpers import at, run_cli
from test_feeds import ADMIN, P1, P2, Bench, city
from xinyong.interfaces.site import create_app
from xinyong.rules.clock import FixedClock
from xinyong.security.access import Role
from xinyong.storage import tables as t
from xinyong.storage.store import Store

CLIENT = Path(__file__).resolve().parents[1] / "docs" / "examples" / "feed_client.py"


def load_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("feed_client", CLIENT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@dataclass
class Live:
    base: str
    token: str
    bench: Bench
    folder: Path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    store = Store(f"sqlite:///{tmp_path / 'live.db'}")
    store.migrate()
    bench = city(store, tmp_path)
    record = bench.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    (tmp_path / "feed.key").write_text(bench.key("civil-aviation") + "\n", encoding="ascii")
    bench.publish("2026-03-12")
    token, _ = bench.service(at("2026-03-01")).credentials.create_token(
        ADMIN, Role.ENFORCER, agency="civil-aviation", label="airline feed client"
    )
    bench.world.end(record, "2026-03-20", at("2026-03-20", 10))
    app = create_app(store, clock=FixedClock(at("2026-03-20", 12)), keys=bench.ring, token_cache_seconds=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield Live(f"http://127.0.0.1:{port}", token, bench, tmp_path)
    server.should_exit = True
    thread.join(10)
    store.dispose()


def run(client: ModuleType, *args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert client.main(list(args)) == 0
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


def test_the_example_client_syncs_verifies_looks_up_and_acknowledges(live: Live) -> None:
    client = load_client()
    common = [
        "--url", live.base, "--token", live.token, "--agency", "civil-aviation",
        "--key-file", str(live.folder / "feed.key"), "--state", str(live.folder / "state.json"),
    ]  # fmt: skip
    summary, p1, p2 = run(client, *common, "--check", P1, "--check", f" {P2.lower()} ")
    assert (summary["version"], summary["applied"], summary["members"]) == (1, 1, 1)
    assert (p1["applies"], p2["applies"]) == (True, False)
    store = live.bench.store
    with store.read() as conn:
        acknowledged = conn.execute(select(t.feed_versions.c.version, t.feed_versions.c.acknowledged_by)).all()
    assert acknowledged == [(1, "api:airline feed client")]
    # P1 repaired: the next version removes them, and the client, run again, applies only it.
    live.bench.publish("2026-03-20", hour=11)
    summary, p1 = run(client, *common, "--check", P1)
    assert (summary["version"], summary["applied"], summary["members"], p1["applies"]) == (2, 1, 0, False)
    [found] = live.bench.service(at("2026-03-21")).feeds.delays(ADMIN)["agencies"]
    assert (found["removals"], found["acknowledged"], found["unacknowledged"]) == (1, 1, 0)
    # Nothing new: nothing applied, nothing acknowledged again.
    assert run(client, *common)[0]["applied"] == 0


def test_the_example_client_refuses_a_tampered_version_and_reads_a_saved_feed(live: Live) -> None:
    client = load_client()
    db = f"sqlite:///{live.folder / 'live.db'}"
    env = {"XINYONG_KEYS": str(live.bench.ring.folder)}
    code, out, err = run_cli(db, "feeds", "show", "civil-aviation", "--json", now="2026-03-20T12:00:00+08:00", env=env)
    assert code == 0, err
    code, keys, err = run_cli(db, "audit", "checkpoints", "--json", env=env)
    assert code == 0, err
    (live.folder / "feed.json").write_text(out, encoding="utf-8")
    (live.folder / "keys.json").write_text(keys, encoding="utf-8")
    common = [
        "--from-file", str(live.folder / "feed.json"), "--keys-file", str(live.folder / "keys.json"),
        "--agency", "civil-aviation", "--key-file", str(live.folder / "feed.key"),
    ]  # fmt: skip
    summary, p1 = run(client, *common, "--state", str(live.folder / "saved.json"), "--check", P1)
    assert (summary["version"], p1["applies"]) == (1, True)
    feed = json.loads(out)
    feed["versions"][0]["add"] = []
    (live.folder / "tampered.json").write_text(json.dumps(feed), encoding="utf-8")
    tampered = [*common[:1], str(live.folder / "tampered.json"), *common[2:]]
    with pytest.raises(client.Refused, match="signature"):
        client.main([*tampered, "--state", str(live.folder / "fresh.json")])
    assert not (live.folder / "fresh.json").exists()
