"""The outbox delivers each notice exactly once to a real SMTP server (aiosmtpd on loopback),
also when the server is down for the first attempts; retries back off exponentially."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from helpers import World, at, person_id
from xinyong import settings
from xinyong.due_process import notices, outbox
from xinyong.storage import tables as t
from xinyong.storage.store import Store


@dataclass
class Sink:
    """An SMTP server's message handler that keeps every message it accepts."""

    delay: float = 0.0
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            time.sleep(self.delay)  # hold the sender, so a second worker runs meanwhile
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real SMTP server on 127.0.0.1 that can be started late (to play "down at first")."""

    def __init__(self, port: int, sink: Sink) -> None:
        self.port, self.sink = port, sink
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(free_port(), Sink())
    yield srv
    srv.stop()


@pytest.fixture
def person(world: World) -> str:
    subject = world.standard()[0]
    with world.store.write() as conn:
        notices.set_contact(conn, subject, email="zhang.san@example.org", lang="zh_Hans", now=at("2020-01-03"))
    return subject


def adapters(server: Server) -> dict[str, outbox.Adapter]:
    return {"email": outbox.SmtpAdapter(host="127.0.0.1", port=server.port, timeout=5)}


def rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(t.outbox.select().order_by(t.outbox.c.id)))


def test_each_notice_is_delivered_exactly_once_though_the_server_is_down_at_first(
    world: World, person: str, server: Server
) -> None:
    for n in range(3):
        world.record(person, "COURT.DEFAULT", f"2026-03-0{n + 1}", at("2026-03-05"))
    now = at("2026-03-05", 13)

    first = outbox.deliver_due(world.store, now, adapters(server))
    assert (first.delivered, first.failed) == (0, 3)  # refused: nobody listens
    assert {r.channel for r in rows(world.store)} == {"email"}  # the portal needs no delivery
    assert all("Connection" in e["error"] or "refused" in e["error"] for e in first.errors)
    email_rows = [r for r in rows(world.store) if r.channel == "email"]
    assert {(r.state, r.attempts) for r in email_rows} == {("pending", 1)}

    # Backoff: nothing is due again until 60 s have passed, then 120 s after the second failure.
    assert outbox.deliver_due(world.store, now + dt.timedelta(seconds=59), adapters(server)).failed == 0
    second = outbox.deliver_due(world.store, now + dt.timedelta(seconds=60), adapters(server))
    assert second.failed == 3
    assert outbox.deliver_due(world.store, now + dt.timedelta(seconds=179), adapters(server)).failed == 0

    server.start()
    later = now + dt.timedelta(seconds=180)
    third = outbox.deliver_due(world.store, later, adapters(server))
    assert (third.delivered, third.failed) == (3, 0)
    for step in range(1, 4):  # more runs, later still: nothing more is sent
        assert outbox.deliver_due(world.store, later + dt.timedelta(days=step), adapters(server)).delivered == 0

    email_rows = [r for r in rows(world.store) if r.channel == "email"]
    assert {(r.state, r.attempts) for r in email_rows} == {("delivered", 3)}
    assert sorted(server.sink.ids()) == sorted(r.message_id for r in email_rows)  # each once
    message = server.sink.messages[0]
    assert message["To"] == "zhang.san@example.org"
    assert str(message["Subject"]).startswith("一条关于您的记录已登记")
    assert message["Content-Language"] == "zh-Hans"
    body = message.get_content()
    assert "法律依据：SPC provisions 2017 art. 1" in body
    assert "在记录 court:DOC-" in body  # how to object, in the portal or at the office: no command
    assert "xinyong objections" not in body


def test_two_workers_at_once_never_send_a_notice_twice(sqlite_store: Store, server: Server, tmp_path: Any) -> None:
    world = World(sqlite_store)
    subject = world.standard()[0]
    with world.store.write() as conn:
        notices.set_contact(conn, subject, email="a@example.org", lang="en", now=at("2020-01-03"))
    for n in range(6):
        world.record(subject, "COURT.DEFAULT", f"2026-03-0{n + 1}", at("2026-03-08"))
    server.sink.delay = 0.05
    server.start()
    now = at("2026-03-08", 13)
    results: list[outbox.Run] = []

    def work() -> None:
        results.append(outbox.deliver_due(world.store, now, adapters(server)))

    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sum(r.delivered for r in results) == 6  # between the two workers
    assert len(server.sink.ids()) == 6
    assert len(set(server.sink.ids())) == 6


def test_a_crash_after_sending_resends_with_the_same_message_id(world: World, person: str, server: Server) -> None:
    """The one window: the server accepted, then we died before recording it. The lease expires, the
    message goes again, and its Message-ID (fixed when the notice was written) lets the receiver
    drop the copy."""
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-05"))
    server.start()
    smtp = outbox.SmtpAdapter(host="127.0.0.1", port=server.port)

    class Crash(Exception):
        pass

    class CrashAfterSend:
        channel = "email"

        def send(self, delivery: outbox.Delivery, text: notices.Rendered) -> None:
            smtp.send(delivery, text)
            raise Crash

    now = at("2026-03-05", 13)
    with pytest.raises(Crash):
        outbox.deliver_due(world.store, now, {"email": CrashAfterSend()})
    assert len(server.sink.messages) == 1
    # While the lease holds, no other worker touches it; after it, the row is sent again.
    assert outbox.deliver_due(world.store, now + dt.timedelta(minutes=4), {"email": smtp}).delivered == 0
    assert outbox.deliver_due(world.store, now + dt.timedelta(minutes=6), {"email": smtp}).delivered == 1
    first, second = server.sink.ids()
    assert first == second


def test_without_an_adapter_deliveries_wait_and_are_kept(world: World, person: str) -> None:
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-05"))
    run = outbox.deliver_due(world.store, at("2026-03-05", 13), {})
    assert run.delivered == 0
    assert run.waiting == {"email": 1}
    with world.store.read() as conn:
        [pending] = outbox.pending(conn)
    assert pending["channel"] == "email"
    assert pending["attempts"] == 0


def test_backoff_doubles_up_to_the_cap() -> None:
    with settings.using(settings.load({"XINYONG_OUTBOX_BACKOFF": "10", "XINYONG_OUTBOX_MAX_BACKOFF": "100"})):
        assert [outbox.backoff(n).total_seconds() for n in range(1, 7)] == [10, 20, 40, 80, 100, 100]


def test_smtp_settings_build_the_adapter() -> None:
    with settings.using(settings.load({})):
        assert outbox.SmtpAdapter.from_settings() is None
        # Webhooks need no setting; e-mail waits for an SMTP server.
        assert list(outbox.default_adapters()) == ["webhook"]
    configured = {
        "XINYONG_SMTP_HOST": "127.0.0.1",
        "XINYONG_SMTP_PORT": "2525",
        "XINYONG_SMTP_FROM": "Credit office <office@credit.example>",
    }
    with settings.using(settings.load(configured)):
        adapter = outbox.SmtpAdapter.from_settings()
    assert adapter is not None
    assert (adapter.host, adapter.port, adapter.starttls) == ("127.0.0.1", 2525, False)
    assert adapter.sender == "Credit office <office@credit.example>"


def test_the_command_line_delivers_through_the_configured_server(
    sqlite_store: Store, server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import sys

    from xinyong.interfaces import cli

    world = World(sqlite_store)
    subject = world.standard()[0]
    other = person_id(2)
    world.subjects([(other, "person", "李四")])
    with world.store.write() as conn:
        notices.set_contact(conn, subject, email="a@example.org", lang="en", now=at("2020-01-03"))
    world.record(subject, "COURT.DEFAULT", "2026-03-01", at("2026-03-05"))
    world.record(other, "COURT.DEFAULT", "2026-03-01", at("2026-03-05"))
    server.start()
    monkeypatch.setenv("XINYONG_DB", sqlite_store.url)
    monkeypatch.setenv("XINYONG_NOW", "2026-03-05T13:00:00+08:00")
    monkeypatch.setenv("XINYONG_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("XINYONG_SMTP_PORT", str(server.port))
    monkeypatch.setenv("XINYONG_SMTP_FROM", "Credit office <office@credit.example>")
    for expected in (1, 0):  # the one e-mail (the other subject has no address), then nothing
        monkeypatch.setattr(sys, "argv", ["xinyong", "notices", "deliver", "--json"])
        cli.main()
        assert json.loads(capsys.readouterr().out)["delivered"] == expected
    [message] = server.sink.messages
    assert message["From"] == "Credit office <office@credit.example>"
    assert message["Message-ID"] in {r.message_id for r in rows(sqlite_store)}
    assert str(message["Subject"]).strip().startswith("A record about you was recorded")
