"""The outbox: delivering notices' e-mails and feeds' webhook calls, with retries, never losing or
doubling one.

Every delivery is a row written in the transaction of what it delivers, so nothing that was
committed can be forgotten: a notice to a subject with an e-mail address has its e-mail row (the
portal needs none: its inbox is the notices table itself), and a feed version of an agency with a
webhook has the row of its announcement (`enqueue`). An e-mail is rendered when it is sent, in the
subject's language then; a webhook's body is fixed and signed when its row is written. `deliver_due`
then works in three short steps per row, whatever its channel:

1. **claim**: in a write transaction, bump `attempts` and set a lease (`claimed_until`) with a
   conditional UPDATE; only the worker whose UPDATE changed the row sends it, so two workers (two
   `xinyong notices deliver` runs, or the server's loop) never send the same row at once;
2. **send** through the channel's adapter (`SmtpAdapter`, `WebhookAdapter`), outside any
   transaction (a slow SMTP server or receiver must not hold the store's write lock);
3. **settle**: mark it delivered, or record the error and the next attempt, with exponential
   backoff (XINYONG_OUTBOX_BACKOFF doubled per attempt, capped at XINYONG_OUTBOX_MAX_BACKOFF).
   Deliveries are never given up: a notice or a version is owed until it is delivered.

The one window left is a crash after the receiver accepted and before step 3 commits: the lease
then expires and the message is sent again — with the same Message-ID (an e-mail, RFC 5322
§3.6.4) or `X-Xinyong-Delivery` header (a webhook), fixed when the row was written, so the receiver
can recognise the copy. Exactly-once over a network needs the receiver's help; this is the standard
trade (at-least-once sending, idempotent by key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import smtplib
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol

from sqlalchemy import Connection, or_, select, update

from xinyong import settings
from xinyong.due_process import notices
from xinyong.rules.clock import from_storage, to_storage
from xinyong.storage import tables as t
from xinyong.storage.store import Store

LEASE = dt.timedelta(minutes=5)
WEBHOOK = "webhook"


@dataclass(frozen=True)
class Delivery:
    id: int
    notice_id: int | None
    channel: str
    address: str | None
    message_id: str
    attempts: int
    body: str | None = None  # a webhook's: fixed, and signed, when the row was written
    signed_by: str | None = None
    signature: str | None = None


class DeliveryFailed(Exception):
    """An adapter could not deliver this time; the row is retried later."""


class Adapter(Protocol):
    channel: str

    def send(self, delivery: Delivery, text: notices.Rendered | None) -> None:
        """Deliver or raise; must be safe to call again with the same delivery (same Message-ID).
        `text` is a notice's, rendered for its reader; None for a delivery with a body of its own."""


@dataclass
class SmtpAdapter:
    """E-mail over SMTP (smtplib), one connection per run, plain text in the subject's language."""

    host: str
    port: int = settings.defaults().smtp_port
    sender: str = settings.defaults().smtp_from
    starttls: bool = settings.defaults().smtp_starttls
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = settings.defaults().smtp_timeout
    channel: str = "email"
    _client: smtplib.SMTP | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls) -> SmtpAdapter | None:
        """The adapter the SMTP settings describe; None while XINYONG_SMTP_HOST is unset."""
        chosen = settings.current()
        if chosen.smtp_host is None:
            return None
        return cls(
            host=chosen.smtp_host,
            port=chosen.smtp_port,
            sender=chosen.smtp_from,
            starttls=chosen.smtp_starttls,
            user=chosen.smtp_user,
            password=chosen.smtp_password,
            timeout=chosen.smtp_timeout,
        )

    def message(self, delivery: Delivery, text: notices.Rendered, now: dt.datetime) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = delivery.address or ""
        message["Subject"] = text.subject
        message["Message-ID"] = delivery.message_id
        message["Date"] = format_datetime(now)
        message["X-Xinyong-Notice"] = str(delivery.notice_id)
        message.set_content(text.body)
        # After set_content, which replaces every Content-* header.
        message["Content-Language"] = "zh-Hans" if text.language == "zh_Hans" else "en"
        return message

    def _connect(self) -> smtplib.SMTP:
        if self._client is None:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                client.starttls()
            if self.user:
                client.login(self.user, self.password or "")
            self._client = client
        return self._client

    def send(self, delivery: Delivery, text: notices.Rendered | None) -> None:
        if not delivery.address:
            raise DeliveryFailed("no e-mail address")
        if text is None:
            raise DeliveryFailed("not a notice: nothing to e-mail")
        try:
            client = self._connect()
            client.send_message(
                self.message(delivery, text, dt.datetime.now(dt.UTC)),
                from_addr=parseaddr(self.sender)[1],
                to_addrs=[delivery.address],
            )
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._client.quit()
            self._client = None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer other than 2xx: the call failed (and the body is not sent on)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class WebhookAdapter:
    """An HTTP POST of the delivery's body to its address; delivered when the receiver answers 2xx.

    The body is sent as it was written and signed: `X-Xinyong-Signature` is the platform's Ed25519
    signature of its bytes (base64), `X-Xinyong-Key` the signing key's id (its public half is
    published), `X-Xinyong-Delivery` the same on every attempt, for the receiver to drop a copy."""

    timeout: float = settings.defaults().webhook_timeout
    channel: str = WEBHOOK

    @classmethod
    def from_settings(cls) -> WebhookAdapter:
        return cls(timeout=settings.current().webhook_timeout)

    def send(self, delivery: Delivery, text: notices.Rendered | None) -> None:
        if not delivery.address or delivery.body is None:
            raise DeliveryFailed("no address or no body to send")
        request = urllib.request.Request(
            delivery.address,
            data=delivery.body.encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "xinyong-webhooks",
                "X-Xinyong-Delivery": delivery.message_id,
                "X-Xinyong-Key": delivery.signed_by or "",
                "X-Xinyong-Signature": delivery.signature or "",
            },
        )
        opener = urllib.request.build_opener(_NoRedirects())
        try:
            with opener.open(request, timeout=self.timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}") from None
        except (OSError, ValueError) as exc:  # refused, timed out, unreachable, a malformed address
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}")


