"""run.sh's checks: what is installed is found, every time, and never sends a non-root user for root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUN_SH = Path(__file__).resolve().parents[1] / "run.sh"

# Commands that answer as the real ones would when what they look for is there, then keep writing
# (a real `ldconfig -p` lists ~1,000 libraries; fc-list every font): a reader that stops at the
# first match kills them with SIGPIPE.
CHATTY = """#!/bin/sh
printf '%s\\n' "libpangoft2-1.0.so.0 (libc6,x86-64) => /usr/lib/libpangoft2-1.0.so.0"
printf '%s\\n' "libharfbuzz-subset.so.0 (libc6,x86-64) => /usr/lib/libharfbuzz-subset.so.0"
printf '%s\\n' "Noto Sans CJK SC"
head -c 4000000 /dev/zero | tr '\\0' 'x'
"""
# Records that it was asked, and says no: nothing here may need root or install anything.
ASKED = """#!/bin/sh
echo "$(basename "$0") $*" >> "$(dirname "$0")/asked.log"
exit 1
"""
NOT_ROOT = """#!/bin/sh
if [ "$1" = "-u" ]; then echo 1000; else exec /usr/bin/id "$@"; fi
"""

pdf_tools_present = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("pdftoppm", "pdftotext", "fc-list")),
    reason="the PDF report tools are not installed (bash run.sh test installs them)",
)


def _fake(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)


def _source_and_run(folder: Path, call: str) -> subprocess.CompletedProcess[str]:
    script = f'PY={sys.executable!s}; source "{RUN_SH}"; {call}'
    path = f"{folder}:/usr/local/bin:/usr/bin:/bin"
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, env={"PATH": path, "HOME": "/tmp"}
    )


@pdf_tools_present
def test_the_pdf_check_passes_however_much_the_listings_write(tmp_path: Path) -> None:
    for name in ("ldconfig", "fc-list"):
        _fake(tmp_path, name, CHATTY)
    for _ in range(3):
        done = _source_and_run(tmp_path, "set -euo pipefail; have_pdf_tools")
        assert done.returncode == 0, done.stderr


@pdf_tools_present
def test_a_non_root_user_with_everything_installed_is_never_asked_for_root(tmp_path: Path) -> None:
    _fake(tmp_path, "id", NOT_ROOT)
    for name in ("sudo", "apt-get"):
        _fake(tmp_path, name, ASKED)
    _fake(tmp_path, "ldconfig", CHATTY)  # and not on a non-root PATH in real life: /sbin
    done = _source_and_run(tmp_path, "ensure_pdf_tools && echo ready")
    assert done.stdout.strip() == "ready", done.stderr
    assert "root" not in done.stderr
    assert not (tmp_path / "asked.log").exists()


def test_a_missing_library_is_missing(tmp_path: Path) -> None:
    done = _source_and_run(tmp_path, "have_libraries libxinyong-none-such.so.0 || echo missing")
    assert done.stdout.strip() == "missing"


def test_sourcing_defines_the_checks_and_runs_nothing(tmp_path: Path) -> None:
    done = _source_and_run(tmp_path, "type have_pdf_tools >/dev/null && echo defined")
    assert done.stdout.strip() == "defined"
    assert "usage" not in done.stderr
