#!/usr/bin/env bash
# The two commands. Each sets everything up first (idempotent, fast when already done):
#
#   bash run.sh demo [ARGS...]        run `xinyong demo ARGS...` from the project venv
#   bash run.sh test [PYTEST ARGS...] ruff, mypy, lint-imports, then pytest (-n 2 with pytest-xdist)
#
# Needs only Python 3.11 and the package registries (PyPI, Debian apt): uv is bootstrapped into
# .tools/uv-venv with pip, the project venv (.venv) is synced from uv.lock, and `test`
# installs the PostgreSQL server binaries with apt when none are found.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

UV_VERSION="0.13.8"
UV_VENV="$ROOT/.tools/uv-venv"
UV="$UV_VENV/bin/uv"
VENV="$ROOT/.venv"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: bash run.sh demo [ARGS...]         set up, then run `xinyong demo ARGS...`
       bash run.sh test [PYTEST ARGS...]  set up, then ruff, mypy, lint-imports and pytest
       bash run.sh bench [ARGS...]        set up, then the scale benchmarks (benchmarks/scale.py --help)
EOF
}

# --- Python 3.11 -----------------------------------------------------------------------------
find_python() {
  local cand
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 \
      && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      # The real interpreter, not a shim (pyenv) or a symlink that may change under us.
      "$cand" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  local found=""
  command -v python3 >/dev/null 2>&1 && found=" (python3 is $(python3 --version 2>&1))"
  die "Python 3.11 is required: found neither python3.11 nor a python3 that is 3.11${found}"
}

# --- uv and the project venv -----------------------------------------------------------------
ensure_uv() {
  if [[ -x "$UV" ]] && [[ "$("$UV" --version 2>/dev/null)" == "uv $UV_VERSION"* ]]; then
    return 0
  fi
  say "bootstrapping uv $UV_VERSION into .tools/uv-venv"
  rm -rf "$UV_VENV"
  mkdir -p "$ROOT/.tools"
  "$PY" -m venv "$UV_VENV"
  "$UV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
}

ensure_venv() {
  # --frozen: install exactly uv.lock, never re-resolve (the lock is committed).
  # --all-extras: the optional parts too (spark, pdf, uvicorn; pyproject.toml), which the demo's PDF
  # report and the tests need. A plain `pip install xinyong` leaves them out.
  # --compile-bytecode, then compileall of our own sources (installed editable, so outside
  # site-packages): where Python may not write its bytecode cache (PYTHONDONTWRITEBYTECODE, a
  # read-only venv) every command would otherwise compile each module it imports, every time
  # (`xinyong check` 2.0 s instead of 0.95 s; "Start-up" in benchmarks/REPORT.md). Both skip what
  # is up to date: a second run adds about 0.25 s.
  # Python downloads are off: only the registries are reachable; use the 3.11 found above.
  unset VIRTUAL_ENV
  UV_PROJECT_ENVIRONMENT="$VENV" UV_PYTHON_DOWNLOADS=never UV_LINK_MODE="${UV_LINK_MODE:-copy}" \
    "$UV" sync --frozen --all-extras --compile-bytecode --python "$PY" --quiet
  "$VENV/bin/python" -m compileall -q "$ROOT/src/xinyong" >&2 \
    || say "compileall: a module above does not compile (the tests will say more)"
}

setup() {
  PY="$(find_python)"
  ensure_uv
  ensure_venv
}

