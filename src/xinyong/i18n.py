"""Languages of notices and reports: Simplified Chinese and English, from Babel catalogues.

The catalogues live in `locale/{zh_Hans,en}/LC_MESSAGES/xinyong.po`; the compiled `.mo` files are
committed next to them, so an installed package needs no build step and a wheel carries them as
plain data. `scripts/update-translations.sh` extracts the messages from the code and the
templates, merges them into both catalogues and compiles; `tests/test_i18n.py` fails when a
message is untranslated, fuzzy, or missing from a catalogue, or when a `.mo` is stale.

Source strings are English. Domain text that comes from a scheme (behaviour, list and measure
titles) is not in the catalogues: schemes carry `title_zh` beside `title`, and `title()` picks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.support import NullTranslations, Translations

from xinyong import settings
from xinyong.rules.periods import Period

DOMAIN = "xinyong"
LOCALE_DIR = Path(__file__).parent / "locale"
# The languages and how people write them are defined with the setting that names one.
LANGUAGES = settings.LANGUAGES


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; it is translated where it is shown."""
    return message


# Where an instant's day is counted when no scheme says otherwise (DESIGN.md's default).
DEFAULT_ZONE = "Asia/Shanghai"

# An empty period reads differently by what it measures: no notice, repair from the start.
_ZERO_PERIODS = {"none": N_("none"), "at once": N_("at once")}


def language(value: str | None) -> str:
    """A supported language from a user's spelling of it (zh, zh-CN, zh_Hans, en, en-GB …)."""
    if value is None or not value.strip():
        return settings.current().language  # XINYONG_LANGUAGE, read (and spelled) the same way
    return settings.LANGUAGE_NAMES(value, "--language")


@lru_cache(maxsize=8)
def translations(lang: str) -> NullTranslations:
    loaded = Translations.load(str(LOCALE_DIR), locales=[lang], domain=DOMAIN)
    if not isinstance(loaded, Translations):
        raise FileNotFoundError(f"no compiled catalogue for {lang} in {LOCALE_DIR}")
    return loaded


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class Text:
    """Translation bound to one language: `t("Score")`, `t("Due by %(day)s", day=…)`."""

    lang: str

    def __call__(self, message: str, **values: Any) -> str:
        text = translations(self.lang).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = translations(self.lang).ngettext(singular, plural, n)
        return text % {"num": n, **values}

    def day(self, value: dt.date | str | None) -> str:
        """A calendar day as a reader of the language writes it: 2026年10月13日, 13 October 2026."""
        if value is None:
            return "—"
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value) if len(value) > 10 else dt.date.fromisoformat(value)
        if isinstance(value, dt.datetime):  # an instant's day is the day where the reader is, not UTC's
            value = value.astimezone(_zone(DEFAULT_ZONE)).date() if value.tzinfo else value.date()
        return format_date(value, format="long", locale="zh_Hans_CN" if self.lang == "zh_Hans" else "en_GB")

    def moment(self, value: dt.datetime | str, timezone: str = "Asia/Shanghai") -> str:
        """An instant as a reader in `timezone` writes it, to the minute, with the zone named:
        2026年12月7日 19:05 (北京时间), 7 December 2026, 19:05 (China Standard Time)."""
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        locale = "zh_Hans_CN" if self.lang == "zh_Hans" else "en_GB"
        day = format_date(value.astimezone(_zone(timezone)), format="long", locale=locale)
        clock = format_datetime(value, "HH:mm", tzinfo=_zone(timezone), locale=locale)
        zone = format_datetime(value, "zzzz", tzinfo=_zone(timezone), locale=locale)
        return f"{day} {clock} ({zone})" if self.lang == "zh_Hans" else f"{day}, {clock} ({zone})"

    def title(self, item: dict[str, Any] | Any, key: str = "title") -> str:
        """A scheme-defined title in this language: `title_zh` for Chinese when the scheme gives one."""
        get = item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d)
        if self.lang == "zh_Hans" and get(f"{key}_zh"):
            return str(get(f"{key}_zh"))
        return str(get(key) or "")

    def period(self, value: Period | str, zero: str = "none") -> str:
        """A period in words, as the scheme's readers count: 10 天 / 10 days, 1 年 / 1 year (the
        ISO 8601 form P10D is for files, not people); `zero` is what an empty period means here."""
        found = Period.parse(value) if isinstance(value, str) else value
        parts = []
        if found.years:
            parts.append(self.ngettext("%(num)s year", "%(num)s years", found.years))
        if found.months:
            parts.append(self.ngettext("%(num)s month", "%(num)s months", found.months))
        if found.days:
            parts.append(self.ngettext("%(num)s day", "%(num)s days", found.days))
        return " ".join(parts) if parts else self(_ZERO_PERIODS[zero])

    def basis(self, item: dict[str, Any] | Any) -> str:
        """A legal basis in this language: `legal_basis_zh` for Chinese when the scheme gives one."""
        return self.title(item, "legal_basis")

    def label(self, labels: dict[str, str], key: str | None) -> str:
        """The translated label of a code (an outcome, a list kind), or the code itself."""
        if key is None:
            return ""
        return self(labels[key]) if key in labels else key

    def points(self, value: int) -> str:
        """Points with their sign, always ASCII (+5, -100, 0) so that they read and parse alike."""
        return f"{value:+d}" if value else "0"
