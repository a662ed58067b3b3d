"""Group commit for the audit entries of reads: many requests, one transaction, nobody answered early.

Every check appends an audit entry, so under load the check endpoint is a write per request. One
write transaction per request would make the store's commit the bottleneck (and on SQLite,
serialise the whole server on the write lock). Instead each request queues its entry and waits;
the first waiter schedules a flush that lets the requests already in flight join, appends the
whole batch in one transaction, then wakes every waiter. A request answers only after its entry is
committed; if the commit fails, each waiter gets the error and the caller a 503 — an answer never
leaves without its entry.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from xinyong.service import AuditEntry, Service

# How many loop iterations a flush may wait for more entries, as long as each brings some. Under
# granian requests reach the loop a few per iteration rather than all at once, and a commit has a
# fixed cost (~165 µs of CPU) whatever its size: measured under the check benchmark, flushing after
# one iteration made half the commits carry a single entry. When an iteration brings nothing new
# the flush goes at once, so a lone request waits one iteration, as before.
JOIN_ITERATIONS = 8


async def gather_arrivals(count: Callable[[], int]) -> None:
    """Yield to the loop while the requests arriving keep adding to what waits (at most a few
    times): the audit writer's entries, the checks asked together (`api.checks.Gathered`)."""
    seen = -1
    for _ in range(JOIN_ITERATIONS):
        if count() == seen:
            return
        seen = count()
        await asyncio.sleep(0)


class AuditWriter:
    def __init__(self, service: Service) -> None:
        self.service = service
        self._pending: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        # One thread of the writer's own for the commits: SQLite and psycopg release the GIL while
        # they wait for the disk or the server, so the event loop goes on answering (and queueing
        # the next batch) instead of stalling for the length of a commit. Not anyio's thread pool:
        # its per-call bookkeeping (capacity limiter, a scan of every task on the loop) cost more
        # CPU than the commit itself in a profile of the server under load. Commits are serial
        # anyway (one flush at a time), so one thread is all it needs.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xinyong-audit")
        weakref.finalize(self, self._thread.shutdown, wait=False)  # an app let go lets its thread go

    async def append(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        loop = asyncio.get_running_loop()
        futures = []
        for entry in entries:
            future: asyncio.Future[None] = loop.create_future()
            self._pending.append((entry, future))
            futures.append(future)
        if self._flushing is None:
            self._flushing = loop.create_task(self._flush())
        for future in futures:
            await future

    async def _gather(self) -> None:
        await gather_arrivals(lambda: len(self._pending))

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await self._gather()
                batch, self._pending = self._pending, []
                try:
                    await loop.run_in_executor(self._thread, self.service.door.log, [entry for entry, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flushing = None
