"""What follows an append to the ledger: the interface of the after-append step.

The ledger appends facts and nothing else. Whatever they imply — effects rows, the subject's
notice, fresher serving rows — is the after-append step's (`xinyong.due_process.after_append`),
which every appending function here takes as an argument and calls in the append's own
transaction: a reader never sees a record without its effects and its notice, and the ledger does
not import the layers that derive from it. The argument is required, not defaulted, so no caller
can append and forget what follows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from xinyong.rules.records import Record
from xinyong.rules.schemes import SchemeVersion

if TYPE_CHECKING:
    import pyarrow as pa


class Load(Protocol):
    """Fills a table of the store from Arrow, the fastest way the backend has (the bulk import's),
    with `constants` as the value of further columns in every row."""

    def __call__(
        self, conn: Connection, name: str, table: pa.Table, constants: dict[str, str] | None = None
    ) -> None: ...


class BulkFollowUp(Protocol):
    """The after-append work of one bulk import, begun before its records are written."""

    def finish(self, conn: Connection, load: Load) -> None:
        """Write what follows from the records, which are now in the store (same transaction)."""


class AfterAppend(Protocol):
    def records_appended(
        self, conn: Connection, records: Sequence[Record], now: dt.datetime, versions: Sequence[SchemeVersion]
    ) -> None:
        """New records, without events yet, were appended row by row (an import, a submission)."""

    def event_appended(
        self, conn: Connection, record: Record, event_id: int, now: dt.datetime, *, notify: bool
    ) -> None:
        """An event was appended to a record; `notify=False` where the caller notifies once for
        several events (an approved repair)."""

    def subjects_changed(self, conn: Connection, subject_ids: Sequence[str], now: dt.datetime) -> None:
        """These subjects' state may have changed other than by an event of a record (a consent
        granted or withdrawn, one record submitted on its own): what is kept of their state
        must follow."""

    def subjects_registered(self, conn: Connection, subjects: Sequence[Mapping[str, Any]]) -> None:
        """Subjects (id, kind, name, legal_representative, division) were registered: the look-up
        finds them from this transaction on."""

    def scheme_published(self, conn: Connection, version: SchemeVersion) -> None:
        """A scheme version was published: every record it knows gets its effects under it."""

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
        """A bulk import is about to write these records (id, document_ref, subject_id, behaviour,
        occurred_on, amount, note, subject_kind, subject_email), all recorded at `now` by `actor`
        for `source`: begin what needs no store — beside the writing when `overlap` says the
        backend leaves this process idle while it writes — and return what finishes the work once
        they are written."""
        ...
