"""How to reach a subject: an e-mail address and the language of its notices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING

from sqlalchemy import (
    Connection,
    select,
    update,
)

from xinyong.errors import BadInput
from xinyong.i18n import language
from xinyong.ledger.registry import existing_subjects, unregistered
from xinyong.rules.clock import to_storage
from xinyong.storage import tables as t

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Contact:
    subject_id: str
    email: str | None
    language: str


def contacts_of(conn: Connection, subject_ids: Iterable[str]) -> dict[str, Contact]:
    wanted = list(dict.fromkeys(subject_ids))
    found: dict[str, Contact] = {}
    for start in range(0, len(wanted), 500):
        query = select(t.contacts).where(t.contacts.c.subject_id.in_(wanted[start : start + 500]))
        for row in conn.execute(query):
            found[row.subject_id] = Contact(row.subject_id, row.email, row.language)
    return found


def contact_of(conn: Connection, subject_id: str) -> Contact:
    """The subject's contact, or the default (portal only, the default language)."""
    return contacts_of(conn, [subject_id]).get(subject_id) or Contact(subject_id, None, language(None))


def set_contact(conn: Connection, subject_id: str, *, email: str | None, lang: str | None, now: dt.datetime) -> Contact:
    """Record how to reach a subject; notices already queued keep the address they were queued with."""
    if not existing_subjects(conn, [subject_id]):
        raise unregistered(subject_id)
    if email is not None:
        email = email.strip() or None
    if email is not None and ("@" not in parseaddr(email)[1] or parseaddr(email)[1] != email):
        raise BadInput(f"--email: {email!r} is not an e-mail address")
    previous = contacts_of(conn, [subject_id]).get(subject_id)
    chosen = language(lang) if lang else previous.language if previous else language(None)
    values = {"email": email, "language": chosen, "updated_at": to_storage(now)}
    if previous is None:
        conn.execute(t.contacts.insert().values(subject_id=subject_id, **values))
    else:
        conn.execute(update(t.contacts).where(t.contacts.c.subject_id == subject_id).values(**values))
    return Contact(subject_id, email, chosen)
