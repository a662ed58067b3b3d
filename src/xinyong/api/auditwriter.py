"""Group commit for the audit entries of reads: many requests, one transaction, nobody answered early.

Every check appends an audit entry, so under load the check endpoint is a write per request. One
write transaction per request would make the store's commit the bottleneck (and on SQLite,
serialise the whole server on the write lock). Instead each request queues its entry and waits;
the first waiter schedules a flush that yields once to the event loop (so the requests already in
flight can join), appends the whole batch in one transaction, then wakes every waiter. A request
answers only after its entry is committed; if the commit fails, each waiter gets the error and
the caller a 503 — an answer never leaves without its entry.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from xinyong import audit
from xinyong.service import Service


class AuditWriter:
    def __init__(self, service: Service) -> None:
        self.service = service
        self._pending: list[tuple[audit.Entry, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        # The commit runs in a worker thread: SQLite and psycopg release the GIL while they wait
        # for the disk or the server, so the event loop goes on answering (and queueing the next
        # batch) instead of stalling every connection for the length of a commit or a WAL
        # checkpoint. In-process measurements showed the same throughput either way on SQLite,
        # so the thread costs nothing and bounds the damage of a slow disk.
        self._inline = False

    async def append(self, entries: list[audit.Entry]) -> None:
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

    async def _flush(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)
                batch, self._pending = self._pending, []
                try:
                    entries = [entry for entry, _ in batch]
                    if self._inline:
                        self.service.log(entries)
                    else:
                        await run_in_threadpool(self.service.log, entries)
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
