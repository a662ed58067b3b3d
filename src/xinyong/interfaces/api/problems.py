"""Errors over HTTP: RFC 9457 problem+json, each problem pointing at the field it is about.

The library's errors are values (`XinyongError` with `Problem`s: where and why); here they are
rendered once for every route. Messages that name a field the way the command line does
("--reason: …") become a JSON pointer ("#/reason") for body fields or a `parameter` for query
and path parameters; an import's line-level problems keep their line and column. Nothing else
reaches a caller: an unexpected exception is logged on the server and answered with a generic 500.

A request that cannot be a sensible question — a NUL byte in its path, query, headers or form
(PostgreSQL cannot store one), two Authorization headers — is refused with a 400 before routing (`Guard`, and
the check's fast path by the same rule, `malformed`). What the server logs never carries a
person's full id: messages and stack traces pass through `identifiers.mask_text` (`MaskIds`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xinyong.errors import BadInput, Problem, Unavailable, XinyongError
from xinyong.rules.identifiers import mask_text

log = logging.getLogger("xinyong.interfaces.api")


class MaskIds(logging.Filter):
    """Every person's id in a record of this logger masked (`identifiers.mask_text`): the message
    with its arguments (request paths), and the stack trace, formatted here once (a driver's
    error names the values it was given)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_text(record.getMessage()), None
        if record.exc_info:
            record.exc_text = mask_text(record.exc_text or self._formatter.formatException(record.exc_info))
            record.exc_info = None  # no handler formats the unmasked trace again
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


log.addFilter(MaskIds())

MEDIA_TYPE = "application/problem+json"
TYPES = {
    400: "bad-input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "refused",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    500: "internal",
    503: "unavailable",
}
TITLES = {
    400: "Bad input",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Refused by a rule",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
    503: "Service unavailable",
}
_FIELD = re.compile(r"^(?:--)?([a-z][a-z0-9_-]*): ")
_LINE_COLUMN = re.compile(r"^line (\d+)(?:, column (.+))?$")


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:xinyong:problem:{TYPES.get(status, 'error')}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


class Malformed(BadInput):
    """A request that cannot be a sensible question (HTTP 400): see `malformed`."""

    http_status = 400


def malformed(scope: Scope) -> str | None:
    """Why a request is refused before anything reads it, or None: a NUL byte in its path, query
    or a header (no id, name or code has one, and PostgreSQL cannot store one in text), or two
    Authorization headers (which would be read one way here and another there). The one rule for
    every route, the check's fast path included."""
    if "\x00" in scope["path"]:
        return "the path contains a NUL byte"
    query: bytes = scope["query_string"]
    if query and (b"%00" in query or b"\x00" in query):
        return "the query contains a NUL byte"
    authorizations = 0  # on the check's hot path: one pass over the headers
    for name, value in scope["headers"]:
        if b"\x00" in value:
            return "a header contains a NUL byte"
        if name == b"authorization":
            authorizations += 1
    if authorizations > 1:
        return TWO_AUTHORIZATIONS
    return None


TWO_AUTHORIZATIONS = "two Authorization headers: send one (Authorization: Bearer <token>), or none as the public"


def _locate(field: str, query_names: Iterable[str]) -> dict[str, str]:
    name = field.replace("-", "_")
    if name in query_names:
        return {"parameter": name}
    return {"pointer": f"#/{name}"}


