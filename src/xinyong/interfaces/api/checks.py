"""The check endpoint, the hot path: an enforcer asks whether a measure applies to a subject.

It is a FastAPI route so that it is in the OpenAPI document with its parameters and answer, but a
lean one: no dependencies to resolve, no response model to validate at run time (the answer is
built by the service and serialised once with orjson), the token from the in-process cache, and
on SQLite the computation on the event loop. A repeated question is answered from `Answers`
without asking the service again; either way the audit entry is appended by the group-commit
writer and awaited before the answer goes out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any, NamedTuple, TypeVar
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BeforeValidator
from starlette.types import Receive, Scope, Send

from xinyong.errors import Unavailable, XinyongError
from xinyong.interfaces.api import auth, models, problems
from xinyong.interfaces.api.auditwriter import AuditWriter, gather_arrivals
from xinyong.interfaces.api.auth import TokenCache
from xinyong.interfaces.headers import HEADERS as SECURITY_HEADERS
from xinyong.presentation import outputs
from xinyong.rules import values
from xinyong.rules.clock import local_day
from xinyong.security.access import Principal
from xinyong.service import AuditEntry, Service

log = logging.getLogger("xinyong.interfaces.api")
router = APIRouter(prefix="/v1", tags=["checks"], responses=models.PROBLEMS)


class JSON(JSONResponse):
    """JSON serialised by orjson (dates as ISO text), once, with no response model to validate."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


PATH = "/v1/checks/{subject}/{scheme}/{measure}"


@router.get(
    "/checks/{subject}/{scheme}/{measure}",
    response_class=JSON,
    responses={
        200: {"model": models.CheckOut, "description": "The answer"},
    },
    openapi_extra={"security": [{"HTTPBearer": []}]},
)
async def check(
    request: Request,
    subject: Annotated[str, Path(max_length=32, description="The subject's id (resident number or unified code).")],
    scheme: Annotated[str, Path(max_length=64)],
    measure: Annotated[str, Path(max_length=64)],
    as_of: Annotated[
        dt.date | None,
        Query(description="The day asked about; default today.", json_schema_extra=models.DAY_SCHEMA),
        BeforeValidator(models.read_day),
    ] = None,
) -> Response:
    """Does measure SCHEME/MEASURE apply to the subject on the day? An enforcer asking about a
    measure its agency implements hears yes or no, since when, the legal basis and how to contest
    — never a score or a record. Every check is logged, and the subject can see it."""
    headers = request.headers
    answers: Answers = request.app.state.answers
    body = await answers.answer(auth.authorization(request), headers.get("x-purpose"), subject, scheme, measure, as_of)
    return Response(body, media_type="application/json")


@router.post(
    "/checks/{scheme}/{measure}",
    response_class=JSON,
    responses={200: {"model": models.BatchCheckOut, "description": "The answers, in the order asked"}},
    openapi_extra={"security": [{"HTTPBearer": []}]},
)
async def check_batch(
    request: Request,
    scheme: Annotated[str, Path(max_length=64)],
    measure: Annotated[str, Path(max_length=64)],
    asked: models.BatchCheckIn,
) -> Response:
    """Does measure SCHEME/MEASURE apply to each of up to 1,000 subjects (a flight manifest) on
    the day? Each answer is the single check's, with the id as sent, or that id's own error (an id
    that is not valid or not registered); each subject's check is logged, as a single one is."""
    answers: Answers = request.app.state.answers
    service = answers.service
    principal = answers.tokens.principal(auth.authorization(request))
    purpose = request.headers.get("x-purpose")
    name = f"{scheme}/{measure}"
    day = asked.as_of or local_day(service.clock.now())
    entries: list[AuditEntry] = []
    ask = partial(
        service.questions.check_many,
        principal,
        asked.subjects,
        name,
        as_of=day,
        purpose=purpose[:200] if purpose else None,
        defer=entries,
    )
    found = await answers.gathered.read(ask)
    await answers.writer.append(entries)
    return JSON(outputs.batch_answers(name, day, asked.subjects, found))


class Answer(NamedTuple):
    """A finished answer of the endpoint and what it was computed under."""

    principal: Principal
    tag: tuple[Any, ...]
    body: bytes
    entry: AuditEntry


