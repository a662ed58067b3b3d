"""Upkeep a server worker does on its own, so that no deployment has to remember a cron line:

- at a quiet hour of the night, the who-looked index's newest runs merged. "Who looked at my data"
  costs a lookup a seek per run of the index, and a busy server makes a run every 4,096 audit
  entries (`audit.compact`). The merge moves rows in short steps, so checks never wait for all
  of it, but it reads and rewrites much of the index: a quiet hour is the time for it;
- every hour, an audit checkpoint: the log's head signed and published (`audit checkpoint`), so
  that a log rewritten since is caught.

Each worker has its own thread per job: the first to get there does the work, the others find
nothing left to merge, or a checkpoint made moments ago.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

from xinyong import settings
from xinyong.rules.clock import DEFAULT_TIMEZONE
from xinyong.security.access import Principal, Role
from xinyong.service import Service

log = logging.getLogger("xinyong.interfaces.upkeep")

# Who the upkeep is logged as: an administrator's act, by the server itself.
NIGHTLY = Principal(Role.ADMIN, "nightly", channel="server")
HOURLY = Principal(Role.ADMIN, "hourly", channel="server")


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


class Job(threading.Thread):
    """A daemon thread that runs `work` whenever `wait` (seconds from now) has passed, until stopped;
    a failed run is logged and tried again the next time, and the server goes on."""

    def __init__(self, name: str, service: Service, wait: Callable[[dt.datetime], float], work: Callable[[], str]):
        super().__init__(name=f"xinyong-{name}", daemon=True)
        self.service, self.wait, self.work = service, wait, work
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.wait(self.service.clock.now())):
            self.run_once()

    def run_once(self) -> None:
        try:
            log.info("%s: %s", self.name, self.work())
        except Exception:
            log.exception("%s failed; tried again next time", self.name)

    def stop(self) -> None:
        self._stopping.set()


def compaction(service: Service, at: dt.time) -> Job:
    """The who-looked index merged every night at `at`, local time."""

    def work() -> str:
        result = service.audit.compact(NIGHTLY)
        return f"who-looked index: {result.merged} runs merged, {result.runs_after} now"

    return Job("nightly", service, lambda now: seconds_until(now, at), work)


def checkpoints(service: Service, every: float) -> Job:
    """An audit checkpoint every `every` seconds, unless another worker made one in the last half."""
    within = dt.timedelta(seconds=every / 2)

    def work() -> str:
        made = service.audit.checkpoint(HOURLY, unless_within=within)
        return f"audit checkpoint {made.n} at entry {made.seq}" if made else "a recent checkpoint stands"

    return Job("hourly", service, lambda _now: every, work)


def start(service: Service) -> list[Job]:
    """Start the jobs the settings ask for: compaction at XINYONG_AUDIT_COMPACT_AT, checkpoints
    every XINYONG_AUDIT_CHECKPOINT_EVERY seconds (either may be off)."""
    chosen = settings.current()
    jobs = []
    if chosen.audit_compact_at is not None:
        jobs.append(compaction(service, chosen.audit_compact_at))
    if chosen.audit_checkpoint_every > 0:
        jobs.append(checkpoints(service, chosen.audit_checkpoint_every))
    for job in jobs:
        job.start()
    return jobs