# --- PostgreSQL server binaries (tests only) -------------------------------------------------
have_initdb() {
  # Same places tests/pgcluster.py looks: $XINYONG_PG_BIN, /usr/lib/postgresql/*/bin, PATH.
  local f
  [[ -n "${XINYONG_PG_BIN:-}" && -x "${XINYONG_PG_BIN}/initdb" ]] && return 0
  for f in /usr/lib/postgresql/*/bin/initdb; do
    [[ -x "$f" ]] && return 0
  done
  command -v initdb >/dev/null 2>&1
}

# One way to install what a check finds missing: Debian packages through apt-get, as root or
# through password-less sudo; anything else stops with the install command to run by hand.
apt_ensure() {
  local what="$1" check="$2"
  shift 2
  "$check" && return 0
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
      || die "$what missing and not root: install it with \`apt-get install -y $*\`"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "$what missing and apt-get is unavailable; install: $*"
  say "installing $what (apt-get install $*)"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" </dev/null
  "$check" || die "apt-get installed $*, but $what is still not found"
}

# Debian 12: `postgresql` pulls in postgresql-15, binaries in /usr/lib/postgresql/15/bin, and
# creates the `postgres` system user that tests/pgcluster.py runs the server as when we are root.
# (Its post-install may also create a `main` cluster; the tests never use it.)
ensure_postgres() {
  apt_ensure "PostgreSQL server binaries" have_initdb postgresql
}

# --- PDF reports: WeasyPrint's system libraries, CJK fonts, poppler ------------------------
have_pdf_tools() {
  # WeasyPrint loads Pango through cffi (and HarfBuzz's subsetter: without it, fontTools subsets
  # the large CJK font in pure Python, ~6x slower); Chinese needs a font with CJK glyphs; the report tests
  # turn PDFs into pages and text with poppler's pdftoppm and pdftotext.
  # No pipes into `grep -q` here: under pipefail, grep's early exit kills the writer with SIGPIPE
  # and the check fails at random. The libraries are asked of the dynamic loader, as WeasyPrint
  # will: `ldconfig` is in /sbin, which a non-root user's PATH often lacks.
  command -v pdftoppm >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 \
    && have_libraries libpangoft2-1.0.so.0 libharfbuzz-subset.so.0 \
    && [[ -n "$(fc-list ':lang=zh' family 2>/dev/null)" ]]
}

have_libraries() {
  "$PY" -c 'import ctypes, sys
for name in sys.argv[1:]:
    ctypes.CDLL(name)' "$@" >/dev/null 2>&1
}

ensure_pdf_tools() {
  apt_ensure "PDF report tools" have_pdf_tools \
    poppler-utils libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-noto-cjk
}

# --- a browser for the end-to-end tests (tests/e2e) ------------------------------------------
# Playwright drives Debian's chromium (its own browser downloads cannot be fetched here).
have_chromium() {
  [[ -x /usr/bin/chromium ]]
}

ensure_chromium() {
  apt_ensure "chromium (for the browser tests)" have_chromium chromium
}

# --- commands --------------------------------------------------------------------------------
cmd_demo() {
  setup
  ensure_pdf_tools # the portal offers the credit report as PDF
  exec "$VENV/bin/xinyong" demo "$@"
}

cmd_test() {
  setup
  ensure_postgres
  ensure_pdf_tools
  ensure_chromium

  say "ruff check"
  "$VENV/bin/ruff" check src tests benchmarks
  say "ruff format --check"
  "$VENV/bin/ruff" format --check src tests benchmarks
  say "mypy"
  "$VENV/bin/mypy"
  say "lint-imports"
  "$VENV/bin/lint-imports" # the layers' contracts ([tool.importlinter] in pyproject.toml)

  local xdist=()
  if "$VENV/bin/python" -c 'import xdist' >/dev/null 2>&1; then
    xdist=(-n 2)
  fi
  say "pytest ${xdist[*]} $*"
  local rc=0
  "$VENV/bin/python" -m pytest "${xdist[@]}" "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then
    # We have tests: collecting none means something is broken (bad path, bad -k, ...).
    die "pytest collected no tests (exit 5)"
  fi
  return "$rc"
}

cmd_bench() {
  # Scale benchmarks (issue 6): writes the "Scale" section of benchmarks/REPORT.md. PostgreSQL's
  # server binaries are needed for the import benchmark, as for the tests.
  setup
  ensure_postgres
  cd "$ROOT"
  exec "$VENV/bin/python" -m benchmarks.scale "$@"
}

main() {
  [[ $# -ge 1 ]] || { usage; exit 2; }
  local sub="$1"
  shift
  case "$sub" in
    demo) cmd_demo "$@" ;;
    test) cmd_test "$@" ;;
    bench) cmd_bench "$@" ;;
    -h | --help | help) usage ;;
    *) usage; die "unknown command: $sub" ;;
  esac
}

# Sourced (the tests call its checks one by one), it only defines them.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