def problem_errors(exc: XinyongError, query_names: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One entry per problem, located by pointer, parameter, or line and column."""
    names = set(query_names)
    found: list[dict[str, Any]] = []
    for problem in exc.problems:
        found.append(_problem_entry(problem, names))
    if not found:
        match = _FIELD.match(exc.message)
        if match:
            found.append({"detail": exc.message[match.end() :], **_locate(match.group(1), names)})
    return found


def _problem_entry(problem: Problem, names: set[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"detail": problem.why}
    if problem.line is not None:
        entry["line"] = problem.line
    if problem.column is not None:
        entry["column"] = problem.column
        entry["pointer"] = f"#/{problem.column}"
    elif problem.where and _FIELD.match(problem.where + ": "):
        # A value refused on its own (`rules.values`), named as the command line names it
        # ("--occurred-on"): the field it came in, as a pointer or a parameter.
        entry.update(_locate(problem.where.removeprefix("--"), names))
    elif problem.where and not _LINE_COLUMN.match(problem.where):
        entry["where"] = problem.where
    return entry


def render(exc: XinyongError, request: Request) -> Response:
    names = list(request.query_params.keys()) + list(request.path_params.keys())
    return render_for(exc, request.url.path, names)


def render_for(exc: XinyongError, path: str, names: Iterable[str]) -> Response:
    """The problem for a library error; `names` are the request's parameters (not body fields)."""
    status = exc.http_status
    headers = {"WWW-Authenticate": 'Bearer realm="xinyong"'} if status == 401 else None
    if status == 503:
        log.error("store unavailable: %s", exc.message)
        detail = "the store is unavailable; try again later"
    else:
        detail = exc.message
    return problem_response(
        status,
        detail,
        instance=path,
        errors=problem_errors(exc, names) if status != 503 else (),
        headers=headers,
    )


def _pointer(loc: Sequence[int | str]) -> dict[str, str]:
    where, *path = loc
    if where == "body":
        return {"pointer": "#" + "".join(f"/{p}" for p in path)}
    if where in {"query", "path", "header"} and path:
        return {"parameter" if where != "header" else "header": str(path[0])}
    return {"pointer": "#" + "".join(f"/{p}" for p in loc)}


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"detail": str(e.get("msg", "invalid")), **_pointer(tuple(e.get("loc", ())))} for e in exc.errors()]
    return problem_response(422, "the request is not valid", instance=request.url.path, errors=errors)


async def _xinyong(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, XinyongError)
    if isinstance(exc, Unavailable):
        # The store is locked past its busy timeout, or the server is gone: say so, without details.
        log.error("store unavailable on %s %s: %s", request.method, request.url.path, exc.message)
        return unavailable(request.url.path)
    return render(exc, request)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
    return problem_response(
        exc.status_code, detail, instance=request.url.path, headers=dict(exc.headers) if exc.headers else None
    )


def unavailable(path: str) -> Response:
    return problem_response(
        503, "the store is unavailable; try again later", instance=path, headers={"Retry-After": "1"}
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The one place a stack trace goes: the server's log, never the caller.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "an internal error occurred; it has been logged", instance=request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(XinyongError, _xinyong)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(Guard)


class Guard:
    """In front of the routes (the API's and the pages'): a malformed request (`malformed`) gets
    its 400 problem before routing, and an unexpected exception is logged here, masked, and
    answered with the generic 500 — not handed on to the server, whose own log would print it
    unmasked (a driver's error names the values it was given). Pure ASGI, like `SizeLimit`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        why = malformed(scope)
        if why is None and _is_form(scope):
            # A form's fields (the pages' log-in, objections, decisions) go to the store as text
            # too: read the body (`SizeLimit` bounds it) and hand it on as it came.
            messages, why = await _read_form(receive)
            receive = _replaying(messages, receive)
        if why is not None:
            await problem_response(400, why, instance=scope["path"])(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BodyTooLarge:
            raise  # `SizeLimit`'s, outside: it answers 413
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                response = problem_response(
                    500, "an internal error occurred; it has been logged", instance=scope["path"]
                )
                await response(scope, receive, send)


def _is_form(scope: Scope) -> bool:
    if scope["method"] != "POST":
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind: bytes = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/x-www-form-urlencoded"
    return False


async def _read_form(receive: Receive) -> tuple[list[Message], str | None]:
    messages: list[Message] = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    return messages, "the form contains a NUL byte" if b"%00" in body or b"\x00" in body else None


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


class BodyTooLarge(Exception):
    pass


class SizeLimit:
    """Refuse request bodies over a limit (uploads to `upload_paths` get a larger one), by the
    Content-Length header when there is one and by counting otherwise. Pure ASGI: no per-request
    task or buffering, unlike Starlette's BaseHTTPMiddleware."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int, upload_paths: tuple[str, ...]) -> None:
        self.app, self.max_body, self.max_upload, self.upload_paths = app, max_body, max_upload, upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.max_upload if path.startswith(self.upload_paths) else self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(scope, receive, send, limit)
                    return
        seen = 0
        exceeded = False
        replaced = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            # A framework may turn the exception from `counted` into its own 400; whatever it
            # answers once the limit was passed is replaced by the 413 that says why.
            nonlocal replaced
            if exceeded:
                if message["type"] == "http.response.start" and not replaced:
                    replaced = True
                    await self._refuse(scope, receive, send, limit)
                return
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not replaced:
                replaced = True
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            413, f"the request body is larger than the limit of {limit} bytes", instance=scope["path"]
        )
        await response(scope, receive, send)
