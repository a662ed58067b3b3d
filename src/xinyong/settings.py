"""The settings: every XINYONG_* variable with its type, default and meaning, read and checked once.

Each `Setting` is data — the variable's name, its default as one would write it in the
environment, what values it takes and what it means — and docs/settings.md is checked against
them (`SETTINGS`). `load(environ)` reads and checks all of them at once and returns `Settings`, a
frozen value whose fields are typed (`port: int`, `smtp_timeout: float`, `audit_compact_at:
dt.time | None`, …), or raises `BadInput` naming each variable that is wrong and why. So a bad value
is refused before anything runs: the command line loads at its start, before its command; `serve`
before its server starts; and each server worker's factory again, since a worker reads its own
environment.

`current()` is the settings in use: loaded from this process's environment the first time it is
asked for, then kept. The command line and the server's factory make what they loaded current
(`using`); a test loads from a mapping of its own (`with settings.using(settings.load({...})):`).

This is the only module that reads the environment, and nothing in xinyong writes it: the server
hands its workers the store and the session key by starting its program with an explicit
environment (`interfaces.hosting`, `Settings.environment`).

Longer than the ~500 lines modules keep to, on purpose: the issue that made it asks for every
setting in one module, and most of its lines are the settings' own descriptions, which the docs
are checked against.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

from xinyong.errors import BadInput, Problem
from xinyong.rules.clock import parse_instant

T = TypeVar("T")

# --- what values a setting takes -----------------------------------------------------------------
# Each parser reads a value as written in the environment and raises BadInput that starts with
# `where` (the variable, or the command-line option that stands for it) when it is not one. Typed
# values may have spaces around them; text is taken as it is (a password may begin with a space).

# ASCII digits only: int() would also take "1_000", "+5" and the digits of other scripts.
_WHOLE = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _shown(text: str) -> str:
    """A refused value as a message quotes it: in full unless it is long."""
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}…"


@dataclass(frozen=True)
class Text:
    kind: str = "text"

    def __call__(self, text: str, where: str) -> str:
        return text


@dataclass(frozen=True)
class WebAddress:
    """An http:// or https:// address without a query, kept without its trailing slash."""

    kind: str = "http:// or https:// address"

    def __call__(self, text: str, where: str) -> str:
        value = text.strip().rstrip("/")
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise BadInput(f"{where}: {_shown(text)} is not an http:// or https:// address")
        return value


@dataclass(frozen=True)
class Whole:
    """A whole number from `minimum` to `maximum`."""

    minimum: int = 0
    maximum: int = 10**15
    kind: str = "whole number"

    def __call__(self, text: str, where: str) -> int:
        digits = text.strip()
        if not _WHOLE.fullmatch(digits):
            raise BadInput(f"{where}: {_shown(text)} is not a whole number")
        # Compared as text first: int() refuses more than 4,300 digits with an error of its own.
        significant = digits.lstrip("0") or "0"
        if len(significant) > len(str(self.maximum)) or not self.minimum <= int(significant) <= self.maximum:
            raise BadInput(f"{where}: {_shown(text)} is not from {self.minimum} to {self.maximum}")
        return int(significant)


@dataclass(frozen=True)
class Seconds:
    """A number of seconds, with decimals if wanted; `positive` refuses 0."""

    positive: bool = False
    maximum: float = 10.0**9
    kind: str = "seconds"

    def __call__(self, text: str, where: str) -> float:
        number = text.strip()
        if not _DECIMAL.fullmatch(number):
            raise BadInput(f"{where}: {_shown(text)} is not a number of seconds")
        value = float(number)
        if self.positive and value == 0:
            raise BadInput(f"{where}: {_shown(text)} is not more than 0 seconds")
        if value > self.maximum:
            raise BadInput(f"{where}: {_shown(text)} is more than {self.maximum:.0f} seconds")
        return value


@dataclass(frozen=True)
class Flag:
    kind: str = "`0` or `1`"

    def __call__(self, text: str, where: str) -> bool:
        value = text.strip()
        if value not in ("0", "1"):
            raise BadInput(f"{where}: use 0 or 1, not {_shown(text)}")
        return value == "1"


