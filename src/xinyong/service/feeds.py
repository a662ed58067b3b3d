"""Feeds for enforcer agencies: keys, versions, reading, acknowledgements, webhooks, delays.

The administrator makes each agency's feed key (shown once, kept in the keys folder), registers
where its new versions are announced, and cuts the versions (the server does it every night); an
enforcer reads its own agency's feed only and acknowledges the versions it has applied; anyone may
read how fast each agency lifts the measures that ended (the delisting delay). A feed carries keyed
hashes, never identifiers (`rules.feeds`); the subject's id is kept beside its hash for its
who-looked (`service.audit.looked`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from xinyong import settings
from xinyong.derived import delisting, feed_versions, feeds
from xinyong.due_process import outbox
from xinyong.errors import BadInput, NotFound, XinyongError
from xinyong.rules import feeds as rules
from xinyong.rules import values
from xinyong.rules.clock import from_storage
from xinyong.security.access import Action, Principal, decide, gate
from xinyong.security.keys import KeyRing
from xinyong.service.door import Act, Area, Door


class Feeds(Area):
    def __init__(self, door: Door, keys: Callable[[], KeyRing]) -> None:
        super().__init__(door)
        self._keys = keys  # resolved when first needed: reading a feed signs nothing

    def make_key(self, principal: Principal, agency: str) -> dict[str, Any]:
        """Make the agency's feed key, or rotate it: the key is in this answer only. The next
        version removes every hash made with the old key and adds every member's under the new one."""
        with self.door.writing(principal, Action.FEEDS_KEY) as (conn, act):
            decide(principal, Action.FEEDS_KEY)
            agency = rules.agency_name(agency)
            act.detail.update(agency=agency)
            if agency not in feeds.known_agencies(conn):
                raise NotFound(f"AGENCY: {agency} implements no measure of a loaded scheme")
            key, keys = rules.new_key(), self._keys().feeds()
            made: list[int] = []

            def keep(generation: int) -> None:
                keys.write(agency, generation, key)
                made.append(generation)

            retired = feed_versions.record_key(conn, agency, self.clock.now(), keep)
            act.detail.update(op="make" if retired is None else "rotate", generation=made[0])
        if retired is not None:
            keys.forget(agency, retired)
        return {"agency": agency, "key": key, "generation": made[0]}

    def set_webhook(self, principal: Principal, agency: str, url: str) -> dict[str, Any]:
        """Where the agency's new versions are announced (replacing any earlier URL)."""
        with self.door.writing(principal, Action.FEEDS_WEBHOOK) as (conn, act):
            decide(principal, Action.FEEDS_WEBHOOK)
            agency = rules.agency_name(agency)
            act.detail.update(agency=agency)
            url = values.webhook_url(url, where="URL")
            feed_versions.record_webhook(conn, agency, url, self.clock.now())
            act.detail.update(url=url)
            return {"agency": agency, "url": url}

    def publish(
        self,
        principal: Principal,
        *,
        day: dt.date | None = None,
        path: feeds.Way = "auto",
        unless_within: dt.timedelta | None = None,
    ) -> dict[str, Any]:
        """Cut the version for `day` (default today) of every agency with a feed key: who entered
        and who left its measures since the versions before, as known now (`derived.feeds`). The
        set is computed first, in a read of its own; the versions, their entries and their webhook
        calls are written in one transaction with the audit entry. With `unless_within` (a server's
        daily run, once per worker), nothing is computed when every feed already has a version for
        the day cut that recently."""
        act, now = Act(principal, Action.FEEDS_PUBLISH), self.clock.now()
        try:
            decide(principal, Action.FEEDS_PUBLISH)
            today = self.clock.today()
            day = day or today
            if day > today:
                raise BadInput(
                    f"--day: {day.isoformat()} is after today ({today.isoformat()}); a version says what "
                    "applies on its day as known when it is cut"
                )
            with self.store.read() as conn:
                keyed = feed_versions.agencies_with_keys(conn)
                for agency in keyed:
                    feed_versions.check_day(conn, agency, day)
                newest = {agency: feed_versions.newest(conn, agency) for agency in keyed}
                measures = feeds.measures_on(conn, day, now, keyed)
            if unless_within is not None and all(
                row is not None and row.day == day and from_storage(row.cut_at) >= now - unless_within
                for row in newest.values()
            ):
                return {"day": day, "cut_at": None, "versions": [], "paths": {}, "online": 0}
            ring = self._keys()
            if keyed:
                ring.current_id()  # no signing key, no version: said before anything is computed
            found = feeds.membership(self.store, day, now, measures, path=path)
        except XinyongError as exc:
            act.detail.update(day=day.isoformat() if day else None)
            self.door.log_failure(act, now, exc)
            raise
        timezones = {m.scheme: m.timezone for m in measures}
        cuts: list[feed_versions.Cut] = []
        with self.door.writing(principal, Action.FEEDS_PUBLISH) as (conn, act):
            decide(principal, Action.FEEDS_PUBLISH)
            act.detail.update(day=day.isoformat())
            for row in feed_versions.feed_rows(conn):
                if row.agency not in keyed:
                    continue  # its key was made after the set was computed: its first version comes next time
                key = ring.feeds().read(row.agency, row.key_generation)
                made = feed_versions.cut(
                    conn,
                    row.agency,
                    day,
                    now,
                    found.of(m for m in measures if m.agency == row.agency),
                    timezones,
                    key=key,
                    generation=row.key_generation,
                    signer=ring,
                )
                cuts.append(made)
                if made.created and made.document is not None and row.webhook_url:
                    self._announce(conn, ring, row.webhook_url, made.document, now)
            act.detail.update(versions={c.agency: c.version for c in cuts if c.created}, paths=found.paths)
        return {
            "day": day,
            "cut_at": now,
            "versions": [c.as_dict() for c in cuts],
            "paths": found.paths,
            "online": found.online,
        }

    @staticmethod
    def _announce(conn: Any, ring: KeyRing, url: str, document: dict[str, Any], now: dt.datetime) -> None:
        """The webhook call announcing a new version, queued in the version's own transaction: the
        version's number, day and digest (its content is read from the feed), signed."""
        body = rules.canonical(
            {
                "agency": document["agency"],
                "version": document["version"],
                "day": document["day"],
                "cut_at": document["cut_at"],
                "feed_key": document["feed_key"],
                "digest": rules.digest(document),
                "add": len(document["add"]),
                "del": len(document["del"]),
            }
        )
        signed_by, signature = ring.sign(body)
        outbox.enqueue(
            conn,
            channel=outbox.WEBHOOK,
            address=url,
            body=body.decode("utf-8"),
            signed_by=signed_by,
            signature=signature,
            message_id=f"{document['agency']}/{document['version']}/{uuid.uuid4().hex}",
            now=now,
        )

    def show(self, principal: Principal, agency: str, *, since: int = 0) -> dict[str, Any]:
        """The agency's versions after version `since` (0: every one), each as it was signed: an
        enforcer reads its own agency's feed only."""
        gate(principal, Action.FEEDS_READ)
        with self.door.reading(principal, Action.FEEDS_READ, "feed") as (conn, act):
            agency = rules.agency_name(agency)
            act.detail.update(agency=agency, since=since)
            decide(principal, Action.FEEDS_READ, agency=agency)
            if since < 0:
                raise BadInput(f"--since: a version number, 0 or more, not {since}")
            feed_versions.require_feed(conn, agency)
            found = feed_versions.versions(conn, agency, since)
            act.detail.update(versions=len(found))
            return {"agency": agency, "versions": found}

    def acknowledge(self, principal: Principal, agency: str, version: int) -> dict[str, Any]:
        """The agency has applied `version` of its feed, and so every version before it."""
        gate(principal, Action.FEEDS_ACK)
        with self.door.writing(principal, Action.FEEDS_ACK) as (conn, act):
            agency = rules.agency_name(agency)
            act.detail.update(agency=agency, version=version)
            decide(principal, Action.FEEDS_ACK, agency=agency)
            feed_versions.require_feed(conn, agency)
            if version < 1:
                raise BadInput(f"VERSION: versions are numbered from 1, not {version}")
            made = delisting.acknowledge(conn, agency, version, self.clock.now(), principal.audit_actor)
            act.detail.update(acknowledged=made.acknowledged)
            return {
                "agency": made.agency,
                "version": made.version,
                "acknowledged_at": made.acknowledged_at,
                "acknowledged": made.acknowledged,
            }

    def delays(self, principal: Principal) -> dict[str, Any]:
        """Every agency's delisting delays (public: no subject is named or countable in it)."""
        decide(principal, Action.FEEDS_DELAYS)
        now = self.clock.now()
        late = dt.timedelta(seconds=settings.current().feed_ack_late)
        with self.store.read() as conn:
            found = delisting.delays(conn, now, late)
        return {"as_of": now, "late_after_seconds": late.total_seconds(), "agencies": [d.as_dict() for d in found]}
