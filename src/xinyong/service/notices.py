"""Notices: a subject's inbox and how to reach it, and delivering e-mail through the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xinyong import i18n
from xinyong.due_process import notices, outbox
from xinyong.security.access import Action, Principal, Scope, decide, gate, refusal
from xinyong.service.door import Area


class Notices(Area):
    def inbox(
        self, principal: Principal, subject_id: str, *, lang: str | None = None, unread_only: bool = False
    ) -> dict[str, Any]:
        """A subject's notices, newest first, with their text in `lang` (by default the language
        the subject chose): the subject's own, or the office's to read."""
        gate(principal, Action.RECORDS_READ)
        with self.door.reading(principal, Action.RECORDS_READ, "notices inbox") as (conn, act):
            act.subject = subject_id
            scope = decide(principal, Action.RECORDS_READ, subject=subject_id)
            if scope is Scope.PUBLIC:  # pragma: no cover - no public rule reads records
                raise refusal(principal, "notices are the subject's own")
            chosen = i18n.language(lang) if lang else notices.contact_of(conn, subject_id).language
            found = notices.inbox(conn, subject_id, unread_only=unread_only)
            act.detail.update(notices=len(found))
            return {"subject": subject_id, "language": chosen, "notices": [notices.to_dict(n, chosen) for n in found]}

    def show(self, principal: Principal, notice_id: int, *, lang: str | None = None) -> dict[str, Any]:
        """One notice in full, with its deliveries."""
        gate(principal, Action.RECORDS_READ)
        with self.door.reading(principal, Action.RECORDS_READ, "notice") as (conn, act):
            found = notices.get(conn, notice_id)
            act.subject = found.subject_id
            act.detail.update(notice=notice_id)
            decide(principal, Action.RECORDS_READ, subject=found.subject_id)
            chosen = i18n.language(lang) if lang else notices.contact_of(conn, found.subject_id).language
            return notices.to_dict(found, chosen, notices.deliveries(conn, found))

    def mark_read(self, principal: Principal, notice_id: int) -> notices.Notice:
        """The subject has read a notice (its first reading is kept)."""
        gate(principal, Action.RECORDS_READ)
        with self.door.writing(principal, Action.RECORDS_READ, "notices read") as (conn, act):
            found = notices.get(conn, notice_id)
            act.subject = found.subject_id
            act.detail.update(op="notices read", notice=notice_id)
            decide(principal, Action.RECORDS_READ, subject=found.subject_id)
            return notices.mark_read(conn, notice_id, self.clock.now())

    def mark_all_read(self, principal: Principal, subject_id: str) -> int:
        """The subject has read its notices in the portal; returns how many were unread."""
        gate(principal, Action.RECORDS_READ)
        with self.door.writing(principal, Action.RECORDS_READ, "notices read") as (conn, act):
            act.subject = subject_id
            decide(principal, Action.RECORDS_READ, subject=subject_id)
            unread = notices.inbox(conn, subject_id, unread_only=True)
            for notice in unread:
                notices.mark_read(conn, notice.id, self.clock.now())
            act.detail.update(op="notices read", notices=len(unread))
            return len(unread)

    def set_contact(
        self, principal: Principal, subject_id: str, *, email: str | None = None, lang: str | None = None
    ) -> notices.Contact:
        """How to reach a subject: the e-mail address and language of its notices."""
        gate(principal, Action.CONTACTS_CHANGE)
        with self.door.writing(principal, Action.CONTACTS_CHANGE) as (conn, act):
            act.subject = subject_id
            decide(principal, Action.CONTACTS_CHANGE, subject=subject_id)
            found = notices.set_contact(conn, subject_id, email=email, lang=lang, now=self.clock.now())
            act.detail.update(email=bool(found.email), language=found.language)
            return found

    def deliver(
        self,
        principal: Principal,
        *,
        limit: int = 500,
        adapters: Mapping[str, outbox.Adapter] | None = None,
        log_idle: bool = True,
    ) -> outbox.Run:
        """Deliver what is due in the outbox: notice e-mails and feed webhooks (each delivery in a
        transaction of its own, so one failure holds back no other); one audit entry for the run,
        none for a run that found nothing to send when `log_idle` is off (the server's minutely loop)."""
        decide(principal, Action.NOTICES_DELIVER)
        now = self.clock.now()
        run = outbox.deliver_due(self.store, now, adapters, limit=limit)
        if not log_idle and not (run.delivered or run.failed):
            return run
        with self.door.writing(principal, Action.NOTICES_DELIVER, "outbox delivery") as (_conn, act):
            act.detail.update(delivered=run.delivered, failed=run.failed)
        return run

    def pending(self, principal: Principal) -> list[dict[str, Any]]:
        """Deliveries not yet made, with their attempts and last error (addresses: audited)."""
        with self.door.reading(principal, Action.NOTICES_DELIVER, "outbox") as (conn, act):
            decide(principal, Action.NOTICES_DELIVER)
            found = outbox.pending(conn)
            act.detail.update(pending=len(found))
            return found
