"""The store's tables: SQLAlchemy Core, the same on SQLite and PostgreSQL.

The ledger tables (subjects, sources, scheme versions, records, record events, subject events) are
append-only: rows are inserted, never updated. `effects` is derived and may be rebuilt at any time.
Two column types keep values exact on both databases (`Amount`, `Id`); `of_subject` is how rows
about a subject are found. Writes go through `store.Store.write()`.

One module past ~500 lines, on purpose: it is the schema, which the migrations are compared
against (`tests/test_audit.py::test_the_schema_and_the_migrations_agree`) and which a reader
wants whole, in sections by layer.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ColumnElement
from sqlalchemy.types import TypeEngine

# How SQLAlchemy keeps a DateTime in SQLite; timestamps given to the bulk loaders
# (`Backend.load_arrow`) as text, on either backend.
STORED_TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Amount(TypeDecorator[Decimal]):
    """Money, exact on every backend: NUMERIC(18, 2) on PostgreSQL, text on SQLite, whose NUMERIC
    affinity would turn 9999999999999999.99 into a rounded float."""

    impl = Numeric(18, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if dialect.name == "sqlite" else Numeric(18, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


# BigInteger ids are plain INTEGER on SQLite (so they stay rowid aliases) and BIGINT elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")

subjects = Table(
    "subjects",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("legal_representative", Text),
    Column("division", String(12)),
    Column("registered_at", DateTime, nullable=False),
    Index(None, "name"),
)

sources = Table(
    "sources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("title", Text),
    Column("created_at", DateTime, nullable=False),
)

source_behaviours = Table(
    "source_behaviours",
    metadata,
    Column("source_id", String(64), ForeignKey("sources.id"), primary_key=True),
    Column("behaviour", String(64), primary_key=True),
    Column("granted_at", DateTime, nullable=False),
)

scheme_versions = Table(
    "scheme_versions",
    metadata,
    Column("scheme", String(64), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("effective_from", Date),
    Column("loaded_at", DateTime, nullable=False),
    Column("title", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("source_text", Text, nullable=False),
)

records = Table(
    "records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", String(64), ForeignKey("sources.id"), nullable=False),
    Column("document_ref", String(128), nullable=False),
    Column("subject_id", String(32), ForeignKey("subjects.id"), nullable=False),
    Column("behaviour", String(64), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("amount", Amount()),
    Column("note", Text),
    Column("recorded_at", DateTime, nullable=False),
    Column("recorded_by", String(128), nullable=False),
    UniqueConstraint("source_id", "document_ref"),
    Index(None, "subject_id"),
)


def of_subject(table: Table, subject: Any) -> ColumnElement[bool]:
    """Rows of `table` (effects, notices) about a subject (`subject`: an id or a bind parameter),
    found through its records, since records.subject_id is the one index in subject order. The
    table's own subject_id is compared too: a filter here, and what lets a table partitioned by
    subject (the national plan in docs/scale.md) read one partition."""
    records_of = select(records.c.id).where(records.c.subject_id == subject)
    return and_(table.c.record_id.in_(records_of), table.c.subject_id == subject)


# One row per event after "recorded" (the records row is the recorded event). Columns that only
# some kinds use are nullable; a wide table keeps "what happened to this record" a single query.
record_events = Table(
    "record_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("record_id", Id, ForeignKey("records.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text),
    Column("behaviour", String(64)),
    Column("occurred_on", Date),
    Column("amount", Amount()),
    Column("effective_on", Date),
    Column("due_on", Date),
    Column("outcome", String(16)),
    Column("refers_to", Id),
    Column("evidence", Text),
    Index(None, "record_id"),
    Index(None, "kind", "refers_to"),
)

subject_events = Table(
    "subject_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject_id", String(32), ForeignKey("subjects.id"), nullable=False),
    Column("scheme", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Index(None, "subject_id", "scheme"),
)

# When a subject's story changed: one row per subject and append that brought it something (a
# record, an event of one of its records, a consent), written in the append's own transaction. The
# serving state's freshness guard asks it one question per subject — anything since the served row
# was computed? — with one index seek, where asking the records, their events and the consents
# cost a seek per record. Rows are only ever added: two imports at once never wait for each other.
subject_changes = Table(
    "subject_changes",
    metadata,
    Column("subject_id", String(32), nullable=False),
    Column("changed_at", DateTime, nullable=False),
    Index(None, "subject_id", "changed_at"),
)

# The public look-up's index (`derived.search`, `storage.text_index`): one row per subject, written
# in the transaction that registers it. `position` orders every answer (organisations first, then
# shorter names); on SQLite it is the rowid of the FTS5 table `search_text` (created by migration
# 0013, which SQLAlchemy does not describe) and the texts stay NULL here; on PostgreSQL the texts
# are kept here under GIN text-search indexes.
search_entries = Table(
    "search_entries",
    metadata,
    Column("position", Id, primary_key=True, autoincrement=False),
    Column("subject_id", String(32), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("pinyin", Text, nullable=False),
    Column("chars", Text),
    Column("syllables", Text),
    Column("initials", Text),
    Column("rep", Text),
)

effects = Table(
    "effects",
    metadata,
    Column("scheme", String(64), nullable=False),
    Column("version", String(32), nullable=False),
    Column("record_id", Id, nullable=False),
    Column("subject_id", String(32), nullable=False),
    Column("behaviour", String(64), nullable=False),
    Column("points", Integer, nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("known_from", DateTime, nullable=False),
    Column("known_until", DateTime),
    # No index of its own on subject_id: a subject's effects are found through its records
    # (`of_subject`), so a bulk import keeps one B-tree fewer in subject order per effect.
    Index(None, "record_id"),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("source_id", String(64)),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("imported_at", DateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("lines", Integer, nullable=False),
    Column("added", Integer, nullable=False),
)

# --- tables: access and audit (the API issue) ---------------------------------------------------

# Bearer tokens: only a SHA-256 of the secret is kept, so a copy of the store grants nothing.
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("agency", String(64)),
    Column("subject_id", String(32)),
    Column("label", Text),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", DateTime),
    Column("revoked_at", DateTime),
    # A web password's argon2id hash (passwords.py); its secret_sha256 then holds a non-hex marker.
    Column("password_hash", Text),
)

# --- tables: log-in lock-outs and web sessions (the hardening issue, security/lockouts.py and
# security/sessions.py) ---------------------------------------------------------------------------

# Log-in attempts that failed, or are being checked, in the last 15 minutes: one row each, by the
# log-in name tried (upper case; NULL for a pasted token) and the address it came from.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("login", String(64)),
    Column("address", String(64)),
    Index(None, "login", "at"),
    Index(None, "address", "at"),
    Index(None, "at"),
)

# A log-in name's or an address's lock-outs (`kind` "login" or "address"): the current or last one
# (`locked_at` to `locked_until`), how many came one after another (`lockouts`, each twice as long
# as the one before), and from when failures count again (`counted_from`: a successful log-in's
# time, for a name). Each failure locks its rows first, so that workers count one at a time.
login_locks = Table(
    "login_locks",
    metadata,
    Column("kind", String(8), primary_key=True),
    Column("value", String(64), primary_key=True),
    Column("locked_at", DateTime),
    Column("locked_until", DateTime),
    Column("lockouts", Integer, nullable=False, server_default="0"),
    Column("counted_from", DateTime),
    Column("touched_at", DateTime, nullable=False),
    Index(None, "touched_at"),
)

# Web sessions: a session lives here from log-in to log-out (or 8 hours), so that log-out ends it
# on the server. Only a SHA-256 of the cookie's session secret is kept, as for tokens.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("secret_sha256", String(64), primary_key=True),
    Column("credential", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index(None, "credential"),
    Index(None, "expires_at"),
)


def _audit_entry() -> list[Column[Any]]:
    """An audit entry's fields, as the log keeps them and as a write's pending entry waits (new
    Column objects each time: a column belongs to one table)."""
    return [
        Column("at", DateTime, nullable=False),
        Column("actor", String(128), nullable=False),
        Column("role", String(80), nullable=False),
        Column("action", String(64), nullable=False),
        Column("subject_id", String(32)),
        Column("purpose", Text),
        Column("outcome", String(32), nullable=False),
        Column("detail", Text),
    ]


# The audit entries of writes, in the write's own transaction, until they are chained into the
# audit log (`security.audit.chain_pending`, right after the write commits). On SQLite the log is a
# database file of its own (`audit_metadata`), so that checks, which append to it, never wait for
# the write lock a long import holds on this one; a write and its entry still commit together.
audit_pending = Table(
    "audit_pending",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_audit_entry(),
    # Ids never come back once cleared (SQLite would otherwise reuse the highest after a delete):
    # a chained entry's `origin` names the one row it came from.
    sqlite_autoincrement=True,
)

# Import jobs submitted over HTTP: the job row outlives a failed import (whose data is rolled
# back) so that its line-level problems can be read afterwards.
import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("source_id", String(64)),
    Column("file_name", Text, nullable=False),
    Column("submitted_at", DateTime, nullable=False),
    Column("submitted_by", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("imported", Integer),
    Column("already_present", Integer),
    Column("message", Text),
    Column("problems", Text),
)

# --- tables: notices, outbox and repairs (the due-process issue) ---------------------------------

# The facts text of the notices of many records, around the places where each record's own values
# go (`parts`: JSON array of texts; `fields`: JSON array naming the value between parts i and i+1).
# A bulk import writes one per behaviour, occurrence day and subject kind instead of a kilobyte or
# more of text per notice. Never changed: a notice's text is its template's, whenever it is read.
notice_templates = Table(
    "notice_templates",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("parts", Text, nullable=False),
    Column("fields", Text, nullable=False),
)

# A subject's inbox. `key` (record id and the event that caused the notice) is unique, so a notice
# is generated at most once per event however often generation runs. `facts` is language-neutral
# JSON; the text is rendered in the reader's language when it is shown or sent. It is stored
# whole, or (bulk imports) as a template and `fill`, the record's values as they appear in the text,
# separated by U+001F (which JSON text never holds unescaped); `facts_text` puts them
# together. Repairs need no table of their own: applications and decisions are record events
# (repair_applied/repair_decided).
notices = Table(
    "notices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("subject_id", String(32), ForeignKey("subjects.id"), nullable=False),
    Column("record_id", Id, ForeignKey("records.id"), nullable=False),
    Column("event_id", Id),
    Column("kind", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("takes_effect_on", Date),
    Column("object_by", Date),
    Column("facts", Text),
    Column("template_id", Id, ForeignKey("notice_templates.id")),
    Column("fill", Text),
    Column("read_at", DateTime),
    # `key` begins with the record's id, so (record_id, key) is unique exactly when key is; led by
    # record_id, the one index serves both a record's notices and, through the subject's records
    # (`of_subject`), a subject's inbox, where an index of its own in subject order made every
    # bulk-imported notice cost a second random B-tree insert.
    UniqueConstraint("record_id", "key"),
    CheckConstraint("(facts IS NULL) = (template_id IS NOT NULL)", name="ck_notices_facts_or_template"),
)

# How to reach a subject: an e-mail address and the language of its notices.
contacts = Table(
    "contacts",
    metadata,
    Column("subject_id", String(32), ForeignKey("subjects.id"), primary_key=True),
    Column("email", String(254)),
    Column("language", String(16), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# One row per delivery, written in the transaction of what it delivers (the transactional outbox):
# a committed notice always has its e-mail queued, a committed feed version its webhook call.
# `message_id` is fixed when the row is written, so a resend after a crash between the receiver's
# acceptance and our commit carries the same id and the receiving side can recognise it. A notice's
# e-mail is rendered when it is sent, in the subject's language then (`notice_id`); a webhook's
# body is fixed when it is written and signed then (`body`, `signed_by`, `signature`): one or the
# other, never both.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("notice_id", Id, ForeignKey("notices.id")),
    Column("channel", String(16), nullable=False),
    Column("address", String(254)),
    # Unique by construction, never looked up: it names the notice and the channel, whose pair is
    # unique below, so it needs no index of its own (a random key in a B-tree for every e-mail).
    Column("message_id", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("claimed_until", DateTime),
    Column("last_error", Text),
    Column("delivered_at", DateTime),
    Column("body", Text),
    Column("signed_by", String(16)),
    Column("signature", String(88)),
    UniqueConstraint("notice_id", "channel"),
    Index(None, "state", "next_attempt_at"),
    CheckConstraint("(notice_id IS NULL) = (body IS NOT NULL)", name="ck_outbox_notice_or_body"),
)

# --- tables: batch state (the scale issue) -------------------------------------------------------

# The state a batch computed for every subject, one row per (scheme, subject), replaced by the next
# batch. It is a cache for reads, never a source of truth: `serving.served_many` lets a row answer
# only while nothing about the subject was recorded after the row's knowledge time, and otherwise
# the caller falls back to the online path. lists and measures are comma-separated ids.
serving_state = Table(
    "serving_state",
    metadata,
    Column("scheme", String(64), primary_key=True),
    Column("subject_id", String(32), primary_key=True),
    Column("version", String(32), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("known_at", DateTime, nullable=False),
    Column("computed_at", DateTime, nullable=False),
    Column("score", BigInteger),
    Column("grade", String(16)),
    Column("lists", Text, nullable=False),
    Column("measures", Text, nullable=False),
)

# --- tables: feeds for enforcer agencies (the enforcers issue, derived/feeds.py, feed_versions.py) --------------------

# An agency with a feed: which of its keys is current (`key_generation`, counted from 1; the key
# itself is in the keys folder, never here), and where new versions are announced (`webhook_url`).
feed_agencies = Table(
    "feed_agencies",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("key_generation", Integer, nullable=False),
    Column("key_made_at", DateTime, nullable=False),
    Column("webhook_url", String(254)),
    Column("webhook_set_at", DateTime),
)

# One row per version of an agency's feed: the day it is for and when it was cut (its knowledge
# time), the key its hashes are made with, the version before it (`previous`, the digest that chains
# them) and its own `digest`, the signing key and signature, how many subjects entered and left, and
# when the agency acknowledged it. Rows are never changed but for the acknowledgement.
feed_versions = Table(
    "feed_versions",
    metadata,
    Column("agency", String(64), ForeignKey("feed_agencies.agency"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("day", Date, nullable=False),
    Column("cut_at", DateTime, nullable=False),
    Column("feed_key", Integer, nullable=False),
    Column("previous", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("key", String(16), nullable=False),
    Column("signature", String(88), nullable=False),
    Column("added", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("acknowledged_at", DateTime),
    Column("acknowledged_by", String(128)),
)

# What each version says, one row per hash added or removed, for the agency's whole set (`measure`
# '') and for each of its measures (SCHEME/MEASURE). The subject's id is kept beside its hash so that
# the subject's who-looked can show the versions that carried it; it never leaves in a feed.
# `rekeyed`: the row is there because the key changed (the old hash leaves, the new one enters),
# not because a measure began or ended. `ended_at`, on a removal from the whole set: when the
# measure ended for the subject, from which its delisting delay is counted.
feed_entries = Table(
    "feed_entries",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("measure", String(130), primary_key=True),
    Column("hash", String(64), primary_key=True),
    Column("op", String(3), nullable=False),
    Column("subject_id", String(32), nullable=False),
    Column("rekeyed", Boolean, nullable=False),
    Column("ended_at", DateTime),
    Index(None, "subject_id"),
)

# The set the versions of each feed add up to, per measure and whole: derived from feed_entries
# (a replay gives the same rows; tests/test_feeds.py holds them to it), kept so that cutting the
# next version reads one agency's current set rather than every version before it.
feed_members = Table(
    "feed_members",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("measure", String(130), primary_key=True),
    Column("subject_id", String(32), primary_key=True),
    Column("hash", String(64), nullable=False),
)


# The credit reports issued: of each only its id, the question it answers (whose report, for whom,
# as of which day, as known when) and the digest of its content — never the content, which leaves
# with whoever asked (`presentation.sealing`). Enough to say later whether a report handed to
# someone was issued, and whether today's knowledge changes its answer.
issued_reports = Table(
    "issued_reports",
    metadata,
    Column("report_id", String(32), primary_key=True),
    Column("subject_id", String(32), nullable=False),
    Column("audience", String(16), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("known_at", DateTime, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("issued_at", DateTime, nullable=False),
)

# Between the values of a templated notice's `fill`: they are JSON text, which never holds it raw.
FILL_SEPARATOR = "\x1f"


def facts_text(facts: str | None, parts: str | None, fill: str | None) -> str:
    """A notice's facts text as stored: whole, or its template's parts with the record's values
    (`fill`) between them, which gives the very text the row-wise path stores."""
    if facts is not None:
        return facts
    if parts is None or fill is None:
        raise RuntimeError("a notice has neither facts nor a template and its values")
    texts: list[str] = json.loads(parts)
    values = fill.split(FILL_SEPARATOR) if len(texts) > 1 else []
    if len(values) != len(texts) - 1:
        raise RuntimeError(f"a notice's values do not fit its template: {len(values)} for {len(texts) - 1} places")
    return "".join(piece for pair in zip(texts, [*values, ""], strict=True) for piece in pair)


# --- the audit log: a store of its own on SQLite (see `audit_pending`) ----------------------------

audit_metadata = MetaData(naming_convention=metadata.naming_convention)

# The audit log: append-only, each entry's hash covers the previous hash and the entry's own
# fields (sequence number included), so an edit, a deletion, an insertion or a swap breaks the
# chain at a nameable entry. `audit_head` holds the newest (seq, hash): appenders lock it, and
# `audit verify` compares it with the last entry so that cutting off the tail is found too.
audit_log = Table(
    "audit_log",
    audit_metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    *_audit_entry(),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The `audit_pending` row the entry was chained from (a write's), so that chaining twice —
    # after a crash between chaining and clearing — adds nothing. Bookkeeping, not hashed.
    Column("origin", Id),
    Index(None, "at"),
    Index(None, "origin"),
)

# `indexed`: every entry up to this seq has its (subject_id, seq) in audit_subjects.
audit_head = Table(
    "audit_head",
    audit_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Id, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("indexed", Id, nullable=False, server_default="0"),
)

# Which entries are about which subject, for "who looked at my data": filled by `audit.append`
# in runs of a few thousand entries, each run sorted by subject and keyed by its first entry's seq
# (see there why runs, and not an index on audit_log.subject_id); `audit verify` checks it against
# the log.
audit_subjects = Table(
    "audit_subjects",
    audit_metadata,
    Column("run", Id, primary_key=True, autoincrement=False),
    Column("subject_id", String(32), primary_key=True),
    Column("seq", Id, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# Signed heads of the audit log (`security.checkpoints`): checkpoint `n` pins entry `seq` with its
# `hash`, and names the checkpoint before it by its digest (`previous`); `key` is the signing key's
# id, `signature` Ed25519 in base64. Kept beside the log, copied beside the keys and published.
audit_checkpoints = Table(
    "audit_checkpoints",
    audit_metadata,
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime, nullable=False),
    Column("seq", Id, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("previous", String(64), nullable=False),
    Column("key", String(16), nullable=False),
    Column("signature", String(88), nullable=False),
)
