"""Subjects: finding them, registering them from files, and their consent to scoring."""

from __future__ import annotations

from typing import Any

from xinyong.errors import BadInput
from xinyong.ledger import consent, imports
from xinyong.ledger.imports import ImportResult
from xinyong.security.access import Action, Principal, Scope, decide, gate
from xinyong.service.door import Area


class Subjects(Area):
    def search(self, principal: Principal, query: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Subjects by name, unified code / id, or legal representative.

        The public finds organisations only (Credit China's look-up); the office finds persons
        too, and that search is logged because it reads personal data.
        """
        text = query.strip()
        if not text:
            raise BadInput("q: give a name, a code or a legal representative to search for")
        # Imported here: the index's pinyin tables take a third of a second to load, which every
        # command line run would pay otherwise.
        from xinyong.derived import search

        scope = decide(principal, Action.SUBJECTS_SEARCH)
        with self.door.reading(principal, Action.SUBJECTS_SEARCH) as (conn, act):
            act.audited = scope is not Scope.PUBLIC
            # By characters, pinyin, initials, code or representative, over the index on disk.
            found = search.search(conn, text, organisations_only=scope is Scope.PUBLIC, limit=limit)
            act.detail.update(q=text, found=len(found))
            return found

    def prepare_search(self) -> None:
        """Load the look-up's pinyin tables now (a third of a second), so that the first look-up
        does not wait for them. The index itself is on disk: nothing is built."""
        from xinyong.derived import search_terms

        search_terms.read("重庆长城")

    def rebuild_search(self, principal: Principal) -> tuple[int, float]:
        """Derive the look-up's index again from the subjects table (after a migration, or to
        repair it): how many subjects, in how many seconds."""
        from xinyong.derived import search

        with self.door.writing(principal, Action.SEARCH_REBUILD, "search index", patient=True) as (conn, act):
            decide(principal, Action.SEARCH_REBUILD)
            done = search.rebuild(conn)
            act.detail.update(subjects=done.subjects)
            return done.subjects, done.seconds

    def catch_up_search(self, principal: Principal) -> int | None:
        """Fill the look-up when some subject is missing from it (`search.behind`: after an
        upgrade to the index), so that the portal never answers "nothing found" for a registered
        enterprise; how many subjects were indexed, or None when it was complete."""
        from xinyong.derived import search

        with self.store.read() as conn:
            if not search.behind(conn):
                return None
        return self.rebuild_search(principal)[0]

    def import_file(self, principal: Principal, name: str, data: bytes) -> ImportResult:
        """Persons and organisations from a CSV or JSON Lines file: the whole file or nothing."""
        with self.door.writing(principal, Action.SUBJECTS_IMPORT, patient=True) as (conn, act):
            decide(principal, Action.SUBJECTS_IMPORT)
            result = imports.import_subjects(
                conn, name, data, now=self.clock.now(), actor=principal.name, after=self.door.after
            )
            act.detail.update(file=name, imported=result.imported, already_present=result.already_present)
            return result

    def change_consents(self, principal: Principal, subject_ids: list[str], scheme: str, grant: bool) -> int:
        """Many persons grant or withdraw consent at once (a consent campaign), as one audited act;
        returns how many changed."""
        with self.door.writing(principal, Action.CONSENT_CHANGE, "consent campaign") as (conn, act):
            decide(principal, Action.CONSENT_CHANGE)
            changed = consent.record_consents(
                conn, subject_ids, scheme, grant, self.clock.now(), principal.name, after=self.door.after
            )
            act.detail.update(scheme=scheme, consent="granted" if grant else "withdrawn", changed=changed)
            return changed

    def change_consent(self, principal: Principal, subject_id: str, scheme: str, grant: bool) -> bool:
        """A person grants or withdraws consent to a scheme; False when nothing changed."""
        gate(principal, Action.CONSENT_CHANGE)
        with self.door.writing(principal, Action.CONSENT_CHANGE) as (conn, act):
            act.subject = subject_id
            decide(principal, Action.CONSENT_CHANGE, subject=subject_id)
            changed = consent.record_consent(
                conn, subject_id, scheme, grant, self.clock.now(), principal.name, after=self.door.after
            )
            act.detail.update(scheme=scheme, consent="granted" if grant else "withdrawn", changed=changed)
            return changed
