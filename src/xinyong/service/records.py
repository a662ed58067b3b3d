"""Records: submitting them (files, one record), reading one, and the events that change them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
from sqlalchemy import Connection

from xinyong.errors import BadInput
from xinyong.ledger import imports, registry
from xinyong.ledger import records as ledger
from xinyong.ledger.files import RECORD_COLUMNS, RECORD_OPTIONAL, read_rows, wants_bulk
from xinyong.ledger.imports import ImportResult
from xinyong.ledger.records import History
from xinyong.security.access import Action, Principal, Scope, decide, gate, scope_for
from xinyong.service.door import Area


class Records(Area):
    def _submission_scope(
        self, conn: Connection, principal: Principal, source: str, behaviours: set[str] | None
    ) -> None:
        """May the caller submit these behaviours for this source? `None`: the import refuses
        every line of a behaviour the source is not authorised for itself (the bulk path), so
        only the source matters here."""
        authorised = frozenset(registry.authorised_behaviours(conn, source))
        decide(
            principal,
            Action.RECORDS_SUBMIT,
            agency=source,
            behaviours=authorised if behaviours is None else frozenset(behaviours),
            authorised=authorised,
        )

    def import_file(
        self,
        principal: Principal,
        name: str,
        data: bytes,
        source: str,
        progress: imports.Progress | None = None,
    ) -> ImportResult:
        """A whole file of a source's records, or nothing; a source may send only its own behaviours."""
        gate(principal, Action.RECORDS_SUBMIT)
        # An import waits its turn behind another however long that one takes (`Store.write`).
        with self.door.writing(principal, Action.RECORDS_SUBMIT, patient=True) as (conn, act):
            act.detail.update(file=name, source=source)
            codes: set[str] = set()
            if scope_for(principal, Action.RECORDS_SUBMIT) is Scope.AUTHORISED_BEHAVIOURS:
                # Only a source's own submissions are limited by behaviour, so only then is the
                # file read twice (once here for its codes, once by the import itself).
                rows, _ = read_rows(name, data, RECORD_COLUMNS, RECORD_OPTIONAL)
                codes = {r.values.get("behaviour", "") for r in rows}
            self._submission_scope(conn, principal, source, codes)
            result = imports.import_records(
                conn,
                name,
                data,
                source=source,
                now=self.clock.now(),
                actor=principal.name,
                after=self.door.after,
                progress=progress,
            )
            act.detail.update(imported=result.imported, already_present=result.already_present)
            return result

    def import_path(
        self,
        principal: Principal,
        path: Path,
        source: str,
        *,
        bulk: bool | None = None,
        progress: imports.Progress | None = None,
    ) -> ImportResult:
        """A source's records from a file on disk: column-wise (Arrow, DuckDB) for Parquet and for
        files of XINYONG_BULK_BYTES or more unless `bulk` says otherwise, row by row for the rest.
        Both paths give the same guarantees; one audit entry either way."""
        from xinyong.ledger import bulk as bulk_path

        if bulk or (bulk is None and wants_bulk(path)):
            if not path.is_file():
                raise BadInput(f"cannot read {path}: no such file")
            gate(principal, Action.RECORDS_SUBMIT)
            # The bulk path checks every reference it writes itself (see `Store.write`).
            with self.door.writing(principal, Action.RECORDS_SUBMIT, foreign_keys=False, patient=True) as (conn, act):
                act.detail.update(file=path.name, source=source, path="bulk")
                self._submission_scope(conn, principal, source, None)
                result = bulk_path.import_records(
                    self.store,
                    conn,
                    path,
                    source=source,
                    now=self.clock.now(),
                    actor=principal.name,
                    after=self.door.after,
                )
                act.detail.update(imported=result.imported, already_present=result.already_present)
                return result
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}") from None
        return self.import_file(principal, path.name, data, source, progress=progress)

    def submit(self, principal: Principal, source: str, values: dict[str, str]) -> tuple[History, bool]:
        """One record, validated exactly as a file line is; returns it and whether it was new."""
        line = {k: v for k, v in values.items() if v is not None}
        data = orjson.dumps(line) + b"\n"
        gate(principal, Action.RECORDS_SUBMIT)
        with self.door.writing(principal, Action.RECORDS_SUBMIT) as (conn, act):
            act.subject = line.get("subject_id")
            self._submission_scope(conn, principal, source, {line.get("behaviour", "")})
            result = imports.import_records(
                conn,
                "record.jsonl",
                data,
                source=source,
                now=self.clock.now(),
                actor=principal.name,
                after=self.door.after,
            )
            found = ledger.history(conn, f"{source}:{line['document_ref']}")
            # One record on its own: its subject's serving rows follow at once (a file's do not).
            self.door.after.subjects_changed(conn, [found.record.subject_id], self.clock.now())
            act.detail.update(record=found.record.id, source=source, behaviour=line.get("behaviour"))
            return found, result.imported == 1

    def show(self, principal: Principal, ref: str, *, purpose: str | None = None) -> History:
        """A record with every event that happened to it."""
        gate(principal, Action.RECORDS_READ)
        with self.door.reading(principal, Action.RECORDS_READ, purpose) as (conn, act):
            found = ledger.history(conn, ref)
            act.subject = found.record.subject_id
            act.detail.update(record=found.record.id)
            decide(principal, Action.RECORDS_READ, subject=found.record.subject_id)
            return found

    def _event(self, principal: Principal, action: Action, ref: str, perform: Callable[[Connection], int]) -> int:
        gate(principal, action)
        with self.door.writing(principal, action) as (conn, act):
            found = ledger.history(conn, ref)
            act.subject = found.record.subject_id
            act.detail.update(record=found.record.id)
            decide(principal, action, subject=found.record.subject_id)
            event_id = perform(conn)
            act.detail.update(event=event_id)
            return event_id

    def correct(
        self,
        principal: Principal,
        ref: str,
        *,
        reason: str,
        behaviour: str | None = None,
        occurred_on: dt.date | None = None,
        amount: Decimal | None = None,
    ) -> int:
        """Replace a record's behaviour, date or amount (an appended event; nothing is overwritten)."""
        return self._event(
            principal,
            Action.RECORDS_CORRECT,
            ref,
            lambda conn: ledger.correct(
                conn,
                ref,
                now=self.clock.now(),
                actor=principal.name,
                after=self.door.after,
                reason=reason,
                behaviour=behaviour,
                occurred_on=occurred_on,
                amount=amount,
            ),
        )

    def revoke(self, principal: Principal, ref: str, *, reason: str) -> int:
        """Void a record: it never had any effect."""
        return self._event(
            principal,
            Action.RECORDS_REVOKE,
            ref,
            lambda conn: ledger.revoke(
                conn, ref, now=self.clock.now(), actor=principal.name, after=self.door.after, reason=reason
            ),
        )

    def end(self, principal: Principal, ref: str, *, on: dt.date, reason: str, note: str | None = None) -> int:
        """End a record's effect from a day: the obligation was fulfilled, or a repair approved."""
        return self._event(
            principal,
            Action.RECORDS_END,
            ref,
            lambda conn: ledger.end(
                conn,
                ref,
                on=on,
                reason=reason,
                now=self.clock.now(),
                actor=principal.name,
                after=self.door.after,
                note=note,
            ),
        )

    def decline(self, principal: Principal, ref: str) -> int:
        """The subject declines a positive record."""
        # Declining a positive record is the subject's own choice about its data: consent's rule.
        return self._event(
            principal,
            Action.CONSENT_CHANGE,
            ref,
            lambda conn: ledger.decline(conn, ref, now=self.clock.now(), actor=principal.name, after=self.door.after),
        )
