"""Webhooks announce new feed versions: signed, queued in the version's transaction, delivered by the
outbox (the same claim, send and settle as notices' e-mails), retried with backoff until the receiver
answers 2xx. Tested against real HTTP receivers on 127.0.0.1 (`http.server` in a thread)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from helpers import at
from test_feeds import ADMIN, P1, Bench, city, verified
from xinyong import settings
from xinyong.due_process import outbox
from xinyong.interfaces import upkeep
from xinyong.rules import feeds as rules
from xinyong.security import keys
from xinyong.storage import tables as t
from xinyong.storage.store import Store


@dataclass
class Receiver:
    """An agency's webhook endpoint: answers each POST with the next status of `answers` (then 200)."""

    answers: list[int] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/xinyong/feeds"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.calls.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
                )
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.stop()


@pytest.fixture
def bench(store: Store, tmp_path: Path) -> Bench:
    made = city(store, tmp_path)
    made.world.record(P1, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    made.key("civil-aviation")
    return made


def deliver(bench: Bench, when: dt.datetime) -> outbox.Run:
    with settings.using(settings.load({"XINYONG_OUTBOX_BACKOFF": "60"})):
        return bench.service(when).notices.deliver(ADMIN)


def owed(bench: Bench) -> list[Any]:
    with bench.store.read() as conn:
        return list(conn.execute(select(t.outbox).where(t.outbox.c.channel == "webhook").order_by(t.outbox.c.id)))


def test_a_new_version_is_announced_signed_and_retried_until_the_receiver_accepts(
    bench: Bench, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    bench.service(at("2026-03-01")).feeds.set_webhook(ADMIN, "civil-aviation", receiver.url)
    bench.publish("2026-03-12", hour=1)
    [row] = owed(bench)
    assert (row.state, row.attempts, row.address) == ("pending", 0, receiver.url)

    first = deliver(bench, at("2026-03-12", 2))
    assert (first.delivered, first.failed) == (0, 1)
    assert first.errors[0]["error"] == "HTTP 500 Internal Server Error"
    # Not due again before its backoff (60 s, then 120 s) has passed: nothing is sent.
    assert deliver(bench, at("2026-03-12", 2) + dt.timedelta(seconds=30)).failed == 0
    assert len(receiver.calls) == 1
    second = deliver(bench, at("2026-03-12", 2) + dt.timedelta(seconds=61))
    assert second.failed == 1
    third = deliver(bench, at("2026-03-12", 2) + dt.timedelta(seconds=61 + 121))
    assert third.delivered == 1
    [row] = owed(bench)
    assert (row.state, row.attempts) == ("delivered", 3)
    assert deliver(bench, at("2026-03-13")).delivered == 0  # delivered once, never again

    assert [c["status"] for c in receiver.calls] == [500, 503, 200]
    bodies = {c["body"] for c in receiver.calls}
    assert len(bodies) == 1  # the same body, signed once when written
    ids = {c["headers"]["X-Xinyong-Delivery"] for c in receiver.calls}
    assert len(ids) == 1  # and the same delivery id, for the receiver to drop a copy
    call = receiver.calls[-1]
    assert call["path"] == "/xinyong/feeds"
    assert call["headers"]["Content-Type"] == "application/json"
    announced = json.loads(call["body"])
    [version] = bench.versions("civil-aviation")
    assert announced == {
        "agency": "civil-aviation",
        "version": 1,
        "day": "2026-03-12",
        "cut_at": version["cut_at"],
        "feed_key": 1,
        "digest": rules.digest(version),
        "add": 1,
        "del": 0,
    }
    public = bench.ring.public_keys()
    signer = call["headers"]["X-Xinyong-Key"]
    assert keys.verify(public, signer, call["body"], call["headers"]["X-Xinyong-Signature"])
    assert not keys.verify(public, signer, call["body"] + b" ", call["headers"]["X-Xinyong-Signature"])
    assert verified(version, public)


def test_nothing_is_lost_while_the_receiver_is_down(bench: Bench, receiver: Receiver) -> None:
    """Versions cut while nobody answers (the port closed) are all delivered once it answers again."""
    receiver.stop()
    down = f"http://127.0.0.1:{receiver.server.server_address[1]}/hook" if receiver.server else ""
    bench.service(at("2026-03-01")).feeds.set_webhook(ADMIN, "civil-aviation", down)
    bench.publish("2026-03-12")
    bench.publish("2026-03-13")
    failed = deliver(bench, at("2026-03-13", 2))
    assert (failed.delivered, failed.failed) == (0, 2)
    assert all("Error" in e["error"] for e in failed.errors)
    up = Receiver()
    up.start()
    try:
        with bench.store.write() as conn:  # the agency's receiver came back on another port
            conn.execute(t.outbox.update().where(t.outbox.c.channel == "webhook").values(address=up.url))
        done = deliver(bench, at("2026-03-13", 3))
        assert done.delivered == 2
        assert sorted(json.loads(c["body"])["version"] for c in up.calls) == [1, 2]
    finally:
        up.stop()


def test_a_redirect_is_no_delivery(bench: Bench, receiver: Receiver) -> None:
    receiver.answers = [302]
    bench.service(at("2026-03-01")).feeds.set_webhook(ADMIN, "civil-aviation", receiver.url)
    bench.publish("2026-03-12")
    run = deliver(bench, at("2026-03-12", 2))
    assert run.failed == 1
    assert run.errors[0]["error"].startswith("HTTP 302")
    assert len(receiver.calls) == 1


def test_the_server_s_outbox_loop_delivers_webhooks(bench: Bench, receiver: Receiver) -> None:
    bench.service(at("2026-03-01")).feeds.set_webhook(ADMIN, "civil-aviation", receiver.url)
    bench.publish("2026-03-12")
    service = bench.service(at("2026-03-12", 2))
    upkeep.deliveries(service, 60).run_once()
    assert len(receiver.calls) == 1
    [row] = owed(bench)
    assert row.state == "delivered"
    with bench.store.audit_read() as conn:
        actions = [r.actor for r in conn.execute(select(t.audit_log)) if r.action == "notices.deliver"]
    assert actions == ["server:outbox"]
    upkeep.deliveries(service, 60).run_once()  # nothing due: no audit entry either
    with bench.store.audit_read() as conn:
        assert sum(1 for r in conn.execute(select(t.audit_log)) if r.action == "notices.deliver") == 1


def test_no_webhook_no_delivery_and_an_agency_without_one_is_not_held_back(bench: Bench, receiver: Receiver) -> None:
    bench.key("railway")
    bench.service(at("2026-03-01")).feeds.set_webhook(ADMIN, "railway", receiver.url)
    bench.publish("2026-03-12")
    assert [json.loads(r.body)["agency"] for r in owed(bench)] == ["railway"]


def test_the_server_s_daily_job_cuts_the_day_s_versions_once(bench: Bench) -> None:
    service = bench.service(at("2026-03-12", 0) + dt.timedelta(minutes=10))
    job = upkeep.feed_versions(service, dt.time(0, 10))
    job.run_once()
    job.run_once()  # a second worker at the same hour: nothing computed, nothing written
    assert [v["version"] for v in bench.versions("civil-aviation")] == [1]
    with bench.store.audit_read() as conn:
        actors = [r.actor for r in conn.execute(select(t.audit_log)) if r.action == "feeds.publish"]
    assert actors == ["server:nightly"]
