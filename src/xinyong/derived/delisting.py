"""Acknowledgements of feed versions, and the delisting delay they measure.

People keep being refused a ticket after their restriction has ended, for as long as the agency
has not applied the version of its feed that removed them. So each agency acknowledges the
versions it has applied, and the platform publishes, per agency, how long that took: for every
subject a version removed from the agency's whole set (a real removal, not a key's rotation), the
time from the measure ending for the subject (`feed_entries.ended_at`, see `derived.feed_versions`) to the
agency's acknowledgement of that version; p50, p90 and the longest, and the removals not yet
acknowledged, late once older than XINYONG_FEED_ACK_LATE. A delay is never less than zero (an agency
that acknowledged before the day began was ready).

An acknowledgement covers the version and every earlier one not yet acknowledged: versions are
applied in order, and an agency that has applied version 7 has applied 6. The first acknowledgement
of a version is kept; acknowledging it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select, update

from xinyong.errors import NotFound
from xinyong.rules import feeds
from xinyong.rules.clock import from_storage, to_storage
from xinyong.storage import tables as t


@dataclass(frozen=True)
class Acknowledged:
    agency: str
    version: int
    acknowledged_at: dt.datetime
    acknowledged: int  # versions this acknowledgement covered that were not acknowledged before


def acknowledge(conn: Connection, agency: str, version: int, now: dt.datetime, actor: str) -> Acknowledged:
    """The agency has applied `version` (and so every one before it)."""
    v = t.feed_versions
    row = conn.execute(select(v).where(v.c.agency == agency, v.c.version == version)).first()
    if row is None:
        raise NotFound(f"VERSION: {agency}'s feed has no version {version}")
    changed = conn.execute(
        update(v)
        .where(v.c.agency == agency, v.c.version <= version, v.c.acknowledged_at.is_(None))
        .values(acknowledged_at=to_storage(now), acknowledged_by=actor)
    ).rowcount
    at = from_storage(row.acknowledged_at) if row.acknowledged_at is not None else now
    return Acknowledged(agency, version, at, changed)


def percentile(sorted_values: list[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


@dataclass(frozen=True)
class Delays:
    """One agency's delisting delays, in seconds."""

    agency: str
    removals: int  # subjects its feed removed, ever
    acknowledged: int
    p50: float | None
    p90: float | None
    longest: float | None
    unacknowledged: int
    late: int  # of those, older than the threshold
    oldest_unacknowledged: float | None  # seconds since the oldest unacknowledged removal ended
    versions: int
    newest_day: dt.date | None
    newest_acknowledged: int | None  # the newest version the agency acknowledged

    def as_dict(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "removals": self.removals,
            "acknowledged": self.acknowledged,
            "p50_seconds": self.p50,
            "p90_seconds": self.p90,
            "max_seconds": self.longest,
            "unacknowledged": self.unacknowledged,
            "late": self.late,
            "oldest_unacknowledged_seconds": self.oldest_unacknowledged,
            "versions": self.versions,
            "newest_day": self.newest_day.isoformat() if self.newest_day else None,
            "newest_acknowledged": self.newest_acknowledged,
        }


def delays(conn: Connection, now: dt.datetime, late_after: dt.timedelta) -> list[Delays]:
    """Every agency with a feed, with its delisting delays as of `now`."""
    e, v = t.feed_entries, t.feed_versions
    removals = (
        select(e.c.agency, e.c.ended_at, v.c.acknowledged_at)
        .select_from(e.join(v, and_(v.c.agency == e.c.agency, v.c.version == e.c.version)))
        .where(e.c.measure == feeds.WHOLE, e.c.op == "del", e.c.rekeyed.is_(False))
    )
    taken: dict[str, list[float]] = {}
    waiting: dict[str, list[float]] = {}
    for agency, ended_at, acknowledged_at in conn.execute(removals):
        ended = from_storage(ended_at)
        if acknowledged_at is not None:
            seconds = (from_storage(acknowledged_at) - ended).total_seconds()
            taken.setdefault(agency, []).append(max(0.0, seconds))
        else:
            waiting.setdefault(agency, []).append(max(0.0, (now - ended).total_seconds()))
    summary = select(v.c.agency, v.c.version, v.c.day, v.c.acknowledged_at).order_by(v.c.agency, v.c.version)
    versions: dict[str, list[Any]] = {}
    for row in conn.execute(summary):
        versions.setdefault(row.agency, []).append(row)
    found = []
    limit = late_after.total_seconds()
    for (agency,) in conn.execute(select(t.feed_agencies.c.agency).order_by(t.feed_agencies.c.agency)):
        done, open_ = sorted(taken.get(agency, [])), waiting.get(agency, [])
        rows = versions.get(agency, [])
        acknowledged = [row.version for row in rows if row.acknowledged_at is not None]
        found.append(
            Delays(
                agency=agency,
                removals=len(done) + len(open_),
                acknowledged=len(done),
                p50=percentile(done, 0.5),
                p90=percentile(done, 0.9),
                longest=done[-1] if done else None,
                unacknowledged=len(open_),
                late=sum(1 for seconds in open_ if seconds > limit),
                oldest_unacknowledged=max(open_) if open_ else None,
                versions=len(rows),
                newest_day=rows[-1].day if rows else None,
                newest_acknowledged=max(acknowledged) if acknowledged else None,
            )
        )
    return found
