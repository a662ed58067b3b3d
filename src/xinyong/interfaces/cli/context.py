"""What every command shares: the store, the clock, who is acting, and how answers are printed.

A command line is run interactively and from cron, so it must start fast: this module, like every
module of the command line, imports at its top only the standard library, typer and the cheap
parts of xinyong (settings, errors, the clock, the access vocabulary). The service, the store
(SQLAlchemy), Rich and the presentation are imported by the commands that use them, when they run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xinyong import settings
from xinyong.rules import values
from xinyong.rules.clock import Clock, FixedClock, parse_instant
from xinyong.security.access import PUBLIC, Principal, Role

if TYPE_CHECKING:
    from rich.console import Console

    from xinyong.service import Service
    from xinyong.storage.store import Store

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="The day asked about (YYYY-MM-DD); default today.")]
KnownAtOpt = Annotated[
    str | None,
    typer.Option("--known-at", help="Knowledge time: ignore every event recorded after it; default now."),
]
LanguageOpt = Annotated[
    str | None, typer.Option("--language", help="zh_Hans or en; default the subject's, else $XINYONG_LANGUAGE.")
]


def operator_name() -> str:
    """Who runs the command line: XINYONG_ACTOR, else the name the system logged them in as. The
    audit log writes it after the channel (`cli:root`, `cli:office:wang`), the ledger as it is;
    every act of an operator who names no one is still traced to an account of the machine."""
    named = settings.current().actor
    if named:
        return named
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = "unknown"
    return user


def yield_to_checks() -> None:
    """Lower this process's CPU priority by XINYONG_IMPORT_NICE before an import: an import is a
    batch job, while a server on the same machine answers enforcers at a gate: at nice 10 the
    scheduler gives the server's worker the CPU it asks for and the import the rest (measured in
    benchmarks/REPORT.md, checks during a bulk import). Irreversible for the process, which ends
    with the import."""
    import os

    step = settings.current().import_nice
    if step:
        os.nice(step)


class Context:
    """The store, the clock and the principal of one run of the command line."""

    def __init__(self, db: str | None, token: str | None = None) -> None:
        chosen = settings.current()
        self.db_url = db or chosen.db
        self.clock: Clock = FixedClock(chosen.now) if chosen.now else Clock()
        self.token = token
        self._store: Store | None = None
        self._service: Service | None = None
        self._principal: Principal | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from xinyong.storage.store import Store

            self._store = Store(self.db_url)
        return self._store

    def ready_store(self) -> Store:
        self.store.require_initialised()
        return self.store

    def service(self) -> Service:
        """The one door, as the API uses it: authorise, act, audit — with the command line's clock.

        One process asks one question, so the check-answer cache (which keeps a connection of its
        own to fingerprint the ledger) would only cost time.
        """
        if self._service is None:
            from xinyong.service import Service

            self._service = Service(self.ready_store(), self.clock, cache_answers=False)
        return self._service

    @property
    def principal(self) -> Principal:
        """Who acts: the credit office's administrator (whoever can run the command line can open
        the store anyway), audited as `cli:<operator>`; with `--token`, the token's holder under its
        own role and binding, so a source or an officer acts under its own rights."""
        if self._principal is None:
            if self.token is None:
                self._principal = Principal(Role.ADMIN, operator_name(), channel="cli")
            else:
                held = self.service().credentials.authenticate(self.token).principal()
                self._principal = dataclasses.replace(held, channel="cli")
        return self._principal

    @property
    def public(self) -> Principal:
        """The public: what anyone may see, and nothing is logged about it."""
        return PUBLIC

    def now(self) -> dt.datetime:
        return self.clock.now()

    def today(self) -> dt.date:
        return self.clock.today()

    def as_of(self, text: str | None) -> dt.date:
        return values.day(text, where="--as-of") if text else self.clock.today()

    def known_at(self, text: str | None) -> dt.datetime:
        return parse_instant(text, where="--known-at") if text else self.clock.now()

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None
            self._service = None


def ctx_of(typer_ctx: typer.Context) -> Context:
    obj = typer_ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


def day_option(text: str | None, where: str) -> dt.date | None:
    """An optional calendar day given as an option (`--occurred-on`, `--on`): the shared rule
    (`rules.values.day`). A day that must not be in the future is checked where the clock is, by
    the service, with the same function."""
    return values.day(text, where=where) if text is not None else None


def amount_option(text: str | None, where: str = "--amount") -> Decimal | None:
    """The one place the command line reads an amount (`records correct`, `objections decide`):
    the rule every interface shares (`rules.values.amount`: finite, 0 ≤ x < 10^16, at most two
    decimals), so `--amount NaN` exits 2 with the message the file import gives for NaN."""
    return values.amount(text, where=where) if text is not None else None


@functools.cache
def console() -> Console:
    """Standard output for people (tables, colours). Rich takes a tenth of a second to import, so
    only commands that print for people pay for it; it writes to whatever `sys.stdout` is then."""
    from rich.console import Console

    return Console()


def note(text: str) -> None:
    """One line on standard error, as it is (messages about files written, errors)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def emit(as_json: bool, data: dict[str, Any], human: Callable[[], None]) -> None:
    """One JSON object on standard output, or the human form."""
    if as_json:
        from xinyong.presentation.outputs import plain

        sys.stdout.write(json.dumps(plain(data), ensure_ascii=False, indent=2) + "\n")
    else:
        human()


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on the terminal, shown from the first progress reported (the bulk path
    reports none); nothing when printing JSON or when output is piped."""
    if not enabled or not console().is_terminal:
        yield None
        return
    from rich.progress import Progress, TaskID

    bar = Progress(console=console(), transient=True)
    task: TaskID | None = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(label, total=None)
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()
