"""Notices: nobody is affected by a record they were not told about.

When a record with an adverse effect under any scheme is recorded, corrected, revoked, disputed,
decided, ended or repaired, its subject gets a notice: what was recorded, by whom, under which
legal basis, the points, lists and measures it feeds, the day it takes effect, and how and until
when to object. Notices are written in the same transaction as the ledger event that caused them
(so a committed event always has its notice). The portal inbox is the notices table itself, so a
committed notice is in the subject's portal at once; when the subject has an e-mail address, an
outbox row is written in the same transaction too (so a committed notice always has its e-mail
queued; `outbox.py` sends it).

A notice keeps language-neutral facts (JSON); the text is rendered in the reader's language when
it is read or sent, so a subject who switches to English reads old notices in English too.

The package: `facts` (what a notice says), `writing` (row by row, keyed by record and event, so
running it twice writes nothing twice), `fresh` (a bulk import's notices, set-based, from one
template per behaviour, occurrence day and subject kind), `contacts` (e-mail address and
language), `inbox` (reading them back), `text` (rendering them in a language). The names below
are what the rest of the platform uses.
"""

from xinyong.due_process.notices.contacts import Contact, contact_of, contacts_of, set_contact
from xinyong.due_process.notices.fresh import Template, fresh_templates, fresh_templates_of, write_fresh
from xinyong.due_process.notices.inbox import (
    NOTICE_ROWS,
    Notice,
    count,
    deliveries,
    get,
    inbox,
    mark_read,
    to_dict,
)
from xinyong.due_process.notices.text import Rendered, render
from xinyong.due_process.notices.writing import for_event, for_new_records, for_record_ids

__all__ = [
    "NOTICE_ROWS",
    "Contact",
    "Notice",
    "Rendered",
    "Template",
    "contact_of",
    "contacts_of",
    "count",
    "deliveries",
    "for_event",
    "for_new_records",
    "for_record_ids",
    "fresh_templates",
    "fresh_templates_of",
    "get",
    "inbox",
    "mark_read",
    "render",
    "set_contact",
    "to_dict",
    "write_fresh",
]