class Answers:
    """The endpoint's answers: each computed with the checks that arrived with it, or, for a
    repeated identical request, the finished answer again.

    Under load an enforcer asks the same few questions again and again. While the caller is the
    same principal (the token cache hands back the same object until the token must be looked up
    again, so a revoked or expired token is noticed exactly as without this) and the ledger
    fingerprint is unchanged (`AnswerCache.tag`), the service would authorise the same way and
    return the same answer: only the audit entry's time differs. So the answer's bytes are kept,
    and each request gets its own entry, stamped now. Only where the service caches answers
    (SQLite); a refusal is never kept, so it is decided and logged by the service every time.
    """

    MAX_ENTRIES = 100_000

    def __init__(self, service: Service, tokens: TokenCache, writer: AuditWriter) -> None:
        self.service, self.tokens, self.writer = service, tokens, writer
        self.enabled = service.answers.enabled
        self.gathered = Gathered(service, writer)
        self._answers: dict[tuple[Any, ...], Answer] = {}

    async def answer(
        self,
        authorization: str | None,
        purpose: str | None,
        subject: str,
        scheme: str,
        measure: str,
        as_of: dt.date | None,
    ) -> bytes:
        """The answer's JSON, once its audit entry is stored."""
        principal = self.tokens.principal(authorization)
        service, writer = self.service, self.writer
        purpose = purpose[:200] if purpose else None
        now = service.clock.now()
        # The day is fixed here and handed to the service, so an answer kept for a day is one
        # computed for that day even across midnight.
        day = as_of or local_day(now)
        key = (subject, scheme, measure, day, purpose, principal.token_id, principal.name)
        tag: tuple[Any, ...] = ()
        if self.enabled:
            tag = service.answers.tag()
            kept = self._answers.get(key)
            if kept is not None and kept.principal is principal and kept.tag == tag:
                await writer.append([kept.entry.stamped(now)])
                return kept.body
        data, entry = await self.gathered.ask(principal, purpose, subject, f"{scheme}/{measure}", day)
        body = orjson.dumps(data)
        if self.enabled:
            if len(self._answers) >= self.MAX_ENTRIES:
                self._answers.clear()
            self._answers[key] = Answer(principal, tag, body, entry)
        return body


T = TypeVar("T")

# Threads reading groups of checks on a server's database at once: with one, a read slowed by a
# bulk import's millions of rows not yet committed held up every group behind it (PostgreSQL, paced
# checks during an import: p99 808 ms against p50 10 ms).
READERS = 4

Asked = tuple[Principal, str, dt.date, str | None]  # who asks, which measure, about which day, why


