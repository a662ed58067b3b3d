"""The Babel catalogues: every message of the code and the templates is translated into Simplified
Chinese and English, placeholders survive translation, and the committed .mo files are current.

After changing a translatable string: `bash scripts/update-translations.sh`, translate what this
test names, and run the script again.
"""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from xinyong import i18n, settings
from xinyong.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "xinyong"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted() -> set[str]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map, options, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return {m for m in found if m}


def catalogue(lang: str) -> dict[str, str]:
    path = PACKAGE / "locale" / lang / "LC_MESSAGES" / "xinyong.po"
    with path.open("rb") as f:
        po = read_po(f, locale=lang)
    assert not po.fuzzy, f"{path}: the catalogue is marked fuzzy"
    fuzzy = [m.id for m in po if m.id and m.fuzzy]
    assert not fuzzy, f"{path}: fuzzy entries {fuzzy}"
    # A plural message is known by its singular; each of its forms must be translated.
    return {
        m.id if isinstance(m.id, str) else m.id[0]: m.string if isinstance(m.string, str) else min(m.string, key=len)
        for m in po
        if m.id
    }


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_message_is_translated(lang: str) -> None:
    messages = catalogue(lang)
    missing = sorted(extracted() - set(messages))
    assert not missing, f"not in the {lang} catalogue (run scripts/update-translations.sh): {missing}"
    untranslated = sorted(k for k, v in messages.items() if not v.strip())
    assert not untranslated, f"untranslated in {lang}: {untranslated}"
    for message, text in messages.items():
        assert set(PLACEHOLDER.findall(message)) == set(PLACEHOLDER.findall(text)), (lang, message, text)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_committed_mo_says_what_the_po_says(lang: str) -> None:
    folder = PACKAGE / "locale" / lang / "LC_MESSAGES"
    with (folder / "xinyong.po").open("rb") as f:
        po = read_po(f, locale=lang)
    with (folder / "xinyong.mo").open("rb") as f:
        mo = read_mo(f)

    def said(catalog: Any) -> dict[Any, Any]:
        def key(value: Any) -> Any:
            return tuple(value) if isinstance(value, list | tuple) else value

        return {key(m.id): key(m.string) for m in catalog if m.id}

    assert said(po) == said(mo)
    buffer = BytesIO()
    write_mo(buffer, po)  # and the .po compiles
    assert buffer.getvalue()


def test_chinese_is_really_chinese() -> None:
    zh = i18n.Text("zh_Hans")
    assert zh("Credit report") == "信用报告"
    assert zh("Legal basis: %(basis)s", basis="法释〔2017〕7号") == "法律依据：法释〔2017〕7号"
    assert zh.day("2026-10-13") == "2026年10月13日"
    assert i18n.Text("en").day("2026-10-13") == "13 October 2026"
    assert i18n.Text("en")("Credit report") == "Credit report"


def test_languages_are_read_as_people_write_them() -> None:
    assert [i18n.language(x) for x in ("zh", "zh-CN", "zh_Hans", "EN", "en-GB")] == [
        "zh_Hans",
        "zh_Hans",
        "zh_Hans",
        "en",
        "en",
    ]
    with settings.using(settings.load({"XINYONG_LANGUAGE": "en"})):
        assert i18n.language(None) == "en"
    with pytest.raises(BadInput, match="--language"):
        i18n.language("fr")
