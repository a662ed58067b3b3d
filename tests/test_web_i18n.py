"""Every web page in both languages, with no untranslated string.

Two checks. The templates: outside Jinja expressions and tags, no text node may hold a Latin word
(every visible word of the interface goes through ``_()``). The pages: a walk through every page
as the public, a subject, an officer and an administrator, in Chinese and in English; in Chinese no
visible text (nor a chart title) may be an English message of the catalogue left as it is, and the
page must say it is Chinese. Data (names, codes, legal bases, scheme titles without ``title_zh``)
is not in the catalogue and is left alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from test_web import O1, P1, Site, make_site, visible
from xinyong.i18n import LOCALE_DIR

TEMPLATES = Path(__file__).parents[1] / "src" / "xinyong" / "interfaces" / "web" / "templates"
# Words that are the same in both languages: the language switch names each language in itself.
SAME_IN_BOTH = {"English", "中文", "YAML"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory, "web-i18n")


def catalogue(lang: str) -> dict[str, str]:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "xinyong.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id and isinstance(m.id, str)}


def test_templates_have_no_text_outside_translation_calls() -> None:
    problems = []
    for path in sorted(TEMPLATES.glob("*.html")):
        source = path.read_text(encoding="utf-8")
        stripped = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", source, flags=re.S)
        for text in visible(stripped):
            for word in re.findall(r"[A-Za-z]{2,}", text):
                if word not in SAME_IN_BOTH:
                    problems.append(f"{path.name}: {text!r}")
                    break
        for attribute in re.findall(r'(?:aria-label|title|alt)="([^"{]*)"', stripped):
            if re.search(r"[A-Za-z]{2,}", attribute):
                problems.append(f"{path.name}: attribute {attribute!r}")
    assert not problems, "\n".join(problems)


def walk(site: Site, lang: str) -> dict[str, str]:
    pages: dict[str, str] = {}

    def visit(path: str, expected: int = 200) -> None:
        answer = site.client.get(path)
        assert answer.status_code == expected, (path, answer.status_code)
        pages[f"{lang} {path}"] = answer.text

    site.log_out()
    site.client.get(f"/lang/{lang}")
    for path in (
        "/",
        "/search?q=测试",
        "/search?q=ceshi",
        f"/subjects/{O1}",
        "/schemes",
        "/schemes/demo-city",
        "/audit",
        "/statistics",
    ):
        visit(path)
    visit("/lists/demo-city/defaulters")
    visit("/login")
    visit("/subjects/nobody", 404)
    site.log_in(P1, lang=lang)
    for path in ("/me", "/me/notices", "/me/consent", "/me/who-looked"):
        visit(path)
    visit("/staff", 403)
    site.log_in("admin", lang=lang)
    token = site.csrf("/staff/imports")
    site.client.post(
        "/staff/imports",
        data={"csrf": token, "kind": "records", "source": "transport"},
        files={"file": ("bad.csv", f"subject_id,behaviour,occurred_on,document_ref\n{P1},X,2026-01-01,B\n".encode())},
    )
    for path in ("/staff", "/staff/objections?all=1", "/staff/repairs?all=1", "/staff/imports", "/staff/imports/1"):
        visit(path)
    visit("/staff/lists?which=demo-city/defaulters&since=2026-01-01")
    site.log_in("officer", lang=lang)
    visit("/staff/objections")
    return pages


def chart_titles(html: str) -> list[str]:
    specs = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', html, re.S)
    return [json.loads(spec)["title"] for spec in specs]


def test_every_page_in_chinese_has_no_untranslated_string(site: Site) -> None:
    zh = catalogue("zh_Hans")
    english = {msgid for msgid, msgstr in zh.items() if msgstr and msgstr != msgid and re.search("[A-Za-z]", msgid)}
    problems = []
    pages = walk(site, "zh_Hans")
    for name, html in pages.items():
        assert '<html lang="zh-Hans">' in html, name
        for text in visible(html) + chart_titles(html):
            if text in english:
                problems.append(f"{name}: {text!r}")
    assert not problems, "\n".join(problems)
    assert "我的信用报告" in pages["zh_Hans /me"]
    assert "异议待办" in pages["zh_Hans /staff/objections"]


def test_every_page_in_english_is_english(site: Site) -> None:
    zh = catalogue("zh_Hans")
    chinese = {msgstr for msgstr in zh.values() if msgstr and re.search(r"[\u4e00-\u9fff]", msgstr)}
    problems = []
    pages = walk(site, "en")
    for name, html in pages.items():
        assert '<html lang="en">' in html, name
        problems.extend(f"{name}: {text!r}" for text in visible(html) if text in chinese)
    assert not problems, "\n".join(problems)
    assert "My credit report" in pages["en /me"]


# Latin text that is not English prose: codes (TRAFFIC.MINOR, AAA), ids and references
# (demo-city, court:DOC-1, web:110…), numbers with units, file kinds.
CODE = re.compile(r"^[A-Z0-9][A-Z0-9._:-]*$|.*[0-9._:/@-].*")
# Names that are the same in both languages: the product, formats, the API's own name.
NAMES = {"xinyong", "YAML", "PDF", "CSV", "JSON", "Lines", "API", "Ed25519", "SHA", "QR", "English"}
# The test world's own identifiers and names: its sources, the actor that records, the pinyin
# query, and the names made of markup (whose words are data, escaped).
WORLD = {"court", "transport", "test", "ceshi", "script", "alert", "org"}


def main_words(html: str) -> list[str]:
    """The Latin words of a page's main content that are neither codes nor names."""
    main = html.split("<main", 1)[-1].split("</main>", 1)[0]
    main = re.sub(r"<(script|style)\b.*?</\1>", " ", main, flags=re.S)
    main = re.sub(r'<(\w+)\b[^>]*class="[^"]*\bmono\b[^"]*"[^>]*>.*?</\1>', " ", main, flags=re.S)
    # Text declared English (the importer's line-level reasons, an error's detail) is read as such.
    main = re.sub(r'<(\w+)\b[^>]*\blang="en"[^>]*>.*?</\1>', " ", main, flags=re.S)
    words = []
    for text in visible("<main" + main):
        for token in re.findall(r"[A-Za-z0-9][A-Za-z0-9._:/@'’-]*", text):
            token = token.rstrip(".:-")
            if re.search(r"[A-Za-z]{2,}", token) and not CODE.match(token) and token not in NAMES:
                words.append(token)
    return words