@dataclass(frozen=True)
class Choice:
    """One of a few values, read through `spellings` (lower case) when people write them otherwise."""

    values: tuple[str, ...]
    spellings: Mapping[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return " or ".join(f"`{v}`" for v in self.values)

    def __call__(self, text: str, where: str) -> str:
        key = text.strip().lower()
        found = self.spellings.get(key) or next((v for v in self.values if v.lower() == key), None)
        if found is None:
            raise BadInput(f"{where}: {_shown(text)} is not one of {', '.join(self.values)}")
        return found


@dataclass(frozen=True)
class TimeOrOff:
    """A local time of day, HH:MM, or "off" (None)."""

    kind: str = "`HH:MM` or `off`"

    def __call__(self, text: str, where: str) -> dt.time | None:
        value = text.strip()
        if value.lower() == "off":
            return None
        found = _HH_MM.fullmatch(value)
        if found is None:
            raise BadInput(f"{where}: {_shown(text)} is not a time of day (HH:MM) or off")
        return dt.time(int(found[1]), int(found[2]))


@dataclass(frozen=True)
class Instant:
    """An ISO date or timestamp, read as every time the command line is given (`rules.clock`)."""

    kind: str = "ISO date or timestamp"

    def __call__(self, text: str, where: str) -> dt.datetime:
        return parse_instant(text.strip(), where=where)


# The languages of notices and reports, and how people write them. The catalogues are i18n's; the
# names are here because the setting is read here, below i18n (which reads them from here).
LANGUAGES = ("zh_Hans", "en")
LANGUAGE_NAMES = Choice(
    LANGUAGES,
    {
        "zh": "zh_Hans",
        "zh_cn": "zh_Hans",
        "zh-cn": "zh_Hans",
        "zh_hans": "zh_Hans",
        "zh-hans": "zh_Hans",
        "zh_hans_cn": "zh_Hans",
        "zh-hans-cn": "zh_Hans",
        "en": "en",
        "en_us": "en",
        "en-us": "en",
        "en_gb": "en",
        "en-gb": "en",
    },
)
SERVERS = ("granian", "uvicorn")


# --- the settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: its name, its default as written in the environment (None: unset,
    and `unset` says what that means), what it means, and how it is read."""

    name: str
    default: str | None
    help: str
    parse: Callable[[str, str], Any]
    unset: str = ""
    secret: bool = False  # kept out of repr(), so a log line or a traceback does not show it

    @property
    def kind(self) -> str:
        """What values it takes, as docs/settings.md says."""
        return str(getattr(self.parse, "kind", "text"))

    def read(self, environ: Mapping[str, str]) -> T:
        """Its value in `environ`; an empty value counts as unset."""
        text = environ.get(self.name) or self.default
        return cast(T, None if text is None else self.parse(text, self.name))


def required(name: str, default: str, parse: Callable[[str, str], T], help: str) -> Setting[T]:
    return Setting(name, default, help, parse)


def optional(
    name: str, parse: Callable[[str, str], T], help: str, *, unset: str = "", secret: bool = False
) -> Setting[T | None]:
    return Setting(name, None, help, parse, unset=unset, secret=secret)


def _field(setting: Setting[T]) -> T:
    """A field of `Settings` read from `setting`; mypy holds the field's type to the setting's."""
    return cast(T, field(metadata={"setting": setting}, repr=not setting.secret))


DB = required(
    "XINYONG_DB",
    "sqlite:///xinyong.db",
    Text("SQLAlchemy URL"),
    "The store: a SQLAlchemy URL (sqlite:///FILE or postgresql+psycopg://…).",
)
NOW = optional(
    "XINYONG_NOW",
    Instant(),
    "An ISO timestamp that replaces the system clock for the command line, to replay scenarios; "
    "the HTTP server ignores it.",
    unset="the system clock",
)
ACTOR = optional(
    "XINYONG_ACTOR",
    Text(),
    "Who the command line acts as, written into every ledger event it appends.",
    unset="the login name of whoever runs the command line",
)
DEBUG = required(
    "XINYONG_DEBUG",
    "0",
    Flag(),
    "1 to have the command line show the stack trace of an unexpected error instead of one line.",
)
LANGUAGE = required(
    "XINYONG_LANGUAGE",
    "zh_Hans",
    LANGUAGE_NAMES,
    "The language of notices and reports when a subject has not chosen one: zh_Hans or en.",
)
SMTP_HOST = optional(
    "XINYONG_SMTP_HOST",
    Text("host name"),
    "The SMTP server that e-mails notices; unset, e-mail deliveries wait in the outbox.",
    unset="e-mail is not sent",
)
SMTP_PORT = required("XINYONG_SMTP_PORT", "25", Whole(1, 65535, "port, 1–65535"), "The SMTP server's port.")
SMTP_FROM = required(
    "XINYONG_SMTP_FROM",
    "xinyong <notices@xinyong.invalid>",
    Text("e-mail address"),
    "The From address of notice e-mails; its domain also ends every Message-ID.",
)
SMTP_STARTTLS = required(
    "XINYONG_SMTP_STARTTLS",
    "0",
    Flag(),
    "1 to upgrade the SMTP connection with STARTTLS before sending.",
)
SMTP_USER = optional("XINYONG_SMTP_USER", Text(), "The SMTP login, when the server needs one.", unset="no login")
SMTP_PASSWORD = optional(
    "XINYONG_SMTP_PASSWORD", Text(), "The SMTP password, when the server needs one.", unset="no login", secret=True
)
SMTP_TIMEOUT = required(
    "XINYONG_SMTP_TIMEOUT",
    "10",
    Seconds(positive=True, kind="seconds, more than 0"),
    "Seconds to wait for the SMTP server before an attempt fails.",
)
OUTBOX_BACKOFF = required(
    "XINYONG_OUTBOX_BACKOFF",
    "60",
    Seconds(),
    "Seconds before the first retry of a failed delivery; each further retry waits twice as long.",
)
OUTBOX_MAX_BACKOFF = required(
    "XINYONG_OUTBOX_MAX_BACKOFF",
    "86400",
    Seconds(),
    "The longest wait between two delivery attempts, in seconds; deliveries are never given up.",
)
OUTBOX_EVERY = required(
    "XINYONG_OUTBOX_EVERY",
    "60",
    Seconds(),
    "Seconds between the deliveries a server makes of what is due in the outbox (notice e-mails, feed "
    "webhooks; `xinyong notices deliver`); 0 for none.",
)
WEBHOOK_TIMEOUT = required(
    "XINYONG_WEBHOOK_TIMEOUT",
    "10",
    Seconds(positive=True, kind="seconds, more than 0"),
    "Seconds to wait for an agency's webhook receiver before a delivery attempt fails (it is retried).",
)

# Feeds for enforcer agencies (the enforcers issue, docs/enforcers.md).
FEED_PUBLISH_AT = required(
    "XINYONG_FEED_PUBLISH_AT",
    "00:10",
    TimeOrOff(),
    "The local time (HH:MM, Asia/Shanghai) at which each server cuts the day's feed versions "
    "(`xinyong feeds publish`); off to leave it to cron.",
)
FEED_ACK_LATE = required(
    "XINYONG_FEED_ACK_LATE",
    "86400",
    Seconds(positive=True, kind="seconds, more than 0"),
    "How long after a measure ended an agency may leave the feed version that removed it "
    "unacknowledged before the statistics show the removal as late.",
)

# The HTTP server (the API issue).
HOST = required(
    "XINYONG_HOST",
    "127.0.0.1",
    Text("address"),
    "The address `xinyong serve` listens on (loopback by default; put a TLS proxy in front for anything else).",
)
PORT = required("XINYONG_PORT", "8000", Whole(1, 65535, "port, 1–65535"), "The port `xinyong serve` listens on.")
WORKERS = required(
    "XINYONG_WORKERS",
    "1",
    Whole(1, 1024, "whole number, 1–1024"),
    "Server worker processes for `xinyong serve` (one per core is plenty).",
)
SERVER = required(
    "XINYONG_SERVER",
    "granian",
    Choice(SERVERS),
    "The ASGI server behind `xinyong serve`: granian (chosen by measurement, benchmarks/REPORT.md) or uvicorn.",
)
MAX_BODY = required(
    "XINYONG_MAX_BODY",
    "1048576",
    Whole(kind="whole number of bytes"),
    "The largest request body the API accepts, in bytes; a larger one gets a 413 problem.",
)
MAX_UPLOAD = required(
    "XINYONG_MAX_UPLOAD",
    "67108864",
    Whole(kind="whole number of bytes"),
    "The largest upload (POST /v1/imports, POST /v1/schemes), in bytes.",
)
TOKEN_CACHE_SECONDS = required(
    "XINYONG_TOKEN_CACHE_SECONDS",
    "5",
    Seconds(),
    "How long a server worker trusts a token it has looked up; a revocation takes effect within this time.",
)
CHECK_CACHE = required(
    "XINYONG_CHECK_CACHE",
    "1",
    Flag(),
    "1 to let a server worker reuse check answers until the ledger changes (SQLite only), 0 to compute each.",
)
AUDIT_COMPACT_AT = required(
    "XINYONG_AUDIT_COMPACT_AT",
    "03:30",
    TimeOrOff(),
    "The local time (HH:MM, Asia/Shanghai) at which each server worker merges the who-looked index's "
    "newest runs (`xinyong audit compact`); off to leave it to cron.",
)
AUDIT_CHECKPOINT_EVERY = required(
    "XINYONG_AUDIT_CHECKPOINT_EVERY",
    "3600",
    Seconds(),
    "Seconds between the audit checkpoints a server makes (`xinyong audit checkpoint`: the log's head "
    "signed and published); 0 for none.",
)
KEYS = optional(
    "XINYONG_KEYS",
    Text("folder"),
    "The folder of the platform's signing keys (credit reports, feeds, audit checkpoints), files readable by "
    "their owner only; never inside the database.",
    unset="a folder beside an SQLite store's file (xinyong-keys beside xinyong.db); required for PostgreSQL",
)
PUBLIC_URL = required(
    "XINYONG_PUBLIC_URL",
    "http://127.0.0.1:8000",
    WebAddress(),
    "Where the public reaches the site: the QR code on every credit report points to its verification page there.",
)

# The web pages (docs/web.md).
WEB_SECRET = optional(
    "XINYONG_WEB_SECRET",
    Text(),
    "The key that signs the web pages' session cookies; without it a random one is made when the server starts.",
    unset="a random key for the server's lifetime",
    secret=True,
)

PROXY_HOPS = required(
    "XINYONG_PROXY_HOPS",
    "0",
    Whole(0, 16, "whole number, 0–16"),
    "How many reverse proxies stand in front of the server; 0 trusts no X-Forwarded-For or X-Forwarded-Proto header.",
)

# Batch state and bulk import (the scale issue, docs/scale.md).
SPARK_MASTER = required(
    "XINYONG_SPARK_MASTER",
    "local[2]",
    Text("Spark master URL"),
    "The Spark master `xinyong state --engine spark` uses unless --spark-master is given.",
)
BULK_BYTES = required(
    "XINYONG_BULK_BYTES",
    "67108864",
    Whole(kind="whole number of bytes"),
    "CSV and JSON Lines files of at least this many bytes take the bulk import path (Parquet always does).",
)
IMPORT_NICE = required(
    "XINYONG_IMPORT_NICE",
    "10",
    Whole(0, 19, "whole number, 0–19"),
    "How much `records import` and `subjects import` lower their own CPU priority (nice), so that a "
    "server's checks on the same machine come first; 0 leaves it as it is.",
)


# Published aggregates (the policy lab, docs/lab.md).
MIN_CELL = required(
    "XINYONG_MIN_CELL",
    "10",
    Whole(1, 1_000_000, "whole number, 1–1000000"),
    "The smallest number of subjects an aggregate shown to an analyst may rest on; smaller cells are withheld.",
)


@dataclass(frozen=True)
class Settings:
    """Every setting, read and checked; `given` is what the environment said, as it said it."""

    db: str = _field(DB)
    now: dt.datetime | None = _field(NOW)  # noqa: RUF009 (a field specifier, not a shared default)
    actor: str | None = _field(ACTOR)
    debug: bool = _field(DEBUG)
    language: str = _field(LANGUAGE)
    smtp_host: str | None = _field(SMTP_HOST)
    smtp_port: int = _field(SMTP_PORT)
    smtp_from: str = _field(SMTP_FROM)
    smtp_starttls: bool = _field(SMTP_STARTTLS)
    smtp_user: str | None = _field(SMTP_USER)
    smtp_password: str | None = _field(SMTP_PASSWORD)
    smtp_timeout: float = _field(SMTP_TIMEOUT)
    outbox_backoff: float = _field(OUTBOX_BACKOFF)
    outbox_max_backoff: float = _field(OUTBOX_MAX_BACKOFF)
    outbox_every: float = _field(OUTBOX_EVERY)
    webhook_timeout: float = _field(WEBHOOK_TIMEOUT)
    feed_publish_at: dt.time | None = _field(FEED_PUBLISH_AT)  # noqa: RUF009 (as `now`)
    feed_ack_late: float = _field(FEED_ACK_LATE)
    host: str = _field(HOST)
    port: int = _field(PORT)
    workers: int = _field(WORKERS)
    server: str = _field(SERVER)
    max_body: int = _field(MAX_BODY)
    max_upload: int = _field(MAX_UPLOAD)
    token_cache_seconds: float = _field(TOKEN_CACHE_SECONDS)
    check_cache: bool = _field(CHECK_CACHE)
    audit_compact_at: dt.time | None = _field(AUDIT_COMPACT_AT)  # noqa: RUF009 (as `now`)
    audit_checkpoint_every: float = _field(AUDIT_CHECKPOINT_EVERY)
    keys: str | None = _field(KEYS)
    public_url: str = _field(PUBLIC_URL)
    web_secret: str | None = _field(WEB_SECRET)
    proxy_hops: int = _field(PROXY_HOPS)
    spark_master: str = _field(SPARK_MASTER)
    bulk_bytes: int = _field(BULK_BYTES)
    import_nice: int = _field(IMPORT_NICE)
    min_cell: int = _field(MIN_CELL)
    given: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def is_given(self, setting: Setting[Any]) -> bool:
        """Whether the environment named a value (rather than the default applying)."""
        return setting.name in self.given

    def environment(
        self, changes: Mapping[str, str] | None = None, base: Mapping[str, str] = os.environ
    ) -> dict[str, str]:
        """The environment for a program xinyong starts with these settings: `base` (this process's
        environment) without the settings' variables, then the values these settings were given,
        then `changes` (name → value as written in the environment). Read back by `load`, it gives
        these settings with the changes."""
        names = {s.name for s in SETTINGS}
        kept = {k: v for k, v in base.items() if k not in names}
        return kept | dict(self.given) | dict(changes or {})


SETTINGS: tuple[Setting[Any], ...] = tuple(f.metadata["setting"] for f in fields(Settings) if "setting" in f.metadata)


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read and check every setting in `environ`; BadInput names each one that is wrong."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for found in fields(Settings):
        setting: Setting[Any] | None = found.metadata.get("setting")
        if setting is None:
            continue
        try:
            values[found.name] = setting.read(environ)
        except BadInput as exc:
            problems.append(Problem(setting.name, exc.message.removeprefix(f"{setting.name}: ")))
    if len(problems) == 1:
        raise BadInput(str(problems[0]), problems)
    if problems:
        raise BadInput(f"{len(problems)} settings in the environment are wrong", problems)
    given = {s.name: text for s in SETTINGS if (text := environ.get(s.name))}
    return Settings(**values, given=MappingProxyType(given))


@functools.cache
def defaults() -> Settings:
    """Every setting at its default (what a parameter that stands for a setting defaults to)."""
    return load({})


_current: Settings | None = None


def current() -> Settings:
    """The settings in use: loaded from this process's environment when first asked for, then kept."""
    global _current
    if _current is None:
        _current = load()
    return _current


@contextmanager
def using(chosen: Settings) -> Iterator[Settings]:
    """Make `chosen` the settings in use until the block ends (the command line's run, a test)."""
    global _current
    previous, _current = _current, chosen
    try:
        yield chosen
    finally:
        _current = previous


def use(chosen: Settings) -> Settings:
    """Make `chosen` the settings in use for the rest of the process (a server worker's factory)."""
    global _current
    _current = chosen
    return chosen
