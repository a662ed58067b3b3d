"""Docs stay in sync with the code: every command of the command line is in docs/cli.md."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from xinyong.interfaces.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def command_names() -> list[str]:
    def walk(command: object, prefix: list[str]) -> list[str]:
        children = getattr(command, "commands", None) or {}
        if not children:
            return [" ".join(prefix)]
        return [name for key, child in children.items() for name in walk(child, [*prefix, key])]

    return walk(get_command(app), [])


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    documented = {
        re.sub(r"\s+", " ", m.group(1)) for m in re.finditer(r"^\| `([a-z][a-z -|\\]*?)(?: [A-Z\[-]|`)", text, re.M)
    }
    expanded = set()
    for entry in documented:
        words = entry.replace("\\|", "|").split(" ")
        variants = [""]
        for word in words:
            variants = [f"{v} {w}".strip() for v in variants for w in word.split("|")]
        expanded.update(variants)
    missing = [name for name in command_names() if name not in expanded]
    assert not missing, f"docs/cli.md does not document: {', '.join(missing)}"
    assert len(command_names()) > 20
