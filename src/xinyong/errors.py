"""Errors as values: every problem says where it is and why, shaped once, rendered by each interface."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located precisely enough for a person to fix it."""

    where: str
    why: str
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.why}" if self.where else self.why


class XinyongError(Exception):
    """Base of all errors the library raises on purpose; exit status 1 and HTTP 503 unless a
    subclass says: an error that is not the caller's is the platform's state (a missing key, a
    store that cannot answer). Every interface reads the status here, so they cannot disagree;
    `code` is the word for it in an audit entry's outcome and in an answer's `error`."""

    exit_code = 1
    http_status = 503
    code = "failed"

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems)

    def render(self) -> str:
        """The message followed by one line per problem, as the command line prints it."""
        lines = [self.message]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


class BadInput(XinyongError):
    """The caller gave something invalid; nothing was changed (exit status 2, HTTP 422)."""

    exit_code = 2
    http_status = 422
    code = "invalid"

    @classmethod
    def from_problems(cls, message: str, problems: Iterable[Problem]) -> BadInput:
        return cls(message, list(problems))


class NotFound(BadInput):
    """A named thing (subject, record, scheme, objection) does not exist."""

    http_status = 404
    code = "not_found"


class Refused(BadInput):
    """The input is well formed but a rule forbids it (a safeguard, an authorisation, a deadline)."""

    http_status = 409
    code = "refused"


class Unavailable(XinyongError):
    """The store cannot answer now (busy, locked, unreachable): nothing was changed; ask again
    (HTTP 503 with Retry-After, exit status 1)."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """The end of a "no such name" message: the closest known name (difflib), else the known names
    when they are few, so a typo (`city-pionts`, `no-fligts`) costs no guessing."""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}?"
    if not names:
        return ""
    if len(names) <= 12:
        return f" (known: {', '.join(names)})"
    return ""