def default_adapters() -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {WEBHOOK: WebhookAdapter.from_settings()}
    smtp = SmtpAdapter.from_settings()
    if smtp is not None:
        adapters["email"] = smtp
    return adapters


def enqueue(
    conn: Connection,
    *,
    channel: str,
    address: str,
    body: str,
    signed_by: str,
    signature: str,
    message_id: str,
    now: dt.datetime,
) -> None:
    """Queue a delivery whose content is fixed now (a webhook call), in the caller's transaction."""
    conn.execute(
        t.outbox.insert().values(
            notice_id=None,
            channel=channel,
            address=address,
            message_id=message_id,
            state="pending",
            attempts=0,
            next_attempt_at=to_storage(now),
            body=body,
            signed_by=signed_by,
            signature=signature,
        )
    )


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failure: base · 2^(attempts−1), capped."""
    chosen = settings.current()
    base, cap = chosen.outbox_backoff, chosen.outbox_max_backoff
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


@dataclass
class Run:
    """What one delivery run did."""

    delivered: int = 0
    failed: int = 0
    waiting: dict[str, int] = field(default_factory=dict)  # channel -> due rows with no adapter
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "failed": self.failed, "waiting": self.waiting, "errors": self.errors}


def _due(now: dt.datetime) -> Any:
    stamp = to_storage(now)
    return (
        t.outbox.c.state == "pending",
        t.outbox.c.next_attempt_at <= stamp,
        or_(t.outbox.c.claimed_until.is_(None), t.outbox.c.claimed_until < stamp),
    )


def _claim(conn: Connection, row_id: int, now: dt.datetime) -> bool:
    changed = conn.execute(
        update(t.outbox)
        .where(t.outbox.c.id == row_id, *_due(now))
        .values(claimed_until=to_storage(now + LEASE), attempts=t.outbox.c.attempts + 1)
    )
    return changed.rowcount == 1


def _settle(conn: Connection, delivery: Delivery, now: dt.datetime, error: str | None) -> None:
    if error is None:
        values: dict[str, Any] = {
            "state": "delivered",
            "delivered_at": to_storage(now),
            "claimed_until": None,
            "last_error": None,
        }
    else:
        values = {
            "next_attempt_at": to_storage(now + backoff(delivery.attempts)),
            "claimed_until": None,
            "last_error": error[:2000],
        }
    conn.execute(update(t.outbox).where(t.outbox.c.id == delivery.id, t.outbox.c.state == "pending").values(**values))


def _load(conn: Connection, row_id: int) -> tuple[Delivery, notices.Rendered | None]:
    row = conn.execute(select(t.outbox).where(t.outbox.c.id == row_id)).one()
    delivery = Delivery(
        row.id,
        row.notice_id,
        row.channel,
        row.address,
        row.message_id,
        row.attempts,
        row.body,
        row.signed_by,
        row.signature,
    )
    if row.notice_id is None:
        return delivery, None
    notice = notices.get(conn, row.notice_id)
    lang = notices.contact_of(conn, notice.subject_id).language
    return delivery, notices.render(notice, lang)


def deliver_due(
    store: Store,
    now: dt.datetime,
    adapters: Mapping[str, Adapter] | None = None,
    *,
    limit: int = 500,
) -> Run:
    """Deliver every delivery due at `now` (at most `limit`); returns what happened.

    Each delivery is claimed, sent and settled on its own, so a failure of one (an SMTP server
    that is down) never holds back or undoes another.
    """
    adapters = dict(adapters) if adapters is not None else default_adapters()
    run = Run()
    with store.read() as conn:
        due = list(conn.execute(select(t.outbox.c.id, t.outbox.c.channel).where(*_due(now)).order_by(t.outbox.c.id)))
    sent = 0
    try:
        for row in due:
            if sent >= limit:
                break
            adapter = adapters.get(row.channel)
            if adapter is None:
                run.waiting[row.channel] = run.waiting.get(row.channel, 0) + 1
                continue
            sent += 1
            with store.write() as conn:
                if not _claim(conn, row.id, now):
                    continue  # another worker has it
                delivery, text = _load(conn, row.id)
            try:
                adapter.send(delivery, text)
                error = None
            except DeliveryFailed as exc:
                error = str(exc)
            with store.write() as conn:
                _settle(conn, delivery, now, error)
            if error is None:
                run.delivered += 1
            else:
                run.failed += 1
                run.errors.append(
                    {
                        "notice": delivery.notice_id,
                        "delivery": delivery.message_id,
                        "channel": delivery.channel,
                        "attempts": delivery.attempts,
                        "error": error,
                        "next_attempt_at": (now + backoff(delivery.attempts)).isoformat(),
                    }
                )
    finally:
        for adapter in adapters.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
    return run


def pending(conn: Connection) -> list[dict[str, Any]]:
    """Deliveries not yet made, oldest first, with their attempts and last error (for the office)."""
    query = select(t.outbox).where(t.outbox.c.state == "pending").order_by(t.outbox.c.id)
    return [
        {
            "notice": row.notice_id,
            "delivery": row.message_id,
            "channel": row.channel,
            "address": row.address,
            "attempts": row.attempts,
            "next_attempt_at": from_storage(row.next_attempt_at).isoformat(),
            "last_error": row.last_error,
        }
        for row in conn.execute(query)
    ]
