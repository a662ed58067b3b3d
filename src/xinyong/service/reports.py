"""Credit reports issued under seal, and verifying them (DESIGN.md, "reports anyone can verify").

Issuing is a read of personal data that leaves a trace: the report is built, sealed with the
platform's key (`presentation.sealing`) and handed out, and in the same transaction the platform
keeps of it only its id, its question (subject, audience, as_of, known_at) and its digest, with the
audit entry. Verifying is public: a file's seal is checked with the published keys alone, and the
question is asked again with today's knowledge, answering `valid` or `superseded` with the kinds
of change to the records the report showed — nothing of the content.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from xinyong import settings
from xinyong.errors import NotFound
from xinyong.presentation import outputs, sealing
from xinyong.rules.clock import from_storage, to_storage
from xinyong.security.access import Action, Principal, Scope, decide, gate
from xinyong.security.keys import KeyRing, NoKeys
from xinyong.service.door import Area, Door
from xinyong.service.questions import subject_scope
from xinyong.storage import tables as t

_REPORT_ID = re.compile(r"[0-9a-f]{32}")


class Reports(Area):
    def __init__(self, door: Door, keys: Callable[[], KeyRing]) -> None:
        super().__init__(door)
        self._keys = keys

    def issue(
        self,
        principal: Principal,
        subject_id: str,
        *,
        as_of: dt.date | None = None,
        known_at: dt.datetime | None = None,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        """The subject's credit report, sealed: in full for the subject and the office, the public
        view (organisations only) for everyone else; its id, question and digest kept, audited."""
        from xinyong.presentation import reports

        day, known, now = self.door.day(as_of), self.door.known(known_at), self.clock.now()
        with self.door.writing(principal, Action.REPORTS_READ, purpose) as (conn, act):
            act.subject = subject_id
            scope = subject_scope(conn, principal, Action.REPORTS_READ, subject_id)
            audience: reports.Audience = "public" if scope is Scope.PUBLIC else "subject"
            built = reports.build_report(conn, subject_id, as_of=day, known_at=known, audience=audience)
            ring = self._keys()
            # `init` makes the first key; a store set up otherwise (a test's, an upgraded one) gets
            # it here rather than refusing a subject its report. Without a folder, NoKeys says so,
            # once the caller was authorised and the subject found: no one learns more from it.
            ring.ensure()
            report_id = secrets.token_hex(16)  # 128 random bits: the number is the key to its page
            content = {
                "report_id": report_id,
                "issued_at": now.isoformat(),
                "verify_url": f"{settings.current().public_url}/verify/{report_id}",
                **outputs.plain(built),
            }
            sealed = sealing.seal(content, ring.sign)
            conn.execute(
                t.issued_reports.insert().values(
                    report_id=report_id,
                    subject_id=subject_id,
                    audience=audience,
                    as_of=day,
                    known_at=to_storage(known),
                    digest=sealed["digest"],
                    issued_at=to_storage(now),
                )
            )
            act.detail.update(report=report_id, audience=audience, as_of=day.isoformat(), known_at=known.isoformat())
        return sealed

    def document(self, sealed: dict[str, Any], fmt: sealing.Format, lang: str | None = None) -> bytes:
        """An issued report as a file: JSON as it is, or an HTML page or a PDF with its file seal."""
        if fmt == "json":
            return (json.dumps(sealed, ensure_ascii=False, indent=2) + "\n").encode()
        from xinyong.presentation import rendering

        body = rendering.html(sealed, lang).encode() if fmt == "html" else rendering.pdf(sealed, lang)
        return sealing.seal_file(body, fmt, sealed, self._keys().sign)

    def status(self, principal: Principal, report_id: str, *, digest: str | None = None) -> dict[str, Any]:
        """Whether an issued report still holds: `valid`, or `superseded` with each record it showed
        that has since been revoked, corrected or ended; `invalid` when `digest` is given and is not
        the one issued. Public: the caller must hold the report's number, and learns nothing more."""
        from xinyong.presentation import reports

        gate(principal, Action.REPORTS_VERIFY)
        if not _REPORT_ID.fullmatch(report_id):
            raise NotFound("a report number is 32 characters 0–9 and a–f")
        with self.store.read() as conn:
            row = conn.execute(select(t.issued_reports).where(t.issued_reports.c.report_id == report_id)).first()
            if row is None:
                raise NotFound(f"no report numbered {report_id} was issued here")
            if digest is not None and digest != row.digest:
                return {"report_id": report_id, "status": "invalid", "changes": []}
            changes = reports.changes_since(
                conn,
                row.subject_id,
                as_of=row.as_of,
                known_at=from_storage(row.known_at),
                audience=row.audience,
                now=self.clock.now(),
            )
        return {"report_id": report_id, "status": "superseded" if changes else "valid", "changes": changes}

    def verify_file(self, principal: Principal, data: bytes, *, offline: bool = False) -> dict[str, Any]:
        """A report file checked: its seal against the published keys and its bytes against its
        digests, naming each thing that does not hold; then, unless `offline`, its question asked
        again (`status`)."""
        verdict = sealing.verify(data, self.public_keys())
        result: dict[str, Any] = {
            "report_id": verdict.report_id,
            "format": verdict.format,
            "as_of": verdict.as_of,
            "known_at": verdict.known_at,
            "digest": verdict.digest,
            "signature_valid": verdict.signature_valid,
            "status": "valid" if verdict.signature_valid else "invalid",
            "changes": [],
            "problems": list(verdict.problems),
            "offline": offline,
        }
        if verdict.signature_valid and not offline:
            assert verdict.report_id is not None
            try:
                found = self.status(principal, verdict.report_id, digest=verdict.digest)
            except NotFound as exc:
                result.update(status="invalid")
                result["problems"].append(f"{exc.message}: the platform has no record of issuing it")
            else:
                result.update(status=found["status"], changes=found["changes"])
                if found["status"] == "invalid":
                    result["problems"].append("the platform issued this report number with another digest")
        return result

    def public_keys(self) -> dict[str, str]:
        """Every signing key's public half (id → base64), retired ones too: what verifies old reports."""
        ring = self._keys()
        return ring.public_keys() if ring.folder.is_dir() else {}

    def published(self) -> dict[str, Any]:
        """The keys as published at the well-known path: which signs now, and every one that did."""
        try:
            current: str | None = self._keys().current_id()
        except NoKeys:
            current = None
        return {"algorithm": "Ed25519", "current": current, "keys": self.public_keys()}

    def rotate_key(self, principal: Principal) -> str:
        """A new signing key, current from now on; the old ones stay to verify what they signed."""
        decide(principal, Action.KEYS_ROTATE)
        with self.door.writing(principal, Action.KEYS_ROTATE) as (_conn, act):
            made = self._keys().rotate()
            act.detail.update(key=made)
        return made
