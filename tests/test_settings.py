"""The settings: docs/settings.md documents exactly `xinyong.settings.SETTINGS`; every value is read
and checked once, at start, and a bad one is refused naming the variable before anything runs;
nothing writes the environment, and the server hands its workers the store and key explicitly."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from xinyong import settings
from xinyong.errors import BadInput
from xinyong.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "settings.md"
SRC = ROOT / "src" / "xinyong"
NAME = re.compile(r"\bXINYONG_[A-Z0-9_]+\b")


def table() -> dict[str, tuple[str, str, str]]:
    """The doc's table rows: setting name -> (type cell, default cell, meaning cell)."""
    rows: dict[str, tuple[str, str, str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"`XINYONG_[A-Z0-9_]+`", cells[0]):
            name = cells[0].strip("`")
            assert name not in rows, f"{name} has two rows in docs/settings.md"
            rows[name] = (cells[1], cells[2], cells[3])
    return rows


# --- the list and its documentation ----------------------------------------------------------------


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
def test_documented_type_default_and_meaning(setting: settings.Setting[Any]) -> None:
    kind, default, meaning = table()[setting.name]
    assert kind == setting.kind, f"{setting.name} takes {setting.kind}, the doc says {kind}"
    if setting.default is None:
        assert default == f"none: {setting.unset}", f"{setting.name} is unset by default: say what that means"
    else:
        assert default == f"`{setting.default}`"
    assert len(meaning) >= 20, f"say what {setting.name} means"


def test_settings_are_unique_and_named_consistently() -> None:
    names = [s.name for s in settings.SETTINGS]
    assert len(names) == len(set(names))
    assert all(NAME.fullmatch(n) for n in names)
    assert all(s.help.strip() for s in settings.SETTINGS)
    assert all(s.default is not None or s.unset for s in settings.SETTINGS), "say what an unset value means"


def test_each_setting_is_one_typed_field() -> None:
    values = settings.load({})
    for setting in settings.SETTINGS:
        field = setting.name.removeprefix("XINYONG_").lower()
        assert hasattr(values, field), f"Settings has no field for {setting.name}"
        if setting.default is None:
            assert getattr(values, field) is None
        else:  # every default is a value the setting takes
            assert getattr(values, field) == setting.parse(setting.default, setting.name)


def test_every_environment_variable_the_code_reads_is_a_setting() -> None:
    known = {s.name for s in settings.SETTINGS}
    read = {name for path in SRC.rglob("*.py") for name in NAME.findall(path.read_text(encoding="utf-8"))}
    assert read - known == set()


# One module reads the environment, and nothing writes it.
WRITES = re.compile(
    r"os\.environ\s*\[[^\]]*\]\s*=(?!=)"
    r"|os\.environ\.(?:update|setdefault|pop|popitem|clear)\s*\("
    r"|del\s+os\.environ|os\.(?:putenv|unsetenv)\s*\("
)
READS = re.compile(r"\bos\.environ\b|\bos\.getenv\b|\bgetenv\s*\(|\bfrom os import\b.*\benviron\b")


def _sources() -> list[tuple[Path, str]]:
    return [(path, path.read_text(encoding="utf-8")) for path in sorted(SRC.rglob("*.py"))]


def test_nothing_writes_the_environment() -> None:
    found = [f"{path.relative_to(ROOT)}: {m[0]}" for path, text in _sources() for m in WRITES.finditer(text)]
    assert not found, f"the environment is written: {found}"


def test_only_the_settings_module_reads_the_environment() -> None:
    found = [str(path.relative_to(ROOT)) for path, text in _sources() if READS.search(text)]
    assert found == ["src/xinyong/settings.py"]


def test_the_write_pattern_finds_what_it_should() -> None:
    for line in ('os.environ["X"] = "1"', "os.environ[name]=key", "os.environ.update(a=1)", "os.putenv('X', '1')"):
        assert WRITES.search(line), line
    for line in ('os.environ["X"] == "1"', "os.environ.get(name)"):
        assert not WRITES.search(line), line


# --- reading -----------------------------------------------------------------------------------------


def test_typed_values_from_a_mapping() -> None:
    chosen = settings.load(
        {
            "XINYONG_PORT": " 8080 ",
            "XINYONG_WORKERS": "4",
            "XINYONG_SMTP_TIMEOUT": "2.5",
            "XINYONG_SMTP_STARTTLS": "1",
            "XINYONG_CHECK_CACHE": "0",
            "XINYONG_LANGUAGE": "en-GB",
            "XINYONG_SERVER": "uvicorn",
            "XINYONG_AUDIT_COMPACT_AT": "04:15",
            "XINYONG_NOW": "2026-03-12T09:00:00+08:00",
            "XINYONG_ACTOR": "office:wang",
            "XINYONG_DB": "sqlite:///elsewhere.db",
        }
    )
    assert (chosen.port, chosen.workers, chosen.smtp_timeout) == (8080, 4, 2.5)
    assert (chosen.smtp_starttls, chosen.check_cache, chosen.language, chosen.server) == (True, False, "en", "uvicorn")
    assert chosen.audit_compact_at == dt.time(4, 15)
    assert chosen.now == dt.datetime(2026, 3, 12, 1, 0, tzinfo=dt.UTC)
    assert (chosen.actor, chosen.db) == ("office:wang", "sqlite:///elsewhere.db")
    assert chosen.is_given(settings.DB)
    assert not chosen.is_given(settings.HOST)


def test_an_empty_value_counts_as_unset() -> None:
    chosen = settings.load({"XINYONG_ACTOR": "", "XINYONG_PORT": "", "XINYONG_NOW": ""})
    assert (chosen.actor, chosen.port, chosen.now) == (None, 8000, None)
    assert not chosen.is_given(settings.PORT)


@pytest.mark.parametrize(("text", "expected"), [("03:30", dt.time(3, 30)), ("off", None), (" OFF ", None)])
def test_the_compaction_time_is_a_time_or_off(text: str, expected: dt.time | None) -> None:
    assert settings.load({"XINYONG_AUDIT_COMPACT_AT": text}).audit_compact_at == expected


def test_a_bad_compaction_time_says_which_and_why() -> None:
    with pytest.raises(BadInput, match="XINYONG_AUDIT_COMPACT_AT: '3h30' is not a time of day"):
        settings.load({"XINYONG_AUDIT_COMPACT_AT": "3h30"})


def test_every_wrong_value_is_named_at_once() -> None:
    with pytest.raises(BadInput) as refused:
        settings.load({"XINYONG_PORT": "abc", "XINYONG_SERVER": "gunicorn"})
    assert {p.where for p in refused.value.problems} == {"XINYONG_PORT", "XINYONG_SERVER"}
    assert "XINYONG_PORT: 'abc' is not a whole number" in refused.value.render()


def test_secrets_stay_out_of_repr() -> None:
    chosen = settings.load({"XINYONG_WEB_SECRET": "k" * 32, "XINYONG_SMTP_PASSWORD": "hunter2"})
    assert "k" * 32 not in repr(chosen)
    assert "hunter2" not in repr(chosen)


def test_using_puts_the_previous_settings_back() -> None:
    before = settings.current()
    with settings.using(settings.load({"XINYONG_LANGUAGE": "en"})) as chosen:
        assert settings.current() is chosen
    assert settings.current() is before


def test_the_environment_for_a_program_reads_back_as_these_settings_with_the_changes() -> None:
    chosen = settings.load({"XINYONG_PORT": "9000", "XINYONG_LANGUAGE": "en"})
    base = {"PATH": "/bin", "XINYONG_PORT": "1", "XINYONG_NOW": "2020-01-01"}
    environment = chosen.environment({"XINYONG_DB": "sqlite:///x.db"}, base=base)
    assert environment == {
        "PATH": "/bin",
        "XINYONG_PORT": "9000",
        "XINYONG_LANGUAGE": "en",
        "XINYONG_DB": "sqlite:///x.db",
    }
    again = settings.load(environment)
    assert (again.port, again.language, again.db, again.now) == (9000, "en", "sqlite:///x.db", None)


# --- refused before anything runs ----------------------------------------------------------------------

BAD = [
    ("XINYONG_PORT", "abc", "is not a whole number"),
    ("XINYONG_PORT", "70000", "is not from 1 to 65535"),
    ("XINYONG_WORKERS", "0", "is not from 1 to 1024"),
    ("XINYONG_SMTP_PORT", "-25", "is not a whole number"),
    ("XINYONG_MAX_BODY", "1e6", "is not a whole number"),
    ("XINYONG_MAX_UPLOAD", "64MB", "is not a whole number"),
    ("XINYONG_BULK_BYTES", "1_000", "is not a whole number"),
    ("XINYONG_SMTP_TIMEOUT", "0", "is not more than 0 seconds"),
    ("XINYONG_OUTBOX_BACKOFF", "nan", "is not a number of seconds"),
    ("XINYONG_OUTBOX_MAX_BACKOFF", "inf", "is not a number of seconds"),
    ("XINYONG_TOKEN_CACHE_SECONDS", "5s", "is not a number of seconds"),
    ("XINYONG_CHECK_CACHE", "yes", "use 0 or 1"),
    ("XINYONG_SMTP_STARTTLS", "true", "use 0 or 1"),
    ("XINYONG_DEBUG", "on", "use 0 or 1"),
    ("XINYONG_SERVER", "gunicorn", "is not one of granian, uvicorn"),
    ("XINYONG_LANGUAGE", "fr", "is not one of zh_Hans, en"),
    ("XINYONG_AUDIT_COMPACT_AT", "25:00", "is not a time of day (HH:MM) or off"),
    ("XINYONG_AUDIT_CHECKPOINT_EVERY", "hourly", "is not a number of seconds"),
    ("XINYONG_NOW", "yesterday", "is not an ISO date or timestamp"),
    ("XINYONG_PROXY_HOPS", "17", "is not from 0 to 16"),
    ("XINYONG_IMPORT_NICE", "20", "is not from 0 to 19"),
    ("XINYONG_MIN_CELL", "0", "is not from 1 to 1000000"),
    ("XINYONG_OUTBOX_EVERY", "1m", "is not a number of seconds"),
    ("XINYONG_WEBHOOK_TIMEOUT", "0", "is not more than 0 seconds"),
    ("XINYONG_FEED_PUBLISH_AT", "midnight", "is not a time of day (HH:MM) or off"),
    ("XINYONG_FEED_ACK_LATE", "1d", "is not a number of seconds"),
    ("XINYONG_PUBLIC_URL", "ftp://xinyong.example", "is not an http:// or https:// address"),
    ("XINYONG_PUBLIC_URL", "https://xinyong.example/?q=1", "is not an http:// or https:// address"),
]


def test_every_typed_setting_has_a_bad_value_here() -> None:
    typed = {s.name for s in settings.SETTINGS if not isinstance(s.parse, settings.Text)}
    assert typed == {name for name, _, _ in BAD}


@pytest.mark.parametrize(("name", "value", "why"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_bad_value_stops_the_command_line_before_the_command(
    name: str, value: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from xinyong.interfaces import cli

    db = tmp_path / "never.db"
    monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["xinyong", "--db", f"sqlite:///{db}", "init"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert f"{name}: {value!r} {why}" in said or f"{name}: {why}" in said, said
    assert not db.exists(), "the command ran"


def _xinyong(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XINYONG_")}
    return subprocess.run(
        [sys.executable, "-m", "xinyong.interfaces.cli", *args],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_even_help_is_refused_with_a_bad_value() -> None:
    result = _xinyong(["--help"], XINYONG_PORT="abc")
    assert result.returncode == 2
    assert result.stderr.strip() == "XINYONG_PORT: 'abc' is not a whole number"
    assert "Usage" not in result.stdout


def test_a_bad_value_stops_scheme_list(tmp_path: Path) -> None:
    result = _xinyong(["--db", f"sqlite:///{tmp_path / 'x.db'}", "scheme", "list"], XINYONG_CHECK_CACHE="2")
    assert result.returncode == 2
    assert "XINYONG_CHECK_CACHE: use 0 or 1, not '2'" in result.stderr


def test_the_server_program_refuses_a_bad_value_before_it_serves() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XINYONG_")}
    result = subprocess.run(
        [sys.executable, "-m", "xinyong.interfaces.hosting"],
        env=clean | {"XINYONG_AUDIT_COMPACT_AT": "25:00"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "XINYONG_AUDIT_COMPACT_AT: '25:00' is not a time of day (HH:MM) or off" in result.stderr


def test_each_worker_factory_checks_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from xinyong.interfaces import site

    monkeypatch.setenv("XINYONG_MAX_BODY", "a lot")
    with pytest.raises(BadInput, match="XINYONG_MAX_BODY: 'a lot' is not a whole number"):
        site.app_from_environment()


# Integers and flags, over any text: either read as the number (or 0/1) it spells, or refused by name.
WHOLE_SETTINGS = [s for s in settings.SETTINGS if isinstance(s.parse, settings.Whole)]
FLAG_SETTINGS = [s for s in settings.SETTINGS if isinstance(s.parse, settings.Flag)]


def _read(setting: settings.Setting[Any], text: str) -> tuple[Any, str | None]:
    """The setting's value read from `text`, or the message that refused it."""
    try:
        return getattr(settings.load({setting.name: text}), setting.name.removeprefix("XINYONG_").lower()), None
    except BadInput as exc:
        return None, exc.message


@hypothesis_settings(max_examples=300, deadline=None)
@given(setting=st.sampled_from(WHOLE_SETTINGS), text=st.text() | st.from_regex(r"\s*[0-9]{1,25}\s*", fullmatch=True))
def test_a_whole_number_setting_is_the_number_or_refused_by_name(setting: settings.Setting[Any], text: str) -> None:
    value, refused = _read(setting, text)
    if refused is not None:
        assert refused.startswith(f"{setting.name}: ")
    elif text == "":
        assert value == setting.parse(str(setting.default), setting.name)
    else:
        digits = text.strip()
        assert re.fullmatch(r"[0-9]+", digits)
        assert value == int(digits)
        assert setting.parse.minimum <= value <= setting.parse.maximum  # type: ignore[attr-defined]


@hypothesis_settings(max_examples=200, deadline=None)
@given(setting=st.sampled_from(FLAG_SETTINGS), text=st.text() | st.sampled_from(["0", "1", " 1", "0\n", "01", "true"]))
def test_a_flag_is_0_or_1_or_refused_by_name(setting: settings.Setting[Any], text: str) -> None:
    value, refused = _read(setting, text)
    if refused is not None:
        assert refused.startswith(f"{setting.name}: ")
    elif text == "":
        assert value is (setting.default == "1")
    else:
        assert text.strip() in ("0", "1")
        assert value is (text.strip() == "1")


# --- the server: one store and one key for every worker, the environment untouched --------------------


class Exec(Exception):
    """What `os.execve` was asked to run."""

    def __init__(self, path: str, argv: list[str], env: dict[str, str]) -> None:
        super().__init__(path)
        self.path, self.argv, self.env = path, argv, env


def _execve(path: str, argv: list[str], env: dict[str, str]) -> None:
    raise Exec(path, argv, env)


@pytest.fixture
def ready_store(tmp_path: Path) -> str:
    store = Store(f"sqlite:///{tmp_path / 'served.db'}")
    store.migrate()
    store.dispose()
    return store.url


def test_serve_hands_the_server_its_store_and_one_key(ready_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from xinyong.interfaces import hosting

    monkeypatch.setattr(hosting.os, "execve", _execve)
    before = dict(os.environ)
    with settings.using(settings.load({"XINYONG_LANGUAGE": "en"})), pytest.raises(Exec) as started:
        hosting.serve(ready_store, port=8123, workers=2, server="uvicorn")
    assert dict(os.environ) == before, "serve wrote this process's environment"
    program = started.value
    assert program.argv[1:] == ["-m", "xinyong.interfaces.hosting"]
    served = settings.load(program.env)
    assert (served.db, served.port, served.workers, served.server) == (ready_store, 8123, 2, "uvicorn")
    assert served.language == "en"  # what this run was given goes along
    assert served.web_secret is not None
    assert len(served.web_secret) >= 32
    assert program.env["PATH"] == os.environ["PATH"]

    # Each run of the server has a key of its own; one set by the operator is kept.
    with settings.using(settings.load({})), pytest.raises(Exec) as again:
        hosting.serve(ready_store)
    assert settings.load(again.value.env).web_secret not in (None, served.web_secret)
    with settings.using(settings.load({"XINYONG_WEB_SECRET": "the-operator's"})), pytest.raises(Exec) as kept:
        hosting.serve(ready_store)
    assert settings.load(kept.value.env).web_secret == "the-operator's"


def test_serve_refuses_a_bad_option_or_an_empty_store_before_the_server_starts(
    ready_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xinyong.errors import XinyongError
    from xinyong.interfaces import hosting

    monkeypatch.setattr(hosting.os, "execve", _execve)
    with settings.using(settings.load({})):
        with pytest.raises(BadInput, match="--server: 'gunicorn' is not one of granian, uvicorn"):
            hosting.serve(ready_store, server="gunicorn")
        with pytest.raises(BadInput, match="--workers: '0' is not from 1 to 1024"):
            hosting.serve(ready_store, workers=0)
        with pytest.raises(XinyongError):
            hosting.serve(f"sqlite:///{tmp_path / 'empty.db'}")


def test_the_operator_is_the_login_name_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    from xinyong.interfaces.cli.context import operator_name

    monkeypatch.setattr(getpass, "getuser", lambda: "wang")
    with settings.using(settings.load({})):
        assert operator_name() == "wang"
    with settings.using(settings.load({"XINYONG_ACTOR": "cli"})):  # no longer a placeholder
        assert operator_name() == "cli"
    with settings.using(settings.load({"XINYONG_ACTOR": "office:li"})):
        assert operator_name() == "office:li"
