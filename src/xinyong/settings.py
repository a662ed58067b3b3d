"""Settings read from the environment, in one place; docs/settings.md is checked against this list."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str

    def value(self) -> str | None:
        return os.environ.get(self.name) or self.default


DB = Setting(
    "XINYONG_DB",
    "sqlite:///xinyong.db",
    "The store: a SQLAlchemy URL (sqlite:///FILE or postgresql+psycopg://…).",
)
NOW = Setting(
    "XINYONG_NOW",
    None,
    "An ISO timestamp that replaces the system clock for the command line, to replay scenarios; "
    "the HTTP server ignores it.",
)
ACTOR = Setting(
    "XINYONG_ACTOR",
    "cli",
    "Who the command line acts as, written into every ledger event it appends.",
)

LANGUAGE = Setting(
    "XINYONG_LANGUAGE",
    "zh_Hans",
    "The language of notices and reports when a subject has not chosen one: zh_Hans or en.",
)
SMTP_HOST = Setting(
    "XINYONG_SMTP_HOST",
    None,
    "The SMTP server that e-mails notices; unset, e-mail deliveries wait in the outbox.",
)
SMTP_PORT = Setting("XINYONG_SMTP_PORT", "25", "The SMTP server's port.")
SMTP_FROM = Setting(
    "XINYONG_SMTP_FROM",
    "xinyong <notices@xinyong.invalid>",
    "The From address of notice e-mails; its domain also ends every Message-ID.",
)
SMTP_STARTTLS = Setting(
    "XINYONG_SMTP_STARTTLS",
    "0",
    "1 to upgrade the SMTP connection with STARTTLS before sending.",
)
SMTP_USER = Setting("XINYONG_SMTP_USER", None, "The SMTP login, when the server needs one.")
SMTP_PASSWORD = Setting("XINYONG_SMTP_PASSWORD", None, "The SMTP password, when the server needs one.")
SMTP_TIMEOUT = Setting("XINYONG_SMTP_TIMEOUT", "10", "Seconds to wait for the SMTP server before an attempt fails.")
OUTBOX_BACKOFF = Setting(
    "XINYONG_OUTBOX_BACKOFF",
    "60",
    "Seconds before the first retry of a failed delivery; each further retry waits twice as long.",
)
OUTBOX_MAX_BACKOFF = Setting(
    "XINYONG_OUTBOX_MAX_BACKOFF",
    "86400",
    "The longest wait between two delivery attempts, in seconds; deliveries are never given up.",
)

# The HTTP server (the API issue).
HOST = Setting(
    "XINYONG_HOST",
    "127.0.0.1",
    "The address `xinyong serve` listens on (loopback by default; put a TLS proxy in front for anything else).",
)
PORT = Setting("XINYONG_PORT", "8000", "The port `xinyong serve` listens on.")
WORKERS = Setting("XINYONG_WORKERS", "1", "Server worker processes for `xinyong serve` (one per core is plenty).")
SERVER = Setting(
    "XINYONG_SERVER",
    "granian",
    "The ASGI server behind `xinyong serve`: granian (chosen by measurement, benchmarks/REPORT.md) or uvicorn.",
)
MAX_BODY = Setting(
    "XINYONG_MAX_BODY",
    "1048576",
    "The largest request body the API accepts, in bytes; a larger one gets a 413 problem.",
)
MAX_UPLOAD = Setting(
    "XINYONG_MAX_UPLOAD",
    "67108864",
    "The largest upload (POST /v1/imports, POST /v1/schemes), in bytes.",
)
CHECK_CACHE = Setting(
    "XINYONG_CHECK_CACHE",
    "1",
    "1 to let a server worker reuse check answers until the ledger changes (SQLite only), 0 to compute each.",
)
AUDIT_COMPACT_AT = Setting(
    "XINYONG_AUDIT_COMPACT_AT",
    "03:30",
    "The local time (HH:MM, Asia/Shanghai) at which each server worker merges the who-looked index's "
    "newest runs (`xinyong audit compact`); off to leave it to cron.",
)
TOKEN_CACHE_SECONDS = Setting(
    "XINYONG_TOKEN_CACHE_SECONDS",
    "5",
    "How long a server worker trusts a token it has looked up; a revocation takes effect within this time.",
)

# Batch state and bulk import (the scale issue, docs/scale.md).
SPARK_MASTER = Setting(
    "XINYONG_SPARK_MASTER",
    "local[2]",
    "The Spark master `xinyong state --engine spark` uses unless --spark-master is given.",
)
BULK_BYTES = Setting(
    "XINYONG_BULK_BYTES",
    "67108864",
    "CSV and JSON Lines files of at least this many bytes take the bulk import path (Parquet always does).",
)

# The web pages (docs/web.md).
WEB_SECRET = Setting(
    "XINYONG_WEB_SECRET",
    None,
    "The key that signs the web pages' session cookies; without it a random one is made when the server starts.",
)

DEBUG = Setting(
    "XINYONG_DEBUG",
    None,
    "When set, the command line shows the stack trace of an unexpected error instead of one line.",
)

SETTINGS: tuple[Setting, ...] = (
    DB,
    NOW,
    ACTOR,
    DEBUG,
    LANGUAGE,
    SMTP_HOST,
    SMTP_PORT,
    SMTP_FROM,
    SMTP_STARTTLS,
    SMTP_USER,
    SMTP_PASSWORD,
    SMTP_TIMEOUT,
    OUTBOX_BACKOFF,
    OUTBOX_MAX_BACKOFF,
    HOST,
    PORT,
    WORKERS,
    SERVER,
    MAX_BODY,
    MAX_UPLOAD,
    TOKEN_CACHE_SECONDS,
    WEB_SECRET,
    CHECK_CACHE,
    AUDIT_COMPACT_AT,
    SPARK_MASTER,
    BULK_BYTES,
)