class Gathered:
    """Checks that arrive together are asked together: one read for all of them.

    A check the answer cache cannot answer reads the subject and its served row, a transaction and
    a query of their own. Under load many arrive within one turn of the event loop, so, as the
    audit writer gathers their entries, this gathers the questions (per caller, measure, day and
    purpose) and asks each group with `Questions.check_many`: one read transaction and one query
    for the group, each subject still authorised, answered and logged as a single check. A lone
    request waits one turn of the loop, as its entry does. On SQLite the read runs on the loop (a
    thread hop costs more than it would move); on a server's database, on a few threads of their
    own, so the loop gathers the next groups meanwhile. Each request answers once its own entry is
    stored.
    """

    def __init__(self, service: Service, writer: AuditWriter) -> None:
        self.service, self.writer = service, writer
        self._pending: dict[Asked, list[tuple[str, asyncio.Future[tuple[dict[str, Any], AuditEntry]]]]] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._readers: ThreadPoolExecutor | None = None
        if not service.store.backend.reads_in_process:
            self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="xinyong-checks")
            weakref.finalize(self, self._readers.shutdown, wait=False)
        self._waiting = 0
        self._settling: set[asyncio.Task[None]] = set()

    async def ask(
        self, principal: Principal, purpose: str | None, subject: str, measure: str, day: dt.date
    ) -> tuple[dict[str, Any], AuditEntry]:
        """The answer about one subject and its audit entry, once the entry is stored."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[dict[str, Any], AuditEntry]] = loop.create_future()
        self._pending.setdefault((principal, measure, day, purpose), []).append((subject, future))
        self._waiting += 1
        if self._flushing is None:
            self._flushing = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await gather_arrivals(lambda: self._waiting)
                groups, self._pending, self._waiting = self._pending, {}, 0
                for asked, waiting in groups.items():
                    # Each group answered by a task of its own: the next groups are gathered (and,
                    # on a server's database, read) while this one is read and its entries stored.
                    task = loop.create_task(self._answer(asked, waiting))
                    self._settling.add(task)
                    task.add_done_callback(self._settling.discard)
        finally:
            self._flushing = None

    async def _answer(
        self, asked: Asked, waiting: list[tuple[str, asyncio.Future[tuple[dict[str, Any], AuditEntry]]]]
    ) -> None:
        entries: list[AuditEntry] = []
        ask = partial(self._ask, asked, [subject for subject, _ in waiting], entries)
        try:
            answers = await self.read(ask)
        except Exception as exc:
            _fail(waiting, exc)
            return
        await self._settle(waiting, answers, entries)

    async def read(self, ask: Callable[[], T]) -> T:
        """Run a read of the store: on the loop on SQLite, on the readers' threads otherwise."""
        if self._readers is None:
            return ask()
        return await asyncio.get_running_loop().run_in_executor(self._readers, ask)

    def _ask(self, asked: Asked, subjects: list[str], entries: list[AuditEntry]) -> list[dict[str, Any] | XinyongError]:
        principal, measure, day, purpose = asked
        return self.service.questions.check_many(
            principal, subjects, measure, as_of=day, purpose=purpose, defer=entries
        )

    async def _settle(
        self,
        waiting: list[tuple[str, asyncio.Future[tuple[dict[str, Any], AuditEntry]]]],
        answers: list[dict[str, Any] | XinyongError],
        entries: list[AuditEntry],
    ) -> None:
        try:
            await self.writer.append(entries)
        except Exception as exc:
            _fail(waiting, exc)
            return
        done = iter(entries)  # one per answer given, in order; a refusal's was written already
        for (_, future), answer in zip(waiting, answers, strict=True):
            if future.done():
                continue
            if isinstance(answer, XinyongError):
                future.set_exception(answer)
            else:
                future.set_result((answer, next(done)))


def _fail(waiting: list[tuple[str, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in waiting:
        if not future.done():
            future.set_exception(exc)


PATTERN = re.compile(r"^/v1/checks/([^/]{1,32})/([^/]{1,64})/([^/]{1,64})$")


class FastPath:
    """The check endpoint served before FastAPI sees the request.

    FastAPI's per-request machinery (middleware stack, route matching over every route, dependency
    and parameter resolution) costs more than a cached check itself, so the application's
    `__call__` hands GET /v1/checks/… here first. It validates exactly what the OpenAPI document
    declares for the route above (which stays the documented one), answers errors with the same
    problem+json, and lets anything else — including a path that does not fit — fall through to
    FastAPI, which then answers with its own validation problem.
    """

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    def match(self, scope: Scope) -> re.Match[str] | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        return PATTERN.match(scope["path"])

    async def __call__(self, found: re.Match[str], scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._answer(found, scope)
        except Unavailable as exc:
            log.error("store unavailable on GET %s: %s", scope["path"], exc.message)
            response = problems.unavailable(scope["path"])
        except XinyongError as exc:
            response = problems.render_for(exc, scope["path"], ("as_of", "subject", "scheme", "measure"))
        except Exception:
            log.exception("unhandled error on GET %s", scope["path"])
            response = problems.problem_response(500, "an internal error occurred; it has been logged")
        else:
            # The two ASGI messages written directly: a Response object would rebuild the same
            # headers for every answer. The security headers are the site's (`interfaces.headers`),
            # made once: this path answers before the middleware that adds them elsewhere.
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            headers.extend(SECURITY_HEADERS)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        response.raw_headers.extend(SECURITY_HEADERS)
        await response(scope, receive, send)

    async def _answer(self, found: re.Match[str], scope: Scope) -> bytes:
        why = problems.malformed(scope)  # the rule every other route has (`problems.Guard`)
        if why is not None:
            raise problems.Malformed(why)
        authorization = purpose = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-purpose":
                purpose = value.decode("latin-1")
        day = None
        if scope["query_string"]:
            text = parse_qs(scope["query_string"].decode("latin-1")).get("as_of", [""])[-1]
            if text:
                day = values.day(text, where="as_of")  # the one rule for a day, as the route's
        subject, scheme, measure = found.groups()
        return await self.answers.answer(authorization, purpose, subject, scheme, measure, day)
