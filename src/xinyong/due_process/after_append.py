"""The after-append step: what follows, in the same transaction, from every append to the ledger.

One step for every path that appends — a file imported row by row or in bulk, one submitted
record, an event (a correction, an objection, a repair), a consent, a scheme version published:
the records' effects are derived, their subject is sent its notice (notice before effect), and the
serving rows of a subject whose story changed are computed again; a subject registered is indexed
for the look-up. The ledger calls it through the
`ledger.appended.AfterAppend` interface and knows nothing of effects, notices or serving rows.

Serving rows are refreshed for the subject of an event, of a consent or of a record submitted on
its own; the records of a file leave their subjects' rows as they are, and the freshness guard
(`serving.served_many`) sends checks about those subjects to the exact online path until the
next batch. Refreshing a million subjects row by row inside an import is a batch's work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from xinyong.derived import derivation, serving
from xinyong.due_process import notices
from xinyong.ledger.appended import AfterAppend, BulkFollowUp, Load
from xinyong.rules.clock import to_storage
from xinyong.rules.records import Record
from xinyong.rules.schemes import SchemeVersion
from xinyong.storage.tables import STORED_TIMESTAMP

if TYPE_CHECKING:
    import pyarrow as pa


class AfterAppendStep:
    """Derive effects, write notices, refresh the serving state (see the module's docstring)."""

    def records_appended(
        self, conn: Connection, records: Sequence[Record], now: dt.datetime, versions: Sequence[SchemeVersion]
    ) -> None:
        # The records were just written and have no events: derived from the values in hand.
        derivation.insert_effects(conn, derivation.derive_for({r.id: (r, []) for r in records}, versions))
        notices.for_new_records(conn, records, now, versions)

    def event_appended(
        self, conn: Connection, record: Record, event_id: int, now: dt.datetime, *, notify: bool
    ) -> None:
        derivation.refresh_records(conn, [record.id])
        if notify:
            notices.for_event(conn, record.id, event_id, now)
        serving.refresh_if_served(conn, [record.subject_id], now)

    def subjects_changed(self, conn: Connection, subject_ids: Sequence[str], now: dt.datetime) -> None:
        serving.refresh_if_served(conn, subject_ids, now)

    def subjects_registered(self, conn: Connection, subjects: Sequence[Mapping[str, Any]]) -> None:
        # Imported here: pypinyin's tables take a third of a second to load, which every command
        # line run would pay otherwise.
        from xinyong.derived import search

        search.index_subjects(conn, subjects)

    def scheme_published(self, conn: Connection, version: SchemeVersion) -> None:
        derivation.derive_version(conn, version)

    def bulk_appending(
        self,
        records: pa.Table,
        now: dt.datetime,
        versions: Sequence[SchemeVersion],
        *,
        source: str,
        actor: str,
        overlap: bool,
    ) -> BulkFollowUp:
        # The notices' facts texts are rendered in Python (a few seconds per million records):
        # beside the writing where the backend leaves this process idle while it writes (PostgreSQL's
        # COPY); where the writes hold the GIL for every row they bind (SQLite), the two would only
        # take turns, so then it is done when needed.
        fresh = records.select(
            ["id", "behaviour", "occurred_on", "subject_kind", "subject_email", "subject_id", "document_ref", "amount"]
        )
        templates: Future[list[notices.Template]] | None = None
        if overlap:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notice-templates")
            templates = pool.submit(notices.fresh_templates_of, fresh, now, versions, source=source, recorded_by=actor)
            pool.shutdown(wait=False)
        return _BulkFollowUp(fresh, now, versions, source, actor, templates)


@dataclass
class _BulkFollowUp:
    fresh: pa.Table
    now: dt.datetime
    versions: Sequence[SchemeVersion]
    source: str
    actor: str
    templates: Future[list[notices.Template]] | None

    def finish(self, conn: Connection, load: Load) -> None:
        # Here, not at the top: Arrow and DuckDB cost every command a tenth of a second to import.
        from xinyong.derived import fresh_effects

        effects = fresh_effects.derive_fresh_effects(self.fresh, self.versions, self.now)
        stamp = to_storage(self.now).strftime(STORED_TIMESTAMP)
        load(conn, "effects", effects, {"known_from": stamp})
        # Notice before effect holds on this path too: every new adverse record gets its notice,
        # and the notice its deliveries, in this transaction.
        notices.write_fresh(
            conn,
            self.fresh,
            self.now,
            self.versions,
            load,
            source=self.source,
            recorded_by=self.actor,
            templates=self.templates.result() if self.templates is not None else None,
        )


AFTER_APPEND: AfterAppend = AfterAppendStep()
