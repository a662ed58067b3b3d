"""docs/settings.md documents exactly the settings in `xinyong.settings.SETTINGS`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xinyong import settings

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "settings.md"
SRC = ROOT / "src" / "xinyong"
NAME = re.compile(r"\bXINYONG_[A-Z0-9_]+\b")


def table() -> dict[str, tuple[str, str]]:
    """The doc's table rows: setting name -> (default cell, meaning cell)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`XINYONG_[A-Z0-9_]+`", cells[0]):
            name = cells[0].strip("`")
            assert name not in rows, f"{name} has two rows in docs/settings.md"
            rows[name] = (cells[1], cells[2])
    return rows


def test_every_setting_is_documented() -> None:
    documented = table()
    missing = [s.name for s in settings.SETTINGS if s.name not in documented]
    assert not missing, f"docs/settings.md does not document {missing}"


def test_the_doc_names_no_setting_that_does_not_exist() -> None:
    known = {s.name for s in settings.SETTINGS}
    named = set(NAME.findall(DOC.read_text(encoding="utf-8")))
    assert named - known == set(), f"docs/settings.md names settings that do not exist: {named - known}"
    assert set(table()) - known == set()


@pytest.mark.parametrize("setting", settings.SETTINGS, ids=lambda s: s.name)
def test_documented_default_and_meaning(setting: settings.Setting) -> None:
    default, meaning = table()[setting.name]
    if setting.default is None:
        assert "`" not in default, f"{setting.name} has no default, the doc shows {default}"
        assert default.lower().startswith("none")
    else:
        assert default == f"`{setting.default}`"
    assert len(meaning) >= 20, f"say what {setting.name} means"


def test_settings_are_unique_and_named_consistently() -> None:
    names = [s.name for s in settings.SETTINGS]
    assert len(names) == len(set(names))
    assert all(NAME.fullmatch(n) for n in names)
    assert all(s.help.strip() for s in settings.SETTINGS)


def test_value_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XINYONG_ACTOR", "office:wang")
    assert settings.ACTOR.value() == "office:wang"
    monkeypatch.setenv("XINYONG_ACTOR", "")
    assert settings.ACTOR.value() == "cli"
    monkeypatch.delenv("XINYONG_NOW", raising=False)
    assert settings.NOW.value() is None


def test_every_environment_variable_the_code_reads_is_a_setting() -> None:
    known = {s.name for s in settings.SETTINGS}
    read = {name for path in SRC.rglob("*.py") for name in NAME.findall(path.read_text(encoding="utf-8"))}
    assert read - known == set()
