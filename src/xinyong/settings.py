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

SETTINGS: tuple[Setting, ...] = (DB, NOW, ACTOR)
