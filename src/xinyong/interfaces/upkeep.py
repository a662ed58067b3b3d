"""Upkeep a server worker does at a quiet hour: the who-looked index's newest runs merged.

"Who looked at my data" costs a lookup a seek per run of the index, and a busy server makes a run
every 4,096 audit entries (`audit.compact`). Merging them is a write that on SQLite holds the
store's write lock for seconds, so it waits for the night rather than running beside the checks;
doing it here means no deployment has to remember a cron line for it. Each worker has its own
thread: the first to get there merges, the others find nothing left (compactions take turns).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from zoneinfo import ZoneInfo

from xinyong import settings
from xinyong.rules.clock import DEFAULT_TIMEZONE
from xinyong.security.access import Principal, Role
from xinyong.service import Service

log = logging.getLogger("xinyong.interfaces.nightly")

# Who the night's work is logged as: an administrator's act, by the server itself.
NIGHTLY = Principal(Role.ADMIN, "nightly", channel="server")


def seconds_until(now: dt.datetime, at: dt.time, timezone: str = DEFAULT_TIMEZONE) -> float:
    """Seconds from `now` to the next `at` on the local clock, strictly later (a day at most).

    The wall-clock time is found on the calendar, so a day is 24 hours or, across a daylight-saving
    change in zones that have one, 23 or 25.
    """
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    while True:
        # By timestamps: Python subtracts two times of one zone by their wall clocks, ignoring
        # the change of offset between them.
        seconds = dt.datetime.combine(day, at, zone).timestamp() - now.timestamp()
        if seconds > 0:
            return seconds
        day += dt.timedelta(days=1)


class Nightly(threading.Thread):
    """A daemon thread that compacts the who-looked index once a day at `at`, local time."""

    def __init__(self, service: Service, at: dt.time) -> None:
        super().__init__(name="xinyong-nightly", daemon=True)
        self.service, self.at = service, at
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(seconds_until(self.service.clock.now(), self.at)):
            self.run_once()

    def run_once(self) -> None:
        try:
            result = self.service.audit.compact(NIGHTLY)
        except Exception:  # a failed night is logged and tried again the next; the server goes on
            log.exception("nightly compaction of the who-looked index failed")
            return
        log.info("who-looked index: %d runs merged, %d now", result.merged, result.runs_after)

    def stop(self) -> None:
        self._stopping.set()


def start(service: Service) -> Nightly | None:
    """Start the nightly thread at XINYONG_AUDIT_COMPACT_AT, unless that is "off"."""
    at = settings.current().audit_compact_at
    if at is None:
        return None
    nightly = Nightly(service, at)
    nightly.start()
    return nightly