def scheme_data_words(site: Site) -> set[str]:
    """Words of the test scheme's own English data (titles it gives no `title_zh` for, its legal
    bases): data, shown as the scheme file wrote it. The shipped schemes give Chinese for all."""
    from helpers import DEMO_CITY
    from xinyong.rules.schemes import parse_scheme

    scheme = parse_scheme(DEMO_CITY)
    texts = [scheme.title, *(x.title for x in [*scheme.behaviours, *scheme.lists, *scheme.measures])]
    texts += [x.legal_basis for x in [*scheme.behaviours, *scheme.measures]]
    return {w.strip("().,;") for text in texts for w in text.split()}


def test_the_main_content_of_every_chinese_page_has_no_english_words(site: Site) -> None:
    """Stricter than the catalogue check above: any English word left in a page's main content —
    an untranslated message, an error, an audit code, a period like P10D, a rule as JSON — fails,
    whatever produced it. Identifiers, codes and names are allowed."""
    data = scheme_data_words(site)
    problems = {}
    for name, html in walk(site, "zh_Hans").items():
        words = sorted({w for w in main_words(html) if w not in data | WORLD})
        if words:
            problems[name] = words
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_the_main_content_scanner_tells_words_from_codes() -> None:
    page = '<main><p>记录 court:DOC-1 TRAFFIC.MINOR AAA 2026.1 · <span class="mono">reports.read</span></p></main>'
    assert main_words(page) == []
    assert main_words("<main><p>有效期 P10D，规则 {grade_in: [AAA]}，Score 100</p></main>") == ["Score"]
