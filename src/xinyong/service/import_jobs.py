"""Import jobs: a file submitted over HTTP, kept with its outcome so its problems can be read later."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from sqlalchemy import select

from xinyong.errors import BadInput, NotFound, Problem
from xinyong.ledger.imports import ImportResult
from xinyong.presentation import outputs
from xinyong.rules.clock import to_storage
from xinyong.security.access import (
    Action,
    Forbidden,
    Principal,
    Scope,
    Unauthenticated,
    decide,
    gate,
    refusal,
    scope_for,
)
from xinyong.service.door import Area, Door
from xinyong.service.records import Records
from xinyong.service.subjects import Subjects
from xinyong.storage import tables as t


class ImportJobs(Area):
    def __init__(self, door: Door, records: Records, subjects: Subjects) -> None:
        super().__init__(door)
        self.records, self.subjects = records, subjects

    def submit(self, principal: Principal, kind: str, name: str, data: bytes, source: str | None) -> int:
        """Run an import and keep its outcome as a job whose status and line-level problems can be read.

        Imports are whole-file transactions and fast (tens of thousands of lines a second), so the
        job runs before the request returns; the job row is what lets a source read its errors later.
        """
        if kind not in {"records", "subjects"}:
            raise BadInput("kind: use records or subjects")
        if kind == "records" and not source:
            raise BadInput("source: a records import names its source agency")
        status, message, problems = "succeeded", None, []
        result: ImportResult | None = None
        try:
            if kind == "records":
                assert source is not None
                result = self.records.import_file(principal, name, data, source)
            else:
                result = self.subjects.import_file(principal, name, data)
        except (Forbidden, Unauthenticated):
            raise
        except BadInput as exc:
            status, message, problems = "failed", exc.message, list(exc.problems)
        with self.store.write() as conn:
            inserted = conn.execute(
                t.import_jobs.insert()
                .values(
                    kind=kind,
                    source_id=source if kind == "records" else None,
                    file_name=name,
                    submitted_at=to_storage(self.clock.now()),
                    submitted_by=principal.audit_actor,
                    status=status,
                    imported=result.imported if result else None,
                    already_present=result.already_present if result else None,
                    message=message,
                    problems=_problems_json(problems),
                )
                .returning(t.import_jobs.c.id)
            )
            return int(inserted.scalar_one())

    def get(self, principal: Principal, job_id: int) -> dict[str, Any]:
        gate(principal, Action.IMPORTS_READ)
        with self.store.read() as conn:
            row = conn.execute(select(t.import_jobs).where(t.import_jobs.c.id == job_id)).first()
        if row is None:
            decide(principal, Action.IMPORTS_READ)
            raise NotFound(f"import {job_id} does not exist")
        decide(principal, Action.IMPORTS_READ, agency=row.source_id)
        return {
            "id": row.id,
            "kind": row.kind,
            "source": row.source_id,
            "file_name": row.file_name,
            "submitted_at": outputs.plain(row.submitted_at.replace(tzinfo=dt.UTC)),
            "submitted_by": row.submitted_by,
            "status": row.status,
            "imported": row.imported,
            "already_present": row.already_present,
            "message": row.message,
            "problems": orjson.loads(row.problems) if row.problems else [],
        }

    def newest(self, principal: Principal, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest import jobs with their outcome (the office's view of every source's imports)."""
        gate(principal, Action.IMPORTS_READ)
        if scope_for(principal, Action.IMPORTS_READ) is not Scope.ANY:
            raise refusal(principal, "only the credit office lists every import")
        with self.store.read() as conn:
            ids = conn.execute(select(t.import_jobs.c.id).order_by(t.import_jobs.c.id.desc()).limit(limit)).scalars()
            wanted = list(ids)
        return [self.get(principal, int(job)) for job in wanted]


def _problems_json(problems: list[Problem]) -> str | None:
    if not problems:
        return None
    return orjson.dumps(
        [{"where": p.where, "why": p.why, "line": p.line, "column": p.column} for p in problems]
    ).decode()
