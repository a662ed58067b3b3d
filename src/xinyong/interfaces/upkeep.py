"""Upkeep a server worker does on its own, so that no deployment has to remember a cron line:

- at a quiet hour of the night, the who-looked index's newest runs merged. "Who looked at my data"
  costs a lookup a seek per run of the index, and a busy server makes a run every 4,096 audit
  entries (`audit.compact`). The merge moves rows in short steps, so checks never wait for all
  of it, but it reads and rewrites much of the index: a quiet hour is the time for it;
- every hour, an audit checkpoint: the log's head signed and published (`audit checkpoint`), so
  that a log rewritten since is caught;
- early every day, the day's feed versions for enforcer agencies (`feeds publish`), so that a
  measure that ends by expiry on the day is in that day's version;
- every minute, the outbox delivered (`notices deliver`): notice e-mails and feed webhooks, each
  retried with its backoff until it gets through.

Each worker has its own thread per job: the first to get there does the work, the others find
nothing left to merge, a checkpoint made moments ago, the day's versions cut, or the deliveries
claimed.
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
OUTBOX = Principal(Role.ADMIN, "outbox", channel="server")


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


def feed_versions(service: Service, at: dt.time) -> Job:
    """The day's feed versions cut every day at `at`, local time."""

    def work() -> str:
        # Every worker wakes at `at`: one that finds the day's versions just cut computes nothing; two
        # at once both compute, and the second writer finds nothing changed (`derived.feed_versions.cut`).
        found = service.feeds.publish(NIGHTLY, unless_within=dt.timedelta(hours=1))
        made = [f"{v['agency']} {v['version']}" for v in found["versions"] if v["created"]]
        return f"feed versions for {found['day']}: {', '.join(made) or 'none new'}"

    return Job("feeds", service, lambda now: seconds_until(now, at), work)


def deliveries(service: Service, every: float) -> Job:
    """The outbox delivered every `every` seconds; a run with nothing due leaves no audit entry."""

    def work() -> str:
        run = service.notices.deliver(OUTBOX, log_idle=False)
        return f"outbox: {run.delivered} delivered, {run.failed} failed"

    return Job("outbox", service, lambda _now: every, work)


def start(service: Service) -> list[Job]:
    """Start the jobs the settings ask for: compaction at XINYONG_AUDIT_COMPACT_AT, checkpoints
    every XINYONG_AUDIT_CHECKPOINT_EVERY seconds, feed versions at XINYONG_FEED_PUBLISH_AT, the
    outbox every XINYONG_OUTBOX_EVERY seconds (each may be off)."""
    chosen = settings.current()
    jobs = []
    if chosen.audit_compact_at is not None:
        jobs.append(compaction(service, chosen.audit_compact_at))
    if chosen.audit_checkpoint_every > 0:
        jobs.append(checkpoints(service, chosen.audit_checkpoint_every))
    if chosen.feed_publish_at is not None:
        jobs.append(feed_versions(service, chosen.feed_publish_at))
    if chosen.outbox_every > 0:
        jobs.append(deliveries(service, chosen.outbox_every))
    for job in jobs:
        job.start()
    return jobs
